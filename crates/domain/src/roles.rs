//! Who may do what. Pure functions, unit-tested without a database.

use skein_shared::conversation::{ConversationKind, ConversationRole, Visibility};
use skein_shared::workspace::WorkspaceRole;

/// A workspace member's role in a conversation: their explicit membership, else implicit
/// membership of a workspace-visible conversation (guests excluded: they see only what they
/// are invited to; and those who `departed`, left it and did not join again).
pub fn effective_conversation_role(
    visibility: Visibility,
    explicit: Option<ConversationRole>,
    workspace_role: WorkspaceRole,
    departed: bool,
) -> Option<ConversationRole> {
    explicit.or(match (visibility, workspace_role) {
        (Visibility::Workspace, WorkspaceRole::Guest) => None,
        (Visibility::Workspace, _) if departed => None,
        (Visibility::Workspace, _) => Some(ConversationRole::Member),
        (Visibility::Private, _) => None,
    })
}

/// Who may join a conversation by themselves: a non-guest of its workspace, when it is
/// workspace-visible (everyone else needs an invite or an admin).
pub fn can_join(visibility: Visibility, workspace_role: WorkspaceRole) -> bool {
    visibility == Visibility::Workspace && workspace_role != WorkspaceRole::Guest
}

pub fn can_post(role: ConversationRole) -> bool {
    role >= ConversationRole::Member
}

/// Settings, archiving, members and invites.
pub fn can_manage_conversation(role: ConversationRole) -> bool {
    role >= ConversationRole::Admin
}

/// Only an owner can make owners or act on another owner.
pub fn can_grant_conversation_role(
    actor: ConversationRole,
    target_current: Option<ConversationRole>,
    new: ConversationRole,
) -> bool {
    let touches_owner = new == ConversationRole::Owner || target_current == Some(ConversationRole::Owner);
    can_manage_conversation(actor) && (!touches_owner || actor == ConversationRole::Owner)
}

pub fn can_create_conversation(role: WorkspaceRole) -> bool {
    role >= WorkspaceRole::Member
}

pub fn can_manage_workspace_members(role: WorkspaceRole) -> bool {
    role >= WorkspaceRole::Admin
}

/// Only an owner can make owners or act on another owner.
pub fn can_grant_workspace_role(
    actor: WorkspaceRole,
    target_current: Option<WorkspaceRole>,
    new: Option<WorkspaceRole>,
) -> bool {
    let touches_owner = new == Some(WorkspaceRole::Owner) || target_current == Some(WorkspaceRole::Owner);
    can_manage_workspace_members(actor) && (!touches_owner || actor == WorkspaceRole::Owner)
}

/// Direct conversations have fixed membership and no settings to change.
pub fn membership_is_fixed(kind: ConversationKind) -> bool {
    kind == ConversationKind::Direct
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationRole as C;
    use WorkspaceRole as W;

    #[test]
    fn explicit_membership_wins() {
        assert_eq!(
            effective_conversation_role(Visibility::Private, Some(C::Viewer), W::Member, false),
            Some(C::Viewer)
        );
        assert_eq!(effective_conversation_role(Visibility::Workspace, Some(C::Owner), W::Guest, false), Some(C::Owner));
        assert_eq!(effective_conversation_role(Visibility::Workspace, Some(C::Admin), W::Member, true), Some(C::Admin));
    }

    #[test]
    fn workspace_visibility_makes_non_guests_members_until_they_leave() {
        assert_eq!(effective_conversation_role(Visibility::Workspace, None, W::Member, false), Some(C::Member));
        assert_eq!(effective_conversation_role(Visibility::Workspace, None, W::Owner, false), Some(C::Member));
        assert_eq!(effective_conversation_role(Visibility::Workspace, None, W::Guest, false), None);
        assert_eq!(effective_conversation_role(Visibility::Private, None, W::Owner, false), None);
        assert_eq!(effective_conversation_role(Visibility::Workspace, None, W::Member, true), None);
        assert!(can_join(Visibility::Workspace, W::Member) && can_join(Visibility::Workspace, W::Owner));
        assert!(!can_join(Visibility::Workspace, W::Guest) && !can_join(Visibility::Private, W::Owner));
    }

    #[test]
    fn posting_needs_member() {
        assert!(!can_post(C::Viewer));
        assert!(can_post(C::Member) && can_post(C::Admin) && can_post(C::Owner));
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(can_grant_conversation_role(C::Admin, Some(C::Member), C::Admin));
        assert!(!can_grant_conversation_role(C::Admin, Some(C::Member), C::Owner));
        assert!(!can_grant_conversation_role(C::Admin, Some(C::Owner), C::Member));
        assert!(can_grant_conversation_role(C::Owner, Some(C::Owner), C::Member));
        assert!(!can_grant_conversation_role(C::Member, None, C::Viewer));
        assert!(can_grant_workspace_role(W::Admin, None, Some(W::Member)));
        assert!(!can_grant_workspace_role(W::Admin, Some(W::Owner), None));
        assert!(!can_grant_workspace_role(W::Member, None, Some(W::Guest)));
        assert!(can_grant_workspace_role(W::Owner, None, Some(W::Owner)));
    }
}
