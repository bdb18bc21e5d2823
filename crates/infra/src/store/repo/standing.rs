//! The joins that give a user's standing in a conversation: their workspace role (inner join:
//! outside the workspace there is no access at all), their explicit membership, if any, and
//! their open departure from it, if any. Shared by every query that authorises against a
//! conversation.

use diesel::prelude::*;
use uuid::Uuid;

use crate::store::schema::{conversation_members, conversations, departure_spans, workspace_members};

/// `ON` for `workspace_members`: the user's row in the conversation's workspace.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn in_workspace(user: Uuid) -> _ {
    workspace_members::workspace_id.eq(conversations::workspace_id).and(workspace_members::user_id.eq(user))
}

/// `ON` for `conversation_members`: the user's explicit membership, if any.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn in_conversation(user: Uuid) -> _ {
    conversation_members::conversation_id.eq(conversations::id).and(conversation_members::user_id.eq(user))
}

/// `ON` for `departure_spans`: the user's open departure, if any (at most one, by index).
#[diesel::dsl::auto_type(no_type_alias)]
pub fn departed_from(user: Uuid) -> _ {
    departure_spans::conversation_id
        .eq(conversations::id)
        .and(departure_spans::user_id.eq(user))
        .and(departure_spans::until_tx.is_null())
}

/// The standing columns after the conversation row, as read into an `AccessRow`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn standing() -> _ {
    (
        conversation_members::role.nullable(),
        conversation_members::joined_seq.nullable(),
        workspace_members::role,
        departure_spans::from_tx.nullable(),
    )
}

/// Whether the user may see the conversation, over the standing joins: an explicit member,
/// or a non-guest of its workspace when it is workspace-visible and they have not left it.
/// Mirrors `roles::effective_conversation_role`, so a page filtered by it is never thinned
/// out afterwards.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn may_see() -> _ {
    let open: &'static str = "workspace";
    let guest: &'static str = "guest";
    conversation_members::user_id.is_not_null().or(conversations::visibility
        .eq(open)
        .and(workspace_members::role.ne(guest))
        .and(departure_spans::from_tx.is_null()))
}

/// As [`may_see`], as if the user had joined again every workspace channel they left.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn may_see_after_rejoining() -> _ {
    let open: &'static str = "workspace";
    let guest: &'static str = "guest";
    conversation_members::user_id
        .is_not_null()
        .or(conversations::visibility.eq(open).and(workspace_members::role.ne(guest)))
}
