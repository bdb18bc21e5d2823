//! API keys. A key is a session (same id) of a service user made for it, so that a request
//! with a key authenticates exactly as one with a session token, and revoking the key is
//! revoking that session: the cache forgets it and the fan-out tells every other instance.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::DomainResult;
use skein_domain::entities::NewApiKey;
use skein_domain::ports::ApiKeyRepo;
use skein_shared::api_key::ApiKey;
use skein_shared::conversation::ConversationRole;
use skein_shared::event::{MembershipChange, MembershipChanged};
use skein_shared::{ApiKeyId, WorkspaceId};
use time::{Duration, OffsetDateTime};
use ulid::Ulid;

use super::TxError;
use super::accounts::TOUCH_EVERY;
use super::conversations::insert_member;
use super::workspaces::workspace_change;
use crate::store::codec::{enum_to_db, uuid};
use crate::store::rows::ApiKeyRow;
use crate::store::schema::{api_keys, sessions, users, workspace_members};
use crate::store::{Store, db_error, log};

/// A key without an expiry still needs a session expiry: far enough never to matter.
const NEVER: Duration = Duration::days(100 * 365);

impl ApiKeyRepo for Store {
    async fn create_api_key(&self, new: NewApiKey) -> DomainResult<ApiKey> {
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        let (key_id, user_id, workspace) = (uuid(new.id), uuid(new.service_user), uuid(new.workspace_id));
        let row = conn
            .transaction(async |conn| {
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(user_id),
                        // Never a login: no password, and an address no one can own.
                        users::email.eq(format!("{}@service.invalid", new.id)),
                        users::display_name.eq(&new.name),
                        users::password_hash.eq(""),
                        users::kind.eq("service"),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(workspace_members::table)
                    .values((
                        workspace_members::workspace_id.eq(workspace),
                        workspace_members::user_id.eq(user_id),
                        workspace_members::role.eq(enum_to_db(new.workspace_role)),
                    ))
                    .execute(conn)
                    .await?;
                let change = workspace_change(
                    new.workspace_id,
                    new.service_user,
                    MembershipChange::Added,
                    Some(new.workspace_role),
                );
                log::workspace_membership_changed(conn, change).await?;
                // In id order, as every writer that takes several conversation locks.
                for conversation in new.conversation_ids.iter().flatten() {
                    log::lock_conversation(conn, uuid(*conversation)).await?;
                    let role = ConversationRole::Member;
                    insert_member(conn, uuid(*conversation), user_id, &enum_to_db(role)).await?;
                    let joined = MembershipChanged {
                        user_id: new.service_user,
                        change: MembershipChange::Added,
                        role: Some(role),
                    };
                    log::membership_changed(conn, *conversation, joined).await?;
                }
                diesel::insert_into(sessions::table)
                    .values((
                        sessions::id.eq(key_id),
                        sessions::user_id.eq(user_id),
                        sessions::token_digest.eq(&new.token_digest),
                        // Keys travel in the Authorization header, never in a cookie.
                        sessions::csrf_token.eq(""),
                        sessions::expires_at.eq(new.expires_at.unwrap_or(now + NEVER)),
                        sessions::created_at.eq(now),
                        // Before its creation, so that its first request records its use.
                        sessions::last_used_at.eq(now - TOUCH_EVERY),
                    ))
                    .execute(conn)
                    .await?;
                let scopes: Vec<String> = new.scopes.iter().map(|s| s.as_str().to_owned()).collect();
                let ids = new.conversation_ids.as_ref().map(|ids| ids.iter().map(|c| uuid(*c)).collect::<Vec<_>>());
                let row = diesel::insert_into(api_keys::table)
                    .values((
                        api_keys::id.eq(key_id),
                        api_keys::workspace_id.eq(workspace),
                        api_keys::user_id.eq(user_id),
                        api_keys::name.eq(&new.name),
                        api_keys::scopes.eq(scopes),
                        api_keys::conversation_ids.eq(ids),
                        api_keys::prefix.eq(&new.prefix),
                        api_keys::created_by.eq(uuid(new.created_by)),
                        api_keys::created_at.eq(now),
                        api_keys::expires_at.eq(new.expires_at),
                    ))
                    .returning(ApiKeyRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok::<_, TxError>(row)
            })
            .await?;
        self.signals.committed();
        row.into_api_key(now - TOUCH_EVERY)
    }

    async fn list_api_keys(
        &self,
        workspace: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> DomainResult<Vec<ApiKey>> {
        let mut conn = self.conn().await?;
        let mut query = api_keys::table
            .inner_join(sessions::table.on(sessions::id.eq(api_keys::id)))
            .filter(api_keys::workspace_id.eq(uuid(workspace)))
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(self.clock.now())))
            .order(api_keys::id.asc())
            .limit(i64::from(limit))
            .select((ApiKeyRow::as_select(), sessions::last_used_at))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(api_keys::id.gt(uuid(after)));
        }
        let rows: Vec<(ApiKeyRow, OffsetDateTime)> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(|(row, used)| row.into_api_key(used)).collect()
    }

    async fn revoke_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> DomainResult<bool> {
        let mut conn = self.conn().await?;
        let now = self.clock.now();
        let key = uuid(id);
        let revoked = conn
            .transaction(async |conn| {
                let n = diesel::update(
                    api_keys::table
                        .filter(api_keys::id.eq(key))
                        .filter(api_keys::workspace_id.eq(uuid(workspace)))
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(now))
                .execute(conn)
                .await?;
                if n == 1 {
                    diesel::update(sessions::table.find(key)).set(sessions::revoked_at.eq(now)).execute(conn).await?;
                }
                Ok::<_, TxError>(n == 1)
            })
            .await?;
        if revoked {
            let session = Ulid::from(id);
            self.sessions.forget(session);
            self.signals.session_ended(session);
        }
        Ok(revoked)
    }
}
