use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::entities::Created;
use skein_domain::ports::WorkspaceRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::event::{MembershipChange, MembershipChanged, WorkspaceMembershipChanged};
use skein_shared::workspace::{Workspace, WorkspaceMember, WorkspaceRole};
use skein_shared::{ConversationId, UserId, WorkspaceId};
use ulid::Ulid;
use uuid::Uuid;

use super::TxError;
use crate::store::codec::{enum_from_db, enum_to_db, foreign_key_violation, ulid, uuid};
use crate::store::log;
use crate::store::rows::{WorkspaceMemberRow, WorkspaceRow, workspace_member};
use crate::store::schema::{
    conversation_members, conversation_reads, conversations, users, workspace_members, workspaces,
};
use crate::store::{Store, db_error};

const OWNER: &str = "owner";

impl WorkspaceRepo for Store {
    async fn create_workspace(&self, id: WorkspaceId, name: String, owner: UserId) -> DomainResult<Workspace> {
        let mut conn = self.conn().await?;
        let row = conn
            .transaction(async |conn| {
                let row = diesel::insert_into(workspaces::table)
                    .values((
                        workspaces::id.eq(uuid(id)),
                        workspaces::name.eq(&name),
                        workspaces::created_by.eq(uuid(owner)),
                    ))
                    .returning(WorkspaceRow::as_returning())
                    .get_result(conn)
                    .await?;
                diesel::insert_into(workspace_members::table)
                    .values((
                        workspace_members::workspace_id.eq(uuid(id)),
                        workspace_members::user_id.eq(uuid(owner)),
                        workspace_members::role.eq(OWNER),
                    ))
                    .execute(conn)
                    .await?;
                let change = workspace_change(id, owner, MembershipChange::Added, Some(WorkspaceRole::Owner));
                log::workspace_membership_changed(conn, change).await?;
                Ok::<_, TxError>(row)
            })
            .await?;
        self.signals.committed();
        row.with_role(OWNER)
    }

    async fn workspace_for(&self, id: WorkspaceId, user: UserId) -> DomainResult<Option<Workspace>> {
        let mut conn = self.conn().await?;
        let row = workspaces::table
            .inner_join(workspace_members::table.on(workspace_members::workspace_id.eq(workspaces::id)))
            .filter(workspaces::id.eq(uuid(id)))
            .filter(workspace_members::user_id.eq(uuid(user)))
            .select((WorkspaceRow::as_select(), workspace_members::role))
            .first::<(WorkspaceRow, String)>(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(|(w, role)| w.with_role(&role)).transpose()
    }

    async fn list_workspaces(&self, user: UserId, after: Option<Ulid>, limit: u32) -> DomainResult<Vec<Workspace>> {
        let mut conn = self.conn().await?;
        let mut query = workspaces::table
            .inner_join(workspace_members::table.on(workspace_members::workspace_id.eq(workspaces::id)))
            .filter(workspace_members::user_id.eq(uuid(user)))
            .select((WorkspaceRow::as_select(), workspace_members::role))
            .order(workspaces::id)
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(workspaces::id.gt(uuid(after)));
        }
        let rows: Vec<(WorkspaceRow, String)> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(|(w, role)| w.with_role(&role)).collect()
    }

    async fn workspace_role(&self, id: WorkspaceId, user: UserId) -> DomainResult<Option<WorkspaceRole>> {
        let mut conn = self.conn().await?;
        role_in(&mut conn, uuid(id), uuid(user)).await.map_err(db_error)?.as_deref().map(enum_from_db).transpose()
    }

    async fn list_workspace_members(
        &self,
        id: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> DomainResult<Vec<WorkspaceMember>> {
        let mut conn = self.conn().await?;
        let mut query = member_query()
            .filter(workspace_members::workspace_id.eq(uuid(id)))
            .order(workspace_members::user_id)
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(workspace_members::user_id.gt(uuid(after)));
        }
        let rows: Vec<WorkspaceMemberRow> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(workspace_member).collect()
    }

