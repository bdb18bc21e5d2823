use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::DomainResult;
use skein_domain::entities::StoredPreferences;
use skein_domain::ports::PreferenceRepo;
use skein_shared::event::EventBody;
use skein_shared::preferences::{MuteUntil, UpdatePreferencesRequest};
use skein_shared::{ConversationId, UserId};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use super::TxError;
use super::read_state::counts;
use crate::store::codec::{enum_from_db, enum_to_db, ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::schema::member_preferences;
use crate::store::{Store, db_error};

/// How "until I unmute" is stored: far enough ahead that "muted now" is `mute_until > now()`.
pub(crate) const MUTED_FOREVER: OffsetDateTime = datetime!(9999-12-31 0:00 UTC);

type PreferenceRow = (Uuid, bool, Option<OffsetDateTime>, String);

fn stored((_, starred, mute_until, notify_level): PreferenceRow) -> DomainResult<StoredPreferences> {
    let mute_until = mute_until.map(|at| if at >= MUTED_FOREVER { MuteUntil::Forever } else { MuteUntil::At(at) });
    Ok(StoredPreferences { starred, mute_until, notify_level: enum_from_db(&notify_level)? })
}

fn columns() -> (
    member_preferences::conversation_id,
    member_preferences::starred,
    member_preferences::mute_until,
    member_preferences::notify_level,
) {
    (
        member_preferences::conversation_id,
        member_preferences::starred,
        member_preferences::mute_until,
        member_preferences::notify_level,
    )
}

impl PreferenceRepo for Store {
    async fn preferences(
        &self,
        user: UserId,
        conversations: &[ConversationId],
    ) -> DomainResult<Vec<(ConversationId, StoredPreferences)>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let ids: Vec<Uuid> = conversations.iter().map(|c| uuid(*c)).collect();
        let rows: Vec<PreferenceRow> = member_preferences::table
            .filter(member_preferences::user_id.eq(uuid(user)))
            .filter(member_preferences::conversation_id.eq_any(ids))
            .select(columns())
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(|row| Ok((ConversationId(ulid(row.0)), stored(row)?))).collect()
    }

    async fn set_preferences(
        &self,
        user: UserId,
        conversation: ConversationId,
        change: UpdatePreferencesRequest,
    ) -> DomainResult<StoredPreferences> {
        let (conv, user_id) = (uuid(conversation), uuid(user));
        let mute_until = change.mute_until.map(|m| match m {
            None => None,
            Some(MuteUntil::Forever) => Some(MUTED_FOREVER),
            Some(MuteUntil::At(at)) => Some(at),
        });
        let mut conn = self.conn().await?;
        let (saved, announced) = conn
            .transaction(async |conn| {
                // The unread.update below is an event of the conversation.
                log::lock_conversation(conn, conv).await?;
                let before: Option<PreferenceRow> =
                    member_preferences::table.find((user_id, conv)).select(columns()).first(conn).await.optional()?;
                let old = before.clone().map(stored).transpose()?.unwrap_or_default();
                let old_mute = before.as_ref().and_then(|row| row.2);
                // Under the conversation's lock, so a concurrent change cannot slip between.
                let values = (
                    member_preferences::user_id.eq(user_id),
                    member_preferences::conversation_id.eq(conv),
                    member_preferences::starred.eq(change.starred.unwrap_or(old.starred)),
                    member_preferences::mute_until.eq(mute_until.unwrap_or(old_mute)),
                    member_preferences::notify_level.eq(enum_to_db(change.notify_level.unwrap_or(old.notify_level))),
                );
                let row: PreferenceRow = diesel::insert_into(member_preferences::table)
                    .values(values)
                    .on_conflict((member_preferences::user_id, member_preferences::conversation_id))
                    .do_update()
                    .set((
                        member_preferences::starred.eq(excluded(member_preferences::starred)),
                        member_preferences::mute_until.eq(excluded(member_preferences::mute_until)),
                        member_preferences::notify_level.eq(excluded(member_preferences::notify_level)),
                    ))
                    .returning(columns())
                    .get_result(conn)
                    .await?;
                let now = self.clock.now();
                let muted = |until: Option<OffsetDateTime>| until.is_some_and(|u| u > now);
                let mut announced = false;
                if muted(old_mute) != muted(row.2)
                    && let Some(unread) = counts(conn, user_id, Some(conv)).await?.pop()
                {
                    let event = NewEvent {
                        audience: Some(user),
                        ..NewEvent::to_all(conversation, EventBody::UnreadUpdate(unread))
                    };
                    log::append(conn, &event).await?;
                    announced = true;
                }
                Ok::<_, TxError>((row, announced))
            })
            .await?;
        if announced {
            self.signals.committed();
        }
        stored(saved)
    }
}
