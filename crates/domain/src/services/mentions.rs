//! Resolving a message's mentions against its conversation, and the answer an assistant
//! mention asks for.

use std::collections::HashSet;

use skein_shared::AssistantId;
use skein_shared::UserId;
use skein_shared::message::{Mention, MentionKind};

use super::Services;
use crate::DomainResult;
use crate::entities::ConversationAccess;
use crate::mentions;
use crate::ports::Ports;

impl<P: Ports> Services<P> {
    /// The content's mentions that name someone who is there: members of the conversation
    /// (explicit, or implicit in a workspace channel) and assistants of its workspace. Other
    /// ids stay plain text. Two queries however many ids there are.
    pub(super) async fn resolve_mentions(
        &self,
        access: &ConversationAccess,
        content: &str,
    ) -> DomainResult<Vec<Mention>> {
        let parsed = mentions::parse(content);
        let mut out = Vec::new();
        if !parsed.named.is_empty() {
            let found = self.ports.mentionable(&access.conversation, &parsed.named).await?;
            let users: HashSet<UserId> = found.users.into_iter().collect();
            let assistants: HashSet<AssistantId> = found.assistants.into_iter().collect();
            for id in parsed.named {
                if users.contains(&UserId(id)) {
                    out.push(Mention { kind: MentionKind::User, user_id: Some(UserId(id)), assistant_id: None });
                } else if assistants.contains(&AssistantId(id)) {
                    let assistant_id = Some(AssistantId(id));
                    out.push(Mention { kind: MentionKind::Assistant, user_id: None, assistant_id });
                }
            }
        }
        for (said, kind) in [(parsed.channel, MentionKind::Channel), (parsed.here, MentionKind::Here)] {
            if said {
                out.push(Mention { kind, user_id: None, assistant_id: None });
            }
        }
        Ok(out)
    }
}

/// The first assistant mentioned: it answers the message (one answer per message).
pub(super) fn mentioned_assistant(mentions: &[Mention]) -> Option<AssistantId> {
    mentions.iter().find_map(|m| m.assistant_id)
}
