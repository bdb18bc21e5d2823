use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::TimeCursor;
use skein_domain::entities::{
    ConversationAccess, ConversationFilter, ConversationPatch, ConversationRecord, Created, Mentionable,
    NewConversation,
};
use skein_domain::ports::ConversationRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::conversation::{ConversationMember, ConversationRole, Invite, Visibility};
use skein_shared::event::{
    ConversationUpdated, EventBody, MembershipChange, MembershipChanged, WorkspaceMembershipChanged,
};
use skein_shared::workspace::WorkspaceRole;
use skein_shared::{AssistantId, ConversationId, ErrorCode, UserId, WorkspaceId};
use time::OffsetDateTime;
use ulid::Ulid;
use uuid::Uuid;

use super::TxError;
use super::read_state::has_unread;
use super::standing::{departed_from, in_conversation, in_workspace, may_see, standing};
use crate::store::codec::{enum_from_db, enum_to_db, ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::rows::{AccessRow, ConversationMemberRow, ConversationRow, InviteRow, access, conversation_member};
use crate::store::schema::{
    assistants, conversation_members, conversation_reads, conversations, departure_spans, events, invites,
    member_preferences, users, workspace_members,
};
use crate::store::{Store, db_error};

const OWNER: &str = "owner";

impl ConversationRepo for Store {
    async fn create_conversation(&self, new: NewConversation) -> DomainResult<Created<ConversationRecord>> {
        let mut conn = self.conn().await?;
        let r = &new.record;
        let created = conn
            .transaction(async |conn| {
                log::lock_conversation(conn, uuid(r.id)).await?;
                let inserted = diesel::insert_into(conversations::table)
                    .values((
                        conversations::id.eq(uuid(r.id)),
                        conversations::workspace_id.eq(uuid(r.workspace_id)),
                        conversations::kind.eq(enum_to_db(r.kind)),
                        conversations::title.eq(&r.title),
                        conversations::description.eq(&r.description),
                        conversations::visibility.eq(enum_to_db(r.visibility)),
                        conversations::history_visible.eq(r.history_visible_to_new_members),
                        conversations::created_by.eq(uuid(r.created_by)),
                        conversations::direct_key.eq(&new.direct_key),
                        conversations::pin_policy.eq(enum_to_db(r.pin_policy)),
                        conversations::viewer_reactions.eq(r.viewer_reactions),
                    ))
                    .on_conflict_do_nothing()
                    .returning(ConversationRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                let Some(row) = inserted else {
                    // The pair already has a direct conversation: hand that one back.
                    let existing = conversations::table
                        .filter(conversations::direct_key.eq(&new.direct_key))
                        .select(ConversationRow::as_select())
                        .first(conn)
                        .await?;
                    return Ok::<_, TxError>(Created::Existing(existing));
                };
                let members: Vec<_> = new
                    .members
                    .iter()
                    .map(|(user, role)| {
                        (
                            conversation_members::conversation_id.eq(uuid(r.id)),
                            conversation_members::user_id.eq(uuid(*user)),
                            conversation_members::role.eq(enum_to_db(*role)),
                        )
                    })
                    .collect();
                diesel::insert_into(conversation_members::table).values(members).execute(conn).await?;
                let cursors: Vec<_> = new
                    .members
                    .iter()
                    .map(|(user, _)| {
                        (
                            conversation_reads::user_id.eq(uuid(*user)),
                            conversation_reads::conversation_id.eq(uuid(r.id)),
                            conversation_reads::read_seq.eq(0),
                        )
                    })
                    .collect();
                diesel::insert_into(conversation_reads::table).values(cursors).execute(conn).await?;
                for (user, role) in &new.members {
                    let change =
                        MembershipChanged { user_id: *user, change: MembershipChange::Added, role: Some(*role) };
                    log::membership_changed(conn, r.id, change).await?;
                }
                Ok(Created::New(row))
            })
            .await?;
        if matches!(created, Created::New(_)) {
            self.signals.committed();
        }
        created.map(ConversationRow::into_record).transpose()
    }

    async fn access(&self, id: ConversationId, user: UserId) -> DomainResult<Option<ConversationAccess>> {
        let mut conn = self.conn().await?;
        let user = uuid(user);
        let row: Option<AccessRow> = conversations::table
            .inner_join(workspace_members::table.on(in_workspace(user)))
            .left_join(conversation_members::table.on(in_conversation(user)))
            .left_join(departure_spans::table.on(departed_from(user)))
            .filter(conversations::id.eq(uuid(id)))
            .select((ConversationRow::as_select(), standing()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(access).transpose()
    }

    async fn list_conversations(
        &self,
        workspace: Option<WorkspaceId>,
        user: UserId,
        filter: ConversationFilter,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> DomainResult<Vec<ConversationAccess>> {
        let mut conn = self.conn().await?;
        let user = uuid(user);
        let now = self.clock.now();
        let mut query = conversations::table
            .inner_join(workspace_members::table.on(in_workspace(user)))
            .left_join(conversation_members::table.on(in_conversation(user)))
            .left_join(departure_spans::table.on(departed_from(user)))
            .left_join(member_preferences::table.on(
                member_preferences::conversation_id.eq(conversations::id).and(member_preferences::user_id.eq(user)),
            ))
            .filter(may_see())
            .select((ConversationRow::as_select(), standing()))
            .order((conversations::last_activity_at.desc(), conversations::id.desc()))
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(workspace) = workspace {
            query = query.filter(conversations::workspace_id.eq(uuid(workspace)));
        }
        if filter.unread {
            query = query.filter(has_unread(user));
        }
        query = match filter.starred {
            Some(true) => query.filter(member_preferences::starred.eq(true)),
            Some(false) => {
                query.filter(member_preferences::starred.is_null().or(member_preferences::starred.eq(false)))
            }
            None => query,
        };
        query = match filter.muted {
            Some(true) => query.filter(member_preferences::mute_until.gt(now)),
            Some(false) => {
                query.filter(member_preferences::mute_until.is_null().or(member_preferences::mute_until.le(now)))
            }
            None => query,
        };
        query = if filter.archived {
            query.filter(conversations::archived_at.is_not_null())
        } else {
            query.filter(conversations::archived_at.is_null())
        };
        if let Some(c) = after {
            query = query.filter(
                conversations::last_activity_at
                    .lt(c.at)
                    .or(conversations::last_activity_at.eq(c.at).and(conversations::id.lt(uuid(c.id)))),
            );
        }
        let rows: Vec<AccessRow> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(access).collect()
    }

    async fn update_conversation(
        &self,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> DomainResult<ConversationRecord> {
        #[derive(AsChangeset)]
        #[diesel(table_name = conversations)]
        struct Changes {
            title: Option<String>,
            description: Option<Option<String>>,
            visibility: Option<String>,
            history_visible: Option<bool>,
            kind: Option<String>,
            archived_at: Option<Option<OffsetDateTime>>,
            default_assistant_id: Option<Option<Uuid>>,
            pin_policy: Option<String>,
            viewer_reactions: Option<bool>,
        }
        let unchanged = patch.is_empty();
        let changes = Changes {
            title: patch.title,
            // An empty description clears it.
            description: patch.description.map(|d| Some(d).filter(|d| !d.is_empty())),
            visibility: patch.visibility.map(enum_to_db),
            history_visible: patch.history_visible_to_new_members,
            kind: patch.kind.map(enum_to_db),
            archived_at: patch.archived.map(|a| a.then(|| self.clock.now())),
            default_assistant_id: patch.default_assistant_id.map(|a| a.map(uuid)),
            pin_policy: patch.pin_policy.map(enum_to_db),
            viewer_reactions: patch.viewer_reactions,
        };
        let mut conn = self.conn().await?;
        let target = conversations::table.find(uuid(id));
        if unchanged {
            return target.select(ConversationRow::as_select()).first(&mut conn).await.map_err(db_error)?.into_record();
        }
        let record = conn
            .transaction(async |conn| {
                log::lock_conversation(conn, uuid(id)).await?;
                let was_open = target.select(conversations::visibility).first::<String>(conn).await?
                    == enum_to_db(Visibility::Workspace);
                let row = diesel::update(target)
                    .set(changes)
                    .returning(ConversationRow::as_returning())
                    .get_result(conn)
                    .await?;
                let record = row.into_record()?;
                let updated = ConversationUpdated {
                    kind: record.kind,
                    title: record.title.clone(),
                    description: record.description.clone(),
                    visibility: record.visibility,
                    history_visible_to_new_members: record.history_visible_to_new_members,
                    archived: record.archived,
                    default_assistant_id: record.default_assistant_id,
                    pin_policy: record.pin_policy,
                    viewer_reactions: record.viewer_reactions,
                };
                // Made private: its implicit readers get this event as their last from it.
                let event =
                    NewEvent { open_anyway: was_open, ..NewEvent::to_all(id, EventBody::ConversationUpdated(updated)) };
                log::append(conn, &event).await?;
                Ok::<_, TxError>(record)
            })
            .await?;
        self.signals.committed();
        Ok(record)
    }

    async fn list_conversation_members(
        &self,
        id: ConversationId,
        after: Option<Ulid>,
        limit: u32,
    ) -> DomainResult<Vec<ConversationMember>> {
        let mut conn = self.conn().await?;
        let mut query = conversation_members::table
            .inner_join(users::table.on(users::id.eq(conversation_members::user_id)))
            .filter(conversation_members::conversation_id.eq(uuid(id)))
            .select((
                conversation_members::user_id,
                users::display_name,
                conversation_members::role,
                conversation_members::joined_at,
            ))
            .order(conversation_members::user_id)
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(conversation_members::user_id.gt(uuid(after)));
        }
        let rows: Vec<ConversationMemberRow> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(conversation_member).collect()
    }

    async fn conversation_member_role(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> DomainResult<Option<ConversationRole>> {
        let mut conn = self.conn().await?;
        let role = member_role(&mut conn, uuid(id), uuid(user)).await.map_err(db_error)?;
        role.as_deref().map(enum_from_db).transpose()
    }

    async fn add_conversation_member(
        &self,
        id: ConversationId,
        user: UserId,
        role: ConversationRole,
        change: MembershipChange,
    ) -> DomainResult<Created<ConversationMember>> {
        let mut conn = self.conn().await?;
        let (conv, user_id) = (uuid(id), uuid(user));
        let inserted = conn
            .transaction(async |conn| {
                log::lock_conversation(conn, conv).await?;
                let inserted = insert_member(conn, conv, user_id, &enum_to_db(role)).await?;
                if inserted {
                    log::membership_changed(conn, id, MembershipChanged { user_id: user, change, role: Some(role) })
                        .await?;
                }
                Ok::<_, TxError>(inserted)
            })
            .await?;
        if inserted {
            self.signals.committed();
        }
        let (conv, user) = (conv, user_id);
        let row: ConversationMemberRow = conversation_members::table
            .inner_join(users::table.on(users::id.eq(conversation_members::user_id)))
            .filter(conversation_members::conversation_id.eq(conv))
            .filter(conversation_members::user_id.eq(user))
            .select((
                conversation_members::user_id,
                users::display_name,
                conversation_members::role,
                conversation_members::joined_at,
            ))
            .first(&mut conn)
            .await
            .map_err(db_error)?;
        let member = conversation_member(row)?;
        Ok(if inserted { Created::New(member) } else { Created::Existing(member) })
    }

    async fn remove_conversation_member(
        &self,
        id: ConversationId,
        member: UserId,
        change: MembershipChange,
    ) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let (conv, user) = (uuid(id), uuid(member));
        conn.transaction(async |conn| {
            // Serialises membership changes (and every other writer) of one conversation.
            log::lock_conversation(conn, conv).await?;
            let role = member_role(conn, conv, user).await?.ok_or(DomainError::NotFound)?;
            if role == OWNER {
                let others: Vec<String> = conversation_members::table
                    .filter(conversation_members::conversation_id.eq(conv))
                    .filter(conversation_members::user_id.ne(user))
                    .select(conversation_members::role)
                    .load(conn)
                    .await?;
                // The last owner stays (as in workspaces), even as its only member: a
                // conversation is never left without an owner; they hand it over or delete it.
                if !others.iter().any(|r| r == OWNER) {
                    return Err(DomainError::last_owner().into());
                }
            }
            diesel::delete(conversation_members::table.find((conv, user))).execute(conn).await?;
            log::membership_changed(conn, id, MembershipChanged { user_id: member, change, role: None }).await?;
            Ok::<_, TxError>(())
        })
        .await?;
        self.signals.committed();
        Ok(())
    }

    async fn leave_implicitly(&self, id: ConversationId, user: UserId) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            log::lock_conversation(conn, uuid(id)).await?;
            let change = MembershipChanged { user_id: user, change: MembershipChange::Left, role: None };
            log::membership_changed(conn, id, change).await?;
            Ok::<_, TxError>(())
        })
        .await?;
        self.signals.committed();
        Ok(())
    }

    async fn mentionable(&self, conversation: &ConversationRecord, ids: &[Ulid]) -> DomainResult<Mentionable> {
        let mut conn = self.conn().await?;
        let (conv, workspace) = (uuid(conversation.id), uuid(conversation.workspace_id));
        let ids: Vec<Uuid> = ids.iter().map(|i| uuid(*i)).collect();
        // Mirrors roles::effective_conversation_role: explicit members, and in a workspace
        // channel every non-guest member of the workspace who has not left it.
        let users: Vec<Uuid> = if conversation.visibility == Visibility::Workspace {
            let departed = departure_spans::table
                .filter(departure_spans::conversation_id.eq(conv))
                .filter(departure_spans::until_tx.is_null())
                .select(departure_spans::user_id);
            workspace_members::table
                .filter(workspace_members::workspace_id.eq(workspace))
                .filter(workspace_members::user_id.eq_any(&ids))
                .filter(workspace_members::role.ne("guest"))
                .filter(workspace_members::user_id.ne_all(departed))
                .select(workspace_members::user_id)
                .union(
                    conversation_members::table
                        .filter(conversation_members::conversation_id.eq(conv))
                        .filter(conversation_members::user_id.eq_any(&ids))
                        .select(conversation_members::user_id),
                )
                .load(&mut conn)
                .await
        } else {
            conversation_members::table
                .filter(conversation_members::conversation_id.eq(conv))
                .filter(conversation_members::user_id.eq_any(&ids))
                .select(conversation_members::user_id)
                .load(&mut conn)
                .await
        }
        .map_err(db_error)?;
        let assistants: Vec<Uuid> = assistants::table
            .filter(assistants::workspace_id.eq(workspace))
            .filter(assistants::id.eq_any(&ids))
            .select(assistants::id)
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(Mentionable {
            users: users.into_iter().map(|u| UserId(ulid(u))).collect(),
            assistants: assistants.into_iter().map(|a| AssistantId(ulid(a))).collect(),
        })
    }

    async fn delete_conversation(&self, id: ConversationId) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let conv = uuid(id);
        conn.transaction(async |conn| {
            log::lock_conversation(conn, conv).await?;
            // A hard delete leaves no words behind, in the log either: what is appended
            // next, each member's last event from it, is all that replays.
            diesel::delete(events::table.filter(events::conversation_id.eq(conv))).execute(conn).await?;
            let members: Vec<Uuid> = conversation_members::table
                .filter(conversation_members::conversation_id.eq(conv))
                .select(conversation_members::user_id)
                .order(conversation_members::user_id)
                .load(conn)
                .await?;
            let mut last = None;
            for member in members {
                let change = MembershipChanged {
                    user_id: UserId(ulid(member)),
                    change: MembershipChange::ConversationDeleted,
                    role: None,
                };
                last = Some(log::membership_changed(conn, id, change).await?);
            }
            // Departures still hold those events back from who left, up to the last of them
            // (nothing comes after it); then they can be pruned like the rest.
            let open_departures = departure_spans::table
                .filter(departure_spans::conversation_id.eq(conv))
                .filter(departure_spans::until_tx.is_null());
            match last {
                Some(at) => {
                    diesel::update(open_departures)
                        .set((departure_spans::until_tx.eq(at.tx), departure_spans::until_id.eq(at.id)))
                        .execute(conn)
                        .await?
                }
                None => diesel::delete(open_departures).execute(conn).await?,
            };
            // Members, messages, threads, reactions, invites, read cursors cascade; member
            // spans stay (closed) so the events above replay, until the log is pruned past them.
            let deleted = diesel::delete(conversations::table.find(conv)).execute(conn).await?;
            if deleted == 0 {
                return Err(DomainError::NotFound.into());
            }
            Ok::<_, TxError>(())
        })
        .await?;
        self.signals.committed();
        Ok(())
    }

    async fn create_invite(&self, invite: Invite) -> DomainResult<Invite> {
        let mut conn = self.conn().await?;
        let row = diesel::insert_into(invites::table)
            .values((
                invites::code.eq(&invite.code),
                invites::conversation_id.eq(uuid(invite.conversation_id)),
                invites::role.eq(enum_to_db(invite.role)),
                invites::max_uses.eq(invite.max_uses),
                invites::expires_at.eq(invite.expires_at),
                invites::created_by.eq(uuid(invite.created_by)),
            ))
            .returning(InviteRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(row.into_record()?.invite)
    }

    async fn accept_invite(&self, code: &str, user: UserId) -> DomainResult<Created<ConversationId>> {
        let mut conn = self.conn().await?;
        let (member, user) = (user, uuid(user));
        // Which conversation, read without locking: its event lock must come first.
        let conversation: Option<Uuid> = invites::table
            .find(code)
            .select(invites::conversation_id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        let conversation = conversation.ok_or(DomainError::NotFound)?;
        let joined = conn
            .transaction(async |conn| {
                log::lock_conversation(conn, conversation).await?;
                let found: Option<(InviteRow, Uuid, Option<OffsetDateTime>)> = invites::table
                    .inner_join(conversations::table.on(conversations::id.eq(invites::conversation_id)))
                    .filter(invites::code.eq(code))
                    .select((InviteRow::as_select(), conversations::workspace_id, conversations::archived_at))
                    // Locks the invite (uses) and the conversation (its membership).
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let (row, workspace, archived_at) = found.ok_or(DomainError::NotFound)?;
                let record = row.into_record()?;
                if record.revoked {
                    return Err(DomainError::NotFound.into());
                }
                let conv = uuid(record.invite.conversation_id);
                if member_role(conn, conv, user).await?.is_some() {
                    return Ok(Created::Existing(record.invite.conversation_id));
                }
                if !record.usable_at(self.clock.now()) {
                    return Err(DomainError::rule(
                        ErrorCode::InviteExpired,
                        "this invite has expired or has no uses left",
                    )
                    .into());
                }
                if archived_at.is_some() {
                    return Err(DomainError::archived().into());
                }
                // Someone from outside the workspace joins it as a guest: they see only what
                // they are invited to.
                let new_guest = diesel::insert_into(workspace_members::table)
                    .values((
                        workspace_members::workspace_id.eq(workspace),
                        workspace_members::user_id.eq(user),
                        workspace_members::role.eq(enum_to_db(WorkspaceRole::Guest)),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if new_guest == 1 {
                    let change = WorkspaceMembershipChanged {
                        workspace_id: WorkspaceId(ulid(workspace)),
                        user_id: member,
                        change: MembershipChange::Joined,
                        role: Some(WorkspaceRole::Guest),
                    };
                    log::workspace_membership_changed(conn, change).await?;
                }
                insert_member(conn, conv, user, &enum_to_db(record.invite.role)).await?;
                diesel::update(invites::table.find(code))
                    .set(invites::uses.eq(invites::uses + 1))
                    .execute(conn)
                    .await?;
                let change = MembershipChanged {
                    user_id: member,
                    change: MembershipChange::Joined,
                    role: Some(record.invite.role),
                };
                log::membership_changed(conn, record.invite.conversation_id, change).await?;
                Ok::<_, TxError>(Created::New(record.invite.conversation_id))
            })
            .await?;
        if matches!(joined, Created::New(_)) {
            self.signals.committed();
        }
        Ok(joined)
    }

    async fn revoke_invite(&self, id: ConversationId, code: &str) -> DomainResult<()> {
        let mut conn = self.conn().await?;
        let revoked = diesel::update(
            invites::table
                .filter(invites::code.eq(code))
                .filter(invites::conversation_id.eq(uuid(id)))
                .filter(invites::revoked_at.is_null()),
        )
        .set(invites::revoked_at.eq(self.clock.now()))
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        if revoked == 0 { Err(DomainError::NotFound) } else { Ok(()) }
    }
}

async fn member_role(conn: &mut AsyncPgConnection, conv: Uuid, user: Uuid) -> QueryResult<Option<String>> {
    conversation_members::table.find((conv, user)).select(conversation_members::role).first(conn).await.optional()
}

/// Adds a member who joins now: their `joined_seq` is the conversation's current sequence.
/// Returns false when they were already a member.
pub(super) async fn insert_member(
    conn: &mut AsyncPgConnection,
    conv: Uuid,
    user: Uuid,
    role: &str,
) -> QueryResult<bool> {
    let last_seq: i64 = conversations::table.find(conv).select(conversations::last_seq).first(conn).await?;
    let inserted = diesel::insert_into(conversation_members::table)
        .values((
            conversation_members::conversation_id.eq(conv),
            conversation_members::user_id.eq(user),
            conversation_members::role.eq(role),
            conversation_members::joined_seq.eq(last_seq),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    // Nothing from before joining counts as unread; an implicit member who read here before
    // keeps their cursor.
    diesel::insert_into(conversation_reads::table)
        .values((
            conversation_reads::user_id.eq(user),
            conversation_reads::conversation_id.eq(conv),
            conversation_reads::read_seq.eq(last_seq),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}
