use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::entities::{ApiKeyGrant, Credential, NewSession, NewUser, Session};
use skein_domain::ports::AccountRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::auth::User;
use skein_shared::{ApiKeyId, ErrorCode};
use time::{Duration, OffsetDateTime};
use ulid::Ulid;

use super::TxError;
use crate::store::codec::{enum_from_db, unique_violation, uuid};
use crate::store::rows::UserRow;
use crate::store::schema::{api_keys, login_failures, rate_limit_buckets, sessions, stream_tokens, users};
use crate::store::{Store, db_error};

/// Sessions are marked used at most this often, so that authenticating is a read.
pub(super) const TOUCH_EVERY: Duration = Duration::minutes(1);

impl AccountRepo for Store {
    async fn begin_login_attempt(
        &self,
        email: &str,
        since: OffsetDateTime,
        max: u32,
    ) -> DomainResult<Option<OffsetDateTime>> {
        use diesel::dsl::{count_star, min};
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            // One attempt per email at a time decides: count, then count itself.
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('login:' || $1, 0))")
                .bind::<diesel::sql_types::Text, _>(email)
                .execute(conn)
                .await?;
            let this_email = login_failures::email.eq(email);
            diesel::delete(login_failures::table.filter(this_email).filter(login_failures::failed_at.le(since)))
                .execute(conn)
                .await?;
            let (count, oldest): (i64, Option<OffsetDateTime>) = login_failures::table
                .filter(this_email)
                .select((count_star(), min(login_failures::failed_at)))
                .first(conn)
                .await?;
            if count >= i64::from(max) {
                return Ok(Some(oldest.unwrap_or(since)));
            }
            diesel::insert_into(login_failures::table).values(this_email).execute(conn).await?;
            Ok::<_, TxError>(None)
        })
        .await
        .map_err(DomainError::from)
    }

    async fn clear_login_failures(&self, email: &str) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        diesel::delete(login_failures::table.filter(login_failures::email.eq(email)))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn sweep_expired(&self, idle: Duration, failures_before: OffsetDateTime) -> DomainResult<u64> {
        use diesel::sql_types::{Interval, Timestamptz};
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        // A day's grace, so a session that has just ended is still recognised as ended (401)
        // rather than unknown. API keys' sessions are their keys: they stay.
        let sessions = diesel::sql_query(
            "DELETE FROM sessions s WHERE (s.expires_at < $1 - interval '1 day'                OR s.revoked_at < $1 - interval '1 day' OR s.last_used_at < $1 - $2 - interval '1 day')              AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.id)",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            i64::try_from(idle.whole_microseconds()).unwrap_or(i64::MAX),
        ));
        let mut swept = sessions.execute(&mut conn).await.map_err(db_error)?;
        swept += diesel::delete(stream_tokens::table.filter(stream_tokens::expires_at.lt(now)))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        swept += diesel::delete(login_failures::table.filter(login_failures::failed_at.lt(failures_before)))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        swept += diesel::delete(rate_limit_buckets::table.filter(rate_limit_buckets::tat.lt(now)))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(swept as u64)
    }

    async fn create_user(&self, new: NewUser) -> DomainResult<User> {
        let mut conn = self.conn().await?;
        let result = conn
            .transaction(async |conn| {
                // Serialise registrations so exactly one account can be the first.
                diesel::sql_query("SELECT pg_advisory_xact_lock(7355608)").execute(conn).await?;
                let first = !diesel::select(diesel::dsl::exists(users::table.select(users::id)))
                    .get_result::<bool>(conn)
                    .await?;
                let row = diesel::insert_into(users::table)
                    .values((
                        users::id.eq(uuid(new.id)),
                        users::email.eq(&new.email),
                        users::display_name.eq(&new.display_name),
                        users::password_hash.eq(&new.password_hash),
                        users::is_instance_admin.eq(first.into_sql::<Bool>()),
                    ))
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok::<_, TxError>(row)
            })
            .await;
        match result {
            Ok(row) => Ok(row.into_user()),
            Err(TxError::Db(e)) if unique_violation(&e).is_some() => {
                Err(DomainError::rule(ErrorCode::EmailTaken, "an account with this email already exists"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn any_user_exists(&self) -> DomainResult<bool> {
        let mut conn = self.conn().await?;
        diesel::select(diesel::dsl::exists(users::table.select(users::id)))
            .get_result(&mut conn)
            .await
            .map_err(db_error)
    }

    async fn find_credential(&self, email: &str) -> DomainResult<Option<Credential>> {
        Ok(self.user_by_email(email).await?.map(UserRow::into_credential))
    }

    async fn find_user_by_email(&self, email: &str) -> DomainResult<Option<User>> {
        Ok(self.user_by_email(email).await?.map(UserRow::into_user))
    }

    async fn create_session(&self, new: NewSession) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(uuid(new.id)),
                sessions::user_id.eq(uuid(new.user_id)),
                sessions::token_digest.eq(&new.token_digest),
                sessions::csrf_token.eq(&new.csrf_token),
                sessions::expires_at.eq(new.expires_at),
                // The server's clock, which every later check reads.
                sessions::created_at.eq(now),
                sessions::last_used_at.eq(now),
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn find_session(&self, token_digest: &[u8], idle: Duration) -> DomainResult<Option<Session>> {
        let now = self.clock.now();
        if let Some(session) = self.sessions.get(token_digest, now) {
            return Ok(Some(session));
        }
        let mut conn = self.conn().await?;
        let found = session_query(token_digest, now)
            // A key's session does not idle out: services call when they have something to do.
            .filter(sessions::last_used_at.gt(now - idle).or(api_keys::id.nullable().is_not_null()))
            .select((SessionColumns::as_select(), sessions::last_used_at))
            .first::<(SessionColumns, OffsetDateTime)>(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        let Some((found, last_used_at)) = found else {
            return Ok(None);
        };
        let Some(session) = found.into_session()? else {
            return Ok(None);
        };
        let expires_at = session.expires_at;
        if last_used_at < now - TOUCH_EVERY {
            diesel::update(sessions::table.find(uuid(session.id)))
                .set(sessions::last_used_at.eq(now))
                .execute(&mut conn)
                .await
                .map_err(db_error)?;
        }
        // Believed for a few seconds at most: idle expiry is minutes away at the least.
        let expires_at = expires_at.min(now + idle);
        self.sessions.put(token_digest.to_vec(), session.clone(), expires_at, now);
        Ok(Some(session))
    }

    async fn create_stream_token(
        &self,
        session: Ulid,
        token_digest: Vec<u8>,
        expires_at: OffsetDateTime,
    ) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        // Expired tokens of any session go whenever a new one is made.
        diesel::delete(stream_tokens::table.filter(stream_tokens::expires_at.le(self.clock.now())))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        diesel::insert_into(stream_tokens::table)
            .values((
                stream_tokens::token_digest.eq(token_digest),
                stream_tokens::session_id.eq(uuid(session)),
                stream_tokens::expires_at.eq(expires_at),
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn find_stream_token(&self, token_digest: &[u8]) -> DomainResult<Option<Session>> {
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        let found = stream_tokens::table
            .inner_join(sessions::table.on(sessions::id.eq(stream_tokens::session_id)))
            .inner_join(users::table.on(users::id.eq(sessions::user_id)))
            .left_join(api_keys::table.on(api_keys::id.eq(sessions::id)))
            .filter(stream_tokens::token_digest.eq(token_digest))
            .filter(stream_tokens::expires_at.gt(now))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .select(SessionColumns::as_select())
            .first::<SessionColumns>(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(found.map(SessionColumns::into_session).transpose()?.flatten())
    }

    fn session_ended(
        &self,
        session: Ulid,
        expires_at: OffsetDateTime,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let ended = self.sessions.ended(session);
        // By the server's clock, as every expiry; a far-off end (a key without one) never comes.
        let left = expires_at - self.clock.now();
        let expiry = async move {
            match left < Duration::days(30) {
                true => tokio::time::sleep(left.max(Duration::ZERO).unsigned_abs()).await,
                false => std::future::pending().await,
            }
        };
        Box::pin(async move {
            tokio::select! {
                () = ended => {}
                () = expiry => {}
            }
        })
    }

    async fn revoke_session(&self, id: Ulid) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        diesel::update(sessions::table.find(uuid(id)))
            .set(sessions::revoked_at.eq(self.clock.now()))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        self.sessions.forget(id);
        self.signals.session_ended(id);
        Ok(())
    }
}

/// A live session by its token digest, with its user and, for a key's session, the key.
#[diesel::dsl::auto_type(no_type_alias)]
fn session_query<'a>(token_digest: &'a [u8], now: OffsetDateTime) -> _ {
    sessions::table
        .inner_join(users::table.on(users::id.eq(sessions::user_id)))
        .left_join(api_keys::table.on(api_keys::id.eq(sessions::id)))
        .filter(sessions::token_digest.eq(token_digest))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::disabled_at.is_null())
}

#[derive(Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct SessionColumns {
    #[diesel(select_expression = sessions::id)]
    id: uuid::Uuid,
    #[diesel(select_expression = sessions::csrf_token)]
    csrf_token: String,
    #[diesel(select_expression = sessions::expires_at)]
    expires_at: OffsetDateTime,
    #[diesel(embed)]
    user: UserRow,
    #[diesel(select_expression = users::kind)]
    user_kind: String,
    #[diesel(select_expression = api_keys::scopes.nullable())]
    key_scopes: Option<Vec<String>>,
}

impl SessionColumns {
    /// `None` for a service user's session without its key (gone with its workspace): a
    /// service never acts without the limits of its key.
    fn into_session(self) -> DomainResult<Option<Session>> {
        let id = Ulid::from(self.id);
        let api_key = match (self.key_scopes, self.user_kind.as_str()) {
            (Some(scopes), _) => Some(ApiKeyGrant {
                id: ApiKeyId(id),
                scopes: scopes.iter().map(|s| enum_from_db(s)).collect::<DomainResult<_>>()?,
            }),
            (None, "person") => None,
            (None, _) => return Ok(None),
        };
        let (user, csrf_token, expires_at) = (self.user.into_user(), self.csrf_token, self.expires_at);
        Ok(Some(Session { id, user, csrf_token, api_key, expires_at }))
    }
}

impl Store {
    async fn user_by_email(&self, email: &str) -> DomainResult<Option<UserRow>> {
        let mut conn = self.conn().await?;
        users::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Text>("lower(email)").eq(email.to_lowercase()))
            // Service users (API keys) neither log in nor get found by address.
            .filter(users::kind.eq("person"))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)
    }
}
