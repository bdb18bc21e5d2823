//! Rate-limit profiles, their assignments and the GCRA buckets. Taking from a bucket is one
//! call of `skein_rate_take` (the migration's function): it resolves the profile that applies
//! (key → user → workspace → default) and decides under the bucket row's lock, so every
//! instance shares one exact budget and an admin's change applies to the very next request
//! everywhere (there is no cache to announce it to).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::entities::{RateStanding, UsageToday};
use skein_domain::ports::RateLimitRepo;
use skein_domain::rate::{Bucket, Place, RateRequest, Spender, Taken};
use skein_domain::{DomainError, DomainResult};
use skein_shared::limits::{
    AppliedProfile, AssignedTo, LimitSubject, QuotaOverrides, RateLimitProfile, RateRule, RouteClass,
};
use skein_shared::{RateLimitProfileId, UserId, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::TxError;
use crate::store::codec::{ulid, unique_violation, uuid};
use crate::store::schema::{
    api_keys, rate_limit_assignments, rate_limit_profiles, rate_limit_rules, users, workspaces,
};
use crate::store::{Store, db_error};

#[derive(QueryableByName)]
struct TakeRow {
    #[diesel(sql_type = Text)]
    profile_name: String,
    #[diesel(sql_type = Int4)]
    burst: i32,
    #[diesel(sql_type = Int4)]
    per_seconds: i32,
    #[diesel(sql_type = Bool)]
    allowed: bool,
    #[diesel(sql_type = Timestamptz)]
    tat: OffsetDateTime,
}

#[derive(QueryableByName)]
struct StandingRow {
    #[diesel(sql_type = SqlUuid)]
    profile_id: Uuid,
    #[diesel(sql_type = Text)]
    assigned_to: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Int8>)]
    daily_messages: Option<i64>,
    #[diesel(sql_type = Nullable<Int8>)]
    daily_tokens: Option<i64>,
}

#[derive(QueryableByName)]
struct BucketRow {
    #[diesel(sql_type = Text)]
    route_class: String,
    #[diesel(sql_type = Int4)]
    burst: i32,
    #[diesel(sql_type = Int4)]
    per_seconds: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    tat: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    interval: Option<f64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = rate_limit_profiles)]
struct ProfileRow {
    id: Uuid,
    name: String,
    is_default: bool,
    daily_messages: Option<i64>,
    daily_tokens: Option<i64>,
    updated_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = rate_limit_rules)]
struct RuleRow {
    profile_id: Uuid,
    route_class: String,
    burst: i32,
    per_seconds: i32,
}

impl RuleRow {
    fn into_rule(self) -> Option<RateRule> {
        Some(RateRule {
            route_class: RouteClass::parse(&self.route_class)?,
            burst: u32::try_from(self.burst).ok()?,
            per_seconds: u32::try_from(self.per_seconds).ok()?,
        })
    }
}

fn quotas(messages: Option<i64>, tokens: Option<i64>) -> QuotaOverrides {
    let count = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    QuotaOverrides { daily_messages: count(messages), daily_tokens: count(tokens) }
}