    async fn add_workspace_member(
        &self,
        id: WorkspaceId,
        user: UserId,
        role: WorkspaceRole,
    ) -> DomainResult<Created<WorkspaceMember>> {
        let mut conn = self.conn().await?;
        let inserted = conn
            .transaction(async |conn| {
                let inserted = diesel::insert_into(workspace_members::table)
                    .values((
                        workspace_members::workspace_id.eq(uuid(id)),
                        workspace_members::user_id.eq(uuid(user)),
                        workspace_members::role.eq(enum_to_db(role)),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await
                    .map_err(
                        |e| if foreign_key_violation(&e) { DomainError::NotFound.into() } else { TxError::from(e) },
                    )?;
                if inserted == 1 {
                    let change = workspace_change(id, user, MembershipChange::Added, Some(role));
                    log::workspace_membership_changed(conn, change).await?;
                }
                Ok::<_, TxError>(inserted)
            })
            .await?;
        if inserted == 1 {
            self.signals.committed();
        }
        let member = load_member(&mut conn, uuid(id), uuid(user)).await?;
        Ok(if inserted == 1 { Created::New(member) } else { Created::Existing(member) })
    }

    async fn set_workspace_role(
        &self,
        id: WorkspaceId,
        user: UserId,
        role: WorkspaceRole,
    ) -> DomainResult<WorkspaceMember> {
        let mut conn = self.conn().await?;
        let (ws, user_uuid) = (uuid(id), uuid(user));
        let changed = conn
            .transaction(async |conn| {
                let current = ensure_an_owner_remains(conn, ws, user_uuid, role == WorkspaceRole::Owner).await?;
                if current == enum_to_db(role) {
                    return Ok(false);
                }
                diesel::update(workspace_members::table.find((ws, user_uuid)))
                    .set(workspace_members::role.eq(enum_to_db(role)))
                    .execute(conn)
                    .await?;
                let change = workspace_change(id, user, MembershipChange::RoleChanged, Some(role));
                log::workspace_membership_changed(conn, change).await?;
                Ok::<_, TxError>(true)
            })
            .await?;
        if changed {
            self.signals.committed();
        }
        load_member(&mut conn, ws, user_uuid).await
    }

    async fn remove_workspace_member(&self, id: WorkspaceId, user: UserId) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let (ws, user_uuid) = (uuid(id), uuid(user));
        conn.transaction(async |conn| {
            ensure_an_owner_remains(conn, ws, user_uuid, false).await?;
            diesel::delete(workspace_members::table.find((ws, user_uuid))).execute(conn).await?;
            log::workspace_membership_changed(conn, workspace_change(id, user, MembershipChange::Removed, None))
                .await?;
            // They leave the workspace's conversations too, each with its event. (The
            // workspace lock came first here, so these events may sort before a message
            // committed just earlier in the same conversation; the order is still one
            // order for every reader.)
            let mut memberships: Vec<Uuid> = conversation_members::table
                .inner_join(conversations::table.on(conversations::id.eq(conversation_members::conversation_id)))
                .filter(conversations::workspace_id.eq(ws))
                .filter(conversation_members::user_id.eq(user_uuid))
                .select(conversation_members::conversation_id)
                .load(conn)
                .await?;
            memberships.sort();
            for conv in &memberships {
                log::lock_conversation(conn, *conv).await?;
                diesel::delete(conversation_members::table.find((*conv, user_uuid))).execute(conn).await?;
                let change = MembershipChanged { user_id: user, change: MembershipChange::Removed, role: None };
                log::membership_changed(conn, ConversationId(ulid(*conv)), change).await?;
            }
            // And the read cursors they kept as implicit members.
            let of_workspace =
                conversations::table.filter(conversations::workspace_id.eq(ws)).select(conversations::id);
            diesel::delete(
                conversation_reads::table
                    .filter(conversation_reads::user_id.eq(user_uuid))
                    .filter(conversation_reads::conversation_id.eq_any(of_workspace)),
            )
            .execute(conn)
            .await?;
            Ok::<_, TxError>(())
        })
        .await?;
        self.signals.committed();
        Ok(())
    }

    async fn workspace_members_among(&self, id: WorkspaceId, candidates: &[UserId]) -> DomainResult<Vec<UserId>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let ids: Vec<Uuid> = candidates.iter().map(|u| uuid(*u)).collect();
        let found: Vec<Uuid> = workspace_members::table
            .filter(workspace_members::workspace_id.eq(uuid(id)))
            .filter(workspace_members::user_id.eq_any(&ids))
            .select(workspace_members::user_id)
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(found.into_iter().map(|u| UserId(ulid(u))).collect())
    }
}

#[diesel::dsl::auto_type(no_type_alias)]
fn member_query() -> _ {
    workspace_members::table.inner_join(users::table.on(users::id.eq(workspace_members::user_id))).select((
        workspace_members::user_id,
        users::display_name,
        users::email,
        workspace_members::role,
        workspace_members::joined_at,
    ))
}

async fn load_member(conn: &mut AsyncPgConnection, ws: Uuid, user: Uuid) -> DomainResult<WorkspaceMember> {
    let row: WorkspaceMemberRow = member_query()
        .filter(workspace_members::workspace_id.eq(ws))
        .filter(workspace_members::user_id.eq(user))
        .first(conn)
        .await
        .map_err(db_error)?;
    workspace_member(row)
}

async fn role_in(conn: &mut AsyncPgConnection, ws: Uuid, user: Uuid) -> QueryResult<Option<String>> {
    workspace_members::table.find((ws, user)).select(workspace_members::role).first(conn).await.optional()
}

pub(super) fn workspace_change(
    workspace_id: WorkspaceId,
    user_id: UserId,
    change: MembershipChange,
    role: Option<WorkspaceRole>,
) -> WorkspaceMembershipChanged {
    WorkspaceMembershipChanged { workspace_id, user_id, change, role }
}

/// Inside a transaction: locks the workspace's membership and fails with `LastOwner` when
/// taking `user` out of the owners would leave none; `NotFound` when `user` is not a member.
/// Returns the user's current role.
async fn ensure_an_owner_remains(
    conn: &mut AsyncPgConnection,
    ws: Uuid,
    user: Uuid,
    stays_owner: bool,
) -> Result<String, TxError> {
    // The workspace row is the lock that serialises membership changes of one workspace.
    workspaces::table.find(ws).select(workspaces::id).for_update().first::<Uuid>(conn).await?;
    let current = role_in(conn, ws, user).await?.ok_or(DomainError::NotFound)?;
    if current == OWNER && !stays_owner {
        let owners: i64 = workspace_members::table
            .filter(workspace_members::workspace_id.eq(ws))
            .filter(workspace_members::role.eq(OWNER))
            .count()
            .get_result(conn)
            .await?;
        if owners <= 1 {
            return Err(DomainError::last_owner().into());
        }
    }
    Ok(current)
}
