//! Accounts as instance admins see them, and disabling one: its sessions (and any key it is
//! the service user of, or minted) are revoked in one transaction, then forgotten here and,
//! through the fan-out, on every other instance, so its streams end at once.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::DomainResult;
use skein_domain::ports::AccountAdmin;
use skein_shared::UserId;
use skein_shared::limits::{AccountKind, AdminUser};
use time::OffsetDateTime;
use ulid::Ulid;
use uuid::Uuid;

use super::TxError;
use crate::store::codec::{ulid, uuid};
use crate::store::schema::{api_keys, sessions, users};
use crate::store::{Store, db_error};

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct AccountRow {
    id: Uuid,
    email: String,
    display_name: String,
    kind: String,
    is_instance_admin: bool,
    disabled_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl AccountRow {
    fn into_admin_user(self) -> AdminUser {
        AdminUser {
            id: UserId(ulid(self.id)),
            email: self.email,
            display_name: self.display_name,
            kind: if self.kind == "service" { AccountKind::Service } else { AccountKind::Person },
            is_instance_admin: self.is_instance_admin,
            disabled_at: self.disabled_at,
            created_at: self.created_at,
        }
    }
}

/// `%`, `_` and `\` stand for themselves in the pattern.
fn like_pattern(query: &str) -> String {
    let escaped = query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl AccountAdmin for Store {
    async fn list_accounts(
        &self,
        after: Option<UserId>,
        query: Option<String>,
        limit: u32,
    ) -> DomainResult<Vec<AdminUser>> {
        use diesel::dsl::sql;
        use diesel::sql_types::Text;
        let mut conn = self.conn().await?;
        let mut q = users::table.select(AccountRow::as_select()).order(users::id).limit(i64::from(limit)).into_boxed();
        if let Some(after) = after {
            q = q.filter(users::id.gt(uuid(after)));
        }
        if let Some(query) = query {
            let pattern = like_pattern(&query);
            q = q.filter(
                sql::<Text>("lower(email)").like(pattern.clone()).or(sql::<Text>("lower(display_name)").like(pattern)),
            );
        }
        let rows: Vec<AccountRow> = q.load(&mut conn).await.map_err(db_error)?;
        Ok(rows.into_iter().map(AccountRow::into_admin_user).collect())
    }

    async fn account(&self, id: UserId) -> DomainResult<Option<AdminUser>> {
        let mut conn = self.conn().await?;
        let row: Option<AccountRow> = users::table
            .find(uuid(id))
            .select(AccountRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(row.map(AccountRow::into_admin_user))
    }

    async fn set_account_disabled(&self, id: UserId, disabled: bool) -> DomainResult<Option<AdminUser>> {
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        let user = uuid(id);
        let (row, ended) = conn
            .transaction(async |conn| {
                let row: Option<AccountRow> = diesel::update(users::table.find(user))
                    .set(users::disabled_at.eq(disabled.then_some(now)))
                    .returning(AccountRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                let mut ended: Vec<Uuid> = Vec::new();
                if row.is_some() && disabled {
                    // Its key (as a service user) and the keys it minted end with it.
                    let keys: Vec<Uuid> = diesel::update(
                        api_keys::table
                            .filter(api_keys::user_id.eq(user).or(api_keys::created_by.eq(user)))
                            .filter(api_keys::revoked_at.is_null()),
                    )
                    .set(api_keys::revoked_at.eq(now))
                    .returning(api_keys::id)
                    .get_results(conn)
                    .await?;
                    ended = diesel::update(
                        sessions::table
                            .filter(sessions::user_id.eq(user).or(sessions::id.eq_any(&keys)))
                            .filter(sessions::revoked_at.is_null()),
                    )
                    .set(sessions::revoked_at.eq(now))
                    .returning(sessions::id)
                    .get_results(conn)
                    .await?;
                }
                Ok::<_, TxError>((row, ended))
            })
            .await?;
        for session in ended {
            let session = Ulid::from(session);
            self.sessions.forget(session);
            self.signals.session_ended(session);
        }
        Ok(row.map(AccountRow::into_admin_user))
    }
}