fn stored_quota(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn assigned_to(kind: &str) -> AssignedTo {
    match kind {
        "api_key" => AssignedTo::ApiKey,
        "user" => AssignedTo::User,
        "workspace" => AssignedTo::Workspace,
        _ => AssignedTo::Instance,
    }
}

impl RateLimitRepo for Store {
    async fn take_rate(&self, request: RateRequest, now: OffsetDateTime) -> DomainResult<Option<Taken>> {
        let (user, api_key) = match request.spender {
            Spender::Caller { user, api_key } => (Some(uuid(user)), api_key.map(uuid)),
            Spender::Address(_) => (None, None),
        };
        let (workspace, conversation, message) = match request.place {
            Place::Nowhere => (None, None, None),
            Place::Workspace(w) => (Some(uuid(w)), None, None),
            Place::Conversation(c) => (None, Some(uuid(c)), None),
            Place::Message(m) => (None, None, Some(uuid(m))),
        };
        let mut conn = self.conn().await?;
        let row: Option<TakeRow> = diesel::sql_query("SELECT * FROM skein_rate_take($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind::<Text, _>(request.spender_key())
            .bind::<Text, _>(request.class.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<SqlUuid>, _>(user)
            .bind::<Nullable<SqlUuid>, _>(api_key)
            .bind::<Nullable<SqlUuid>, _>(workspace)
            .bind::<Nullable<SqlUuid>, _>(conversation)
            .bind::<Nullable<SqlUuid>, _>(message)
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(row.map(|row| Taken {
            profile: row.profile_name,
            rule: RateRule {
                route_class: request.class,
                burst: u32::try_from(row.burst).unwrap_or(1),
                per_seconds: u32::try_from(row.per_seconds).unwrap_or(1),
            },
            allowed: row.allowed,
            tat: row.tat,
        }))
    }

    async fn rate_standing(&self, user: UserId) -> DomainResult<Option<RateStanding>> {
        let mut conn = self.conn().await?;
        let standing: Option<StandingRow> = diesel::sql_query(
            "SELECT s.profile_id, s.assigned_to, p.name, p.daily_messages, p.daily_tokens \
             FROM skein_rate_profile($1, (SELECT k.id FROM api_keys k WHERE k.user_id = $1), NULL, NULL, NULL) s \
             JOIN rate_limit_profiles p ON p.id = s.profile_id",
        )
        .bind::<SqlUuid, _>(uuid(user))
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db_error)?;
        let Some(standing) = standing else { return Ok(None) };
        // The buckets are keyed as `skein_rate_take` keys them: `<class>:<profile>:u:<user>`.
        let buckets: Vec<BucketRow> = diesel::sql_query(
            "SELECT r.route_class, r.burst, r.per_seconds, b.tat, b.interval FROM rate_limit_rules r \
             LEFT JOIN rate_limit_buckets b ON b.bucket = r.route_class || ':' || r.profile_id || ':u:' || $2 \
             WHERE r.profile_id = $1 ORDER BY r.route_class",
        )
        .bind::<SqlUuid, _>(standing.profile_id)
        .bind::<Text, _>(user.to_string())
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        let rules = buckets
            .into_iter()
            .filter_map(|b| {
                let rule = RuleRow {
                    profile_id: standing.profile_id,
                    route_class: b.route_class,
                    burst: b.burst,
                    per_seconds: b.per_seconds,
                }
                .into_rule()?;
                let bucket = b.tat.zip(b.interval).map(|(tat, interval_secs)| Bucket { tat, interval_secs });
                Some((rule, bucket))
            })
            .collect();
        Ok(Some(RateStanding {
            profile: AppliedProfile {
                id: RateLimitProfileId(ulid(standing.profile_id)),
                name: standing.name,
                assigned_to: assigned_to(&standing.assigned_to),
            },
            quotas: quotas(standing.daily_messages, standing.daily_tokens),
            rules,
        }))
    }

    async fn usage_today(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        count_workspace: bool,
        day: time::Date,
    ) -> DomainResult<UsageToday> {
        // The migration's `skein_usage_today`: one round trip.
        let mut conn = self.conn().await?;
        let row: UsageRow = diesel::sql_query("SELECT * FROM skein_usage_today($1, $2, $3, $4)")
            .bind::<SqlUuid, _>(uuid(user))
            .bind::<Nullable<SqlUuid>, _>(workspace.map(uuid))
            .bind::<Bool, _>(count_workspace)
            .bind::<diesel::sql_types::Date, _>(day)
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(UsageToday {
            caller_messages: count(row.caller_messages),
            caller_tokens: count(row.caller_tokens),
            workspace_messages: count(row.workspace_messages),
            workspace_tokens: count(row.workspace_tokens),
            overrides: quotas(row.daily_messages, row.daily_tokens),
        })
    }

    async fn profiles_set_quotas(&self) -> DomainResult<bool> {
        // Read at most once a second: every post asks, and profiles change rarely.
        if let Some(known) = self.quota_profiles.fresh() {
            return Ok(known);
        }
        let mut conn = self.conn().await?;
        let set = rate_limit_profiles::daily_messages.is_not_null().or(rate_limit_profiles::daily_tokens.is_not_null());
        let any: bool = diesel::select(diesel::dsl::exists(rate_limit_profiles::table.filter(set)))
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        self.quota_profiles.remember(any);
        Ok(any)
    }

    async fn list_rate_profiles(&self) -> DomainResult<Vec<RateLimitProfile>> {
        self.profiles(None).await
    }

    async fn rate_profile(&self, id: RateLimitProfileId) -> DomainResult<Option<RateLimitProfile>> {
        Ok(self.profiles(Some(id)).await?.pop())
    }

    async fn save_rate_profile(&self, profile: RateLimitProfile) -> DomainResult<RateLimitProfile> {
        let mut conn = self.conn().await?;
        let id = uuid(profile.id);
        let result = conn
            .transaction(async |conn| {
                diesel::insert_into(rate_limit_profiles::table)
                    .values((
                        rate_limit_profiles::id.eq(id),
                        rate_limit_profiles::name.eq(&profile.name),
                        rate_limit_profiles::daily_messages.eq(stored_quota(profile.quotas.daily_messages)),
                        rate_limit_profiles::daily_tokens.eq(stored_quota(profile.quotas.daily_tokens)),
                        rate_limit_profiles::updated_at.eq(profile.updated_at),
                    ))
                    .on_conflict(rate_limit_profiles::id)
                    .do_update()
                    .set((
                        rate_limit_profiles::name.eq(&profile.name),
                        rate_limit_profiles::daily_messages.eq(stored_quota(profile.quotas.daily_messages)),
                        rate_limit_profiles::daily_tokens.eq(stored_quota(profile.quotas.daily_tokens)),
                        rate_limit_profiles::updated_at.eq(profile.updated_at),
                    ))
                    .execute(conn)
                    .await?;
                diesel::delete(rate_limit_rules::table.filter(rate_limit_rules::profile_id.eq(id)))
                    .execute(conn)
                    .await?;
                let rules: Vec<_> = profile
                    .rules
                    .iter()
                    .map(|r| {
                        (
                            rate_limit_rules::profile_id.eq(id),
                            rate_limit_rules::route_class.eq(r.route_class.as_str()),
                            rate_limit_rules::burst.eq(i32::try_from(r.burst).unwrap_or(i32::MAX)),
                            rate_limit_rules::per_seconds.eq(i32::try_from(r.per_seconds).unwrap_or(i32::MAX)),
                        )
                    })
                    .collect();
                diesel::insert_into(rate_limit_rules::table).values(rules).execute(conn).await?;
                Ok::<_, TxError>(())
            })
            .await;
        self.quota_profiles.forget();
        match result {
            Ok(()) => {}
            Err(TxError::Db(e)) if unique_violation(&e).is_some() => {
                return Err(DomainError::field("name", "taken", "another profile has this name"));
            }
            Err(e) => return Err(e.into()),
        }
        self.rate_profile(profile.id).await?.ok_or(DomainError::NotFound)
    }

    async fn delete_rate_profile(&self, id: RateLimitProfileId) -> DomainResult<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::delete(
            rate_limit_profiles::table
                .filter(rate_limit_profiles::id.eq(uuid(id)))
                .filter(rate_limit_profiles::is_default.eq(false)),
        )
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(n == 1)
    }

    async fn assign_rate_profile(
        &self,
        subject: LimitSubject,
        profile: Option<RateLimitProfileId>,
    ) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let profile = profile.map(uuid);
        conn.transaction(async |conn| {
            if let Some(profile) = profile {
                let exists = diesel::select(diesel::dsl::exists(rate_limit_profiles::table.find(profile)))
                    .get_result::<bool>(conn)
                    .await?;
                if !exists {
                    return Err(DomainError::field("profile_id", "not_found", "no such profile").into());
                }
            }
            let (kind, id) = match subject {
                LimitSubject::Instance => {
                    let Some(profile) = profile else { return Ok(()) };
                    // The old default first: the unique index checks each row as it changes.
                    diesel::update(rate_limit_profiles::table.filter(rate_limit_profiles::is_default))
                        .set(rate_limit_profiles::is_default.eq(false))
                        .execute(conn)
                        .await?;
                    diesel::update(rate_limit_profiles::table.find(profile))
                        .set(rate_limit_profiles::is_default.eq(true))
                        .execute(conn)
                        .await?;
                    return Ok(());
                }
                LimitSubject::Workspace(w) => ("workspace", uuid(w)),
                LimitSubject::User(u) => ("user", uuid(u)),
                LimitSubject::ApiKey(k) => ("api_key", uuid(k)),
            };
            let exists = match subject {
                LimitSubject::Workspace(_) => {
                    diesel::select(diesel::dsl::exists(workspaces::table.find(id))).get_result::<bool>(conn).await?
                }
                LimitSubject::User(_) => {
                    diesel::select(diesel::dsl::exists(users::table.find(id))).get_result::<bool>(conn).await?
                }
                _ => diesel::select(diesel::dsl::exists(api_keys::table.find(id))).get_result::<bool>(conn).await?,
            };
            if !exists {
                return Err(DomainError::NotFound.into());
            }
            let assignment = rate_limit_assignments::table
                .filter(rate_limit_assignments::subject_kind.eq(kind))
                .filter(rate_limit_assignments::subject_id.eq(id));
            match profile {
                None => {
                    diesel::delete(assignment).execute(conn).await?;
                }
                Some(profile) => {
                    diesel::insert_into(rate_limit_assignments::table)
                        .values((
                            rate_limit_assignments::subject_kind.eq(kind),
                            rate_limit_assignments::subject_id.eq(id),
                            rate_limit_assignments::profile_id.eq(profile),
                        ))
                        .on_conflict((rate_limit_assignments::subject_kind, rate_limit_assignments::subject_id))
                        .do_update()
                        .set(rate_limit_assignments::profile_id.eq(profile))
                        .execute(conn)
                        .await?;
                }
            }
            Ok::<_, TxError>(())
        })
        .await
        .map_err(DomainError::from)
    }
}

