//! What goes to the model: the system prompt, then the thread's branch from the root to the
//! message being answered, trimmed from the oldest end to fit the context window.
//!
//! Token estimate: one token per 4 bytes of UTF-8, rounded up, plus 4 tokens of framing per
//! message (role and separators, as OpenAI's chat format costs). It over-estimates English
//! slightly and is the same for every provider; providers' exact tokenizers differ anyway.

use skein_shared::thread::MessageRole;

/// One message of the branch, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchMessage {
    pub role: MessageRole,
    /// The author's display name (people only).
    pub author_name: Option<String>,
    pub content: String,
    /// Deleted messages are left out of the context.
    pub deleted: bool,
}

/// A message as sent to the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: MessageRole,
    pub content: String,
}

/// Framing tokens per message.
const PER_MESSAGE: usize = 4;

/// The estimated token count of a text sent as one message.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4) + PER_MESSAGE
}

/// Builds the prompt: `system` parts first (the assistant's, then the thread's persona), then
/// the branch, dropping its oldest messages until everything fits in `budget` tokens (the
/// context window minus the reply's `max_tokens`). The message being answered (the last)
/// is always kept. With several people in the branch, their messages carry their names.
pub fn build_prompt(system: &[&str], branch: &[BranchMessage], budget: usize) -> Vec<PromptMessage> {
    let system: Vec<&str> = system.iter().copied().filter(|s| !s.trim().is_empty()).collect();
    let system_prompt = (!system.is_empty()).then(|| system.join("\n\n"));
    let mut people: Vec<&str> = branch.iter().filter_map(|m| m.author_name.as_deref()).collect();
    people.sort_unstable();
    people.dedup();
    let named = people.len() > 1;
    let shown: Vec<PromptMessage> = branch
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| PromptMessage {
            role: m.role,
            content: match (&m.author_name, named && m.role == MessageRole::User) {
                (Some(name), true) => format!("{name}: {}", m.content),
                _ => m.content.clone(),
            },
        })
        .collect();
    let mut used = system_prompt.as_deref().map_or(0, estimate_tokens);
    // Newest first, until the budget is spent; the newest always stays.
    let mut kept = 0;
    for (i, m) in shown.iter().enumerate().rev() {
        let cost = estimate_tokens(&m.content);
        if i + 1 != shown.len() && used + cost > budget {
            break;
        }
        used += cost;
        kept += 1;
    }
    let start = shown.len() - kept;
    system_prompt
        .map(|content| PromptMessage { role: MessageRole::System, content })
        .into_iter()
        .chain(shown.into_iter().skip(start))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(name: &str, content: &str) -> BranchMessage {
        BranchMessage {
            role: MessageRole::User,
            author_name: Some(name.into()),
            content: content.into(),
            deleted: false,
        }
    }

    fn answered(content: &str) -> BranchMessage {
        BranchMessage { role: MessageRole::Assistant, author_name: None, content: content.into(), deleted: false }
    }

    #[test]
    fn system_parts_come_first_and_one_person_is_not_named() {
        let prompt = build_prompt(&["be brief", "", "thread persona"], &[said("Ann", "hi")], 1000);
        assert_eq!(prompt.len(), 2);
        assert_eq!(
            prompt[0],
            PromptMessage { role: MessageRole::System, content: "be brief\n\nthread persona".into() }
        );
        assert_eq!(prompt[1].content, "hi");
    }

    #[test]
    fn several_people_are_named_and_deleted_messages_left_out() {
        let mut gone = said("Bob", "secret");
        gone.deleted = true;
        let branch = [said("Ann", "hi"), answered("hello"), gone, said("Bob", "and me?")];
        let prompt = build_prompt(&[], &branch, 1000);
        let contents: Vec<&str> = prompt.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["Ann: hi", "hello", "Bob: and me?"]);
    }

    #[test]
    fn the_oldest_messages_go_first_and_the_last_always_stays() {
        let branch: Vec<BranchMessage> = (0..10).map(|i| said("Ann", &format!("{i}").repeat(40))).collect();
        // Each message costs 10 + 4 tokens; the system prompt 2 + 4.
        let prompt = build_prompt(&["sys"], &branch, 6 + 3 * 14);
        let contents: Vec<String> = prompt.iter().skip(1).map(|m| m.content[..1].to_owned()).collect();
        assert_eq!(contents, ["7", "8", "9"]);
        let tiny = build_prompt(&[], &branch, 1);
        assert_eq!(tiny.len(), 1, "the message answered is kept even over budget");
    }
}
