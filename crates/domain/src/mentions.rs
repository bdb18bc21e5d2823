//! Reading mentions out of message content. The syntax does not depend on display names
//! (which change and repeat): `<@id>` names a user or an assistant by id, as Slack's
//! `<@U123>` does, and clients render the name; `@channel` and `@here` are words.

use ulid::Ulid;

/// At most this many distinct ids are read from one message; later ones are plain text.
pub const MAX_NAMED: usize = 50;

/// What the content mentions, before it is checked against the conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Ids in `<@id>`, distinct, in order of first appearance.
    pub named: Vec<Ulid>,
    pub channel: bool,
    pub here: bool,
}

pub fn parse(content: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rest = content;
    while let Some(at) = rest.find("<@") {
        let after = &rest[at + 2..];
        match after.find('>').and_then(|end| Ulid::from_string(&after[..end]).ok().map(|id| (id, end))) {
            Some((id, end)) => {
                if !parsed.named.contains(&id) && parsed.named.len() < MAX_NAMED {
                    parsed.named.push(id);
                }
                rest = &after[end + 1..];
            }
            None => rest = after,
        }
    }
    parsed.channel = has_word(content, "@channel");
    parsed.here = has_word(content, "@here");
    parsed
}

/// `word` appears with no letter, digit or `_` right before or after it (so `x@channel`
/// and `@channels` are not mentions).
fn has_word(content: &str, word: &str) -> bool {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    content.match_indices(word).any(|(i, _)| {
        let before = content[..i].chars().next_back();
        let after = content[i + word.len()..].chars().next();
        before.is_none_or(|c| !is_word_char(c)) && after.is_none_or(|c| !is_word_char(c))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_brackets_and_channel_words_are_mentions() {
        let a = skein_shared::MessageId::generate().0;
        let b = skein_shared::MessageId::generate().0;
        let text = format!("hi <@{a}> and <@{b}>, <@{a}> again; <@nope> <@{a} @channel!");
        let parsed = parse(&text);
        assert_eq!(parsed.named, [a, b]);
        assert!(parsed.channel);
        assert!(!parsed.here);
        assert!(parse("@here").here);
        for not in ["mail me@here", "@channels", "x@channel", "@here_now"] {
            let p = parse(not);
            assert!(!p.channel && !p.here, "{not}");
        }
        assert_eq!(parse("<@").named, []);
    }

    #[test]
    fn only_so_many_ids_are_read() {
        let text: String =
            (0..MAX_NAMED + 5).map(|_| format!("<@{}> ", skein_shared::MessageId::generate().0)).collect();
        assert_eq!(parse(&text).named.len(), MAX_NAMED);
    }
}
