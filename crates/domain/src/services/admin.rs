//! Instance administration: rate-limit profiles and their assignments, and accounts. Only
//! instance admins (people; the first account is one) may call these; an API key never is.

use std::collections::HashSet;

use skein_shared::limits::{
    AdminUser, CreateRateLimitProfile, LimitSubject, QuotaOverrides, RateLimitAssignment, RateLimitProfile, RateRule,
    UpdateAdminUser, UpdateRateLimitProfile,
};
use skein_shared::{Page, RateLimitProfileId, UserId};

use super::{Services, keyset_page};
use crate::cursor::decode_id_cursor;
use crate::entities::Session;
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult};

const PROFILE_NAME_MAX_CHARS: usize = 100;
const BURST_MAX: u32 = 1_000_000;
const PERIOD_MAX_SECS: u32 = 86_400;
/// More than any day's use; keeps quotas within PostgreSQL's bigint.
const QUOTA_MAX: u64 = 1_000_000_000_000;
const ACCOUNT_QUERY_MAX_CHARS: usize = 200;

impl<P: Ports> Services<P> {
    pub(super) fn instance_admin(&self, caller: &Session) -> DomainResult<()> {
        if caller.user.is_instance_admin && caller.api_key.is_none() {
            Ok(())
        } else {
            Err(DomainError::Forbidden("only instance admins may do this"))
        }
    }

    pub async fn list_rate_profiles(&self, caller: &Session) -> DomainResult<Vec<RateLimitProfile>> {
        self.instance_admin(caller)?;
        self.ports.list_rate_profiles().await
    }

    pub async fn create_rate_profile(
        &self,
        caller: &Session,
        req: CreateRateLimitProfile,
    ) -> DomainResult<RateLimitProfile> {
        self.instance_admin(caller)?;
        let mut check = Check::new();
        let name = check.text("name", &req.name, PROFILE_NAME_MAX_CHARS);
        check_rules(&mut check, &req.rules);
        check_quotas(&mut check, &req.quotas);
        check.finish()?;
        let profile = RateLimitProfile {
            id: RateLimitProfileId::generate(),
            name,
            is_default: false,
            rules: req.rules,
            quotas: req.quotas,
            updated_at: self.ports.now(),
        };
        self.ports.save_rate_profile(profile).await
    }

    pub async fn update_rate_profile(
        &self,
        caller: &Session,
        id: RateLimitProfileId,
        req: UpdateRateLimitProfile,
    ) -> DomainResult<RateLimitProfile> {
        self.instance_admin(caller)?;
        let mut profile = self.ports.rate_profile(id).await?.ok_or(DomainError::NotFound)?;
        let mut check = Check::new();
        if let Some(name) = &req.name {
            profile.name = check.text("name", name, PROFILE_NAME_MAX_CHARS);
        }
        if let Some(rules) = req.rules {
            check_rules(&mut check, &rules);
            profile.rules = rules;
        }
        if let Some(quotas) = req.quotas {
            check_quotas(&mut check, &quotas);
            profile.quotas = quotas;
        }
        check.finish()?;
        profile.updated_at = self.ports.now();
        self.ports.save_rate_profile(profile).await
    }

    pub async fn delete_rate_profile(&self, caller: &Session, id: RateLimitProfileId) -> DomainResult<()> {
        self.instance_admin(caller)?;
        let profile = self.ports.rate_profile(id).await?.ok_or(DomainError::NotFound)?;
        if profile.is_default {
            return Err(DomainError::Forbidden("the default profile stays: make another the default first"));
        }
        // Its assignments go with it: those subjects fall back to the next most specific.
        if self.ports.delete_rate_profile(id).await? { Ok(()) } else { Err(DomainError::NotFound) }
    }

    pub async fn assign_rate_profile(&self, caller: &Session, req: RateLimitAssignment) -> DomainResult<()> {
        self.instance_admin(caller)?;
        if req.subject == LimitSubject::Instance && req.profile_id.is_none() {
            return Err(DomainError::field("profile_id", "required", "the instance always has a default profile"));
        }
        self.ports.assign_rate_profile(req.subject, req.profile_id).await
    }

    pub async fn list_accounts(
        &self,
        caller: &Session,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<AdminUser>> {
        self.instance_admin(caller)?;
        let mut check = Check::new();
        let query = check.optional_text("q", query, ACCOUNT_QUERY_MAX_CHARS);
        check.finish()?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?.map(UserId::from);
        let rows = self.ports.list_accounts(after, query, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |u| u.id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn update_account(&self, caller: &Session, id: UserId, req: UpdateAdminUser) -> DomainResult<AdminUser> {
        self.instance_admin(caller)?;
        if id == caller.user.id && req.disabled {
            return Err(DomainError::Forbidden("instance admins cannot disable their own account"));
        }
        self.ports.set_account_disabled(id, req.disabled).await?.ok_or(DomainError::NotFound)
    }
}

fn check_rules(check: &mut Check, rules: &[RateRule]) {
    let mut seen = HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if !seen.insert(rule.route_class) {
            check.fail(&format!("rules[{i}].route_class"), "duplicate", "one rule per class");
        }
        if !(1..=BURST_MAX).contains(&rule.burst) {
            check.fail(&format!("rules[{i}].burst"), "out_of_range", format!("between 1 and {BURST_MAX}"));
        }
        if !(1..=PERIOD_MAX_SECS).contains(&rule.per_seconds) {
            check.fail(&format!("rules[{i}].per_seconds"), "out_of_range", format!("between 1 and {PERIOD_MAX_SECS}"));
        }
    }
}

fn check_quotas(check: &mut Check, quotas: &QuotaOverrides) {
    for (field, value) in
        [("quotas.daily_messages", quotas.daily_messages), ("quotas.daily_tokens", quotas.daily_tokens)]
    {
        if value.is_some_and(|v| v > QUOTA_MAX) {
            check.fail(field, "out_of_range", format!("at most {QUOTA_MAX}"));
        }
    }
}
