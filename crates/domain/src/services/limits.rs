//! Counting requests against their rate-limit profile, and what a caller has left.

use skein_shared::limits::{LimitsResponse, QuotaKind, QuotaOverrides, QuotaScope, QuotaUsage};
use skein_shared::{UserId, WorkspaceId};
use time::{Date, OffsetDateTime, UtcOffset};

use super::Services;
use crate::entities::{Session, UsageToday};
use crate::ports::Ports;
use crate::rate::{RateRequest, RateStatus, budget};
use crate::{DomainError, DomainResult};

impl<P: Ports> Services<P> {
    /// Counts one request (when rate limits are on). `None`: not limited. A refused request
    /// comes back with `retry_after_secs` set; the caller answers 429 with its headers.
    pub async fn take_rate(&self, request: RateRequest) -> DomainResult<Option<RateStatus>> {
        if !self.rate.enabled {
            return Ok(None);
        }
        let now = self.ports.now();
        Ok(self.ports.take_rate(request, now).await?.map(|taken| RateStatus::of(taken, now)))
    }

    /// `GET /api/me/limits`: the caller's profile outside any workspace's (a key's includes
    /// its workspace's), what each class has left, and the caller's quotas.
    pub async fn my_limits(&self, caller: &Session) -> DomainResult<LimitsResponse> {
        self.limits_of(caller.user.id).await
    }

    /// `GET /api/admin/users/{id}/limits`.
    pub async fn account_limits(&self, caller: &Session, user: UserId) -> DomainResult<LimitsResponse> {
        self.instance_admin(caller)?;
        self.ports.account(user).await?.ok_or(DomainError::NotFound)?;
        self.limits_of(user).await
    }

    async fn limits_of(&self, user: UserId) -> DomainResult<LimitsResponse> {
        let now = self.ports.now();
        let standing = self.ports.rate_standing(user).await?;
        let (profile, classes) = match standing {
            Some(standing) if self.rate.enabled => {
                let classes = standing.rules.iter().map(|(rule, tat)| budget(*rule, *tat, now)).collect();
                (Some(standing.profile), classes)
            }
            Some(standing) => (Some(standing.profile), Vec::new()),
            None => (None, Vec::new()),
        };
        let usage = self.ports.usage_today(user, None, false, day_of(now)).await?;
        let quotas = self.quotas(&usage, None);
        Ok(LimitsResponse { enabled: self.rate.enabled, profile, classes, quotas })
    }
}

/// What a quota check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Spend {
    /// Posting one message.
    Message,
    /// Asking for an answer (its tokens are counted when it ends).
    Tokens,
}

impl<P: Ports> Services<P> {
    /// Refuses with `QuotaExceeded` (before anything is stored or any provider is called)
    /// when today's quota for `spend` is used up, by the caller or by the workspace. Checked
    /// before the write, so requests in flight together may pass the quota by their number;
    /// what is counted is exact.
    pub(super) async fn check_quota(
        &self,
        caller: UserId,
        workspace: Option<WorkspaceId>,
        spend: Spend,
    ) -> DomainResult<()> {
        let workspace_limit = match spend {
            Spend::Message => self.rate.workspace_daily_messages,
            Spend::Tokens => self.rate.workspace_daily_tokens,
        }
        .filter(|_| workspace.is_some());
        let configured =
            self.rate.daily_messages.is_some() || self.rate.daily_tokens.is_some() || workspace_limit.is_some();
        // Nothing to read when no quota can apply: none configured, and no profile sets one
        // (or profiles do not apply, with limits off).
        let profiles_may = self.rate.enabled && self.ports.profiles_set_quotas().await?;
        if !(configured || profiles_may) {
            return Ok(());
        }
        let now = self.ports.now();
        let usage = self.ports.usage_today(caller, workspace, workspace_limit.is_some(), day_of(now)).await?;
        for quota in self.quotas(&usage, Some(workspace_limit)) {
            let kind_matches = match spend {
                Spend::Message => quota.kind == QuotaKind::Messages,
                Spend::Tokens => quota.kind == QuotaKind::Tokens,
            };
            if kind_matches && quota.remaining == 0 {
                let kind = if spend == Spend::Message { "messages" } else { "tokens" };
                let retry_after_secs = (quota.resets_at - now).whole_seconds().max(1) as u64;
                return Err(DomainError::QuotaExceeded { kind, resets_at: quota.resets_at, retry_after_secs });
            }
        }
        Ok(())
    }

    /// The quotas that apply and today's use of each. `workspace_limit`: `Some` to include
    /// the workspace's quota of the kind being checked (none for `me/limits`).
    fn quotas(&self, usage: &UsageToday, workspace_limit: Option<Option<u64>>) -> Vec<QuotaUsage> {
        let overrides = if self.rate.enabled { usage.overrides } else { QuotaOverrides::default() };
        let resets_at = next_day(self.ports.now());
        let mut quotas = Vec::new();
        let mut add = |kind, scope, limit: Option<u64>, used: u64| {
            if let Some(limit) = limit {
                let remaining = limit.saturating_sub(used);
                quotas.push(QuotaUsage { kind, scope, workspace_id: None, limit, used, remaining, resets_at });
            }
        };
        add(
            QuotaKind::Messages,
            QuotaScope::Caller,
            overrides.daily_messages.or(self.rate.daily_messages),
            usage.caller_messages,
        );
        add(
            QuotaKind::Tokens,
            QuotaScope::Caller,
            overrides.daily_tokens.or(self.rate.daily_tokens),
            usage.caller_tokens,
        );
        if workspace_limit.is_some() {
            add(
                QuotaKind::Messages,
                QuotaScope::Workspace,
                self.rate.workspace_daily_messages,
                usage.workspace_messages,
            );
            add(QuotaKind::Tokens, QuotaScope::Workspace, self.rate.workspace_daily_tokens, usage.workspace_tokens);
        }
        quotas
    }
}

fn day_of(now: OffsetDateTime) -> Date {
    now.to_offset(UtcOffset::UTC).date()
}

/// The next UTC midnight.
fn next_day(now: OffsetDateTime) -> OffsetDateTime {
    let today = day_of(now);
    today.next_day().unwrap_or(today).midnight().assume_utc()
}