impl Store {
    /// Every profile (or one) with its rules, in two queries.
    async fn profiles(&self, only: Option<RateLimitProfileId>) -> DomainResult<Vec<RateLimitProfile>> {
        let mut conn = self.conn().await?;
        let mut query =
            rate_limit_profiles::table.select(ProfileRow::as_select()).order(rate_limit_profiles::name).into_boxed();
        if let Some(id) = only {
            query = query.filter(rate_limit_profiles::id.eq(uuid(id)));
        }
        let profiles: Vec<ProfileRow> = query.load(&mut conn).await.map_err(db_error)?;
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.id).collect();
        let rules: Vec<RuleRow> = rate_limit_rules::table
            .filter(rate_limit_rules::profile_id.eq_any(&ids))
            .order(rate_limit_rules::route_class)
            .select(RuleRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        let mut by_profile: HashMap<Uuid, Vec<RateRule>> = HashMap::new();
        for rule in rules {
            let profile = rule.profile_id;
            if let Some(rule) = rule.into_rule() {
                by_profile.entry(profile).or_default().push(rule);
            }
        }
        Ok(profiles
            .into_iter()
            .map(|p| RateLimitProfile {
                id: RateLimitProfileId(ulid(p.id)),
                rules: by_profile.remove(&p.id).unwrap_or_default(),
                quotas: quotas(p.daily_messages, p.daily_tokens),
                name: p.name,
                is_default: p.is_default,
                updated_at: p.updated_at,
            })
            .collect())
    }
}

#[derive(QueryableByName)]
struct UsageRow {
    #[diesel(sql_type = Int8)]
    caller_messages: i64,
    #[diesel(sql_type = Int8)]
    caller_tokens: i64,
    #[diesel(sql_type = Int8)]
    workspace_messages: i64,
    #[diesel(sql_type = Int8)]
    workspace_tokens: i64,
    #[diesel(sql_type = Nullable<Int8>)]
    daily_messages: Option<i64>,
    #[diesel(sql_type = Nullable<Int8>)]
    daily_tokens: Option<i64>,
}
