//! Search query and snippet rules that need no database: prefix matching of the word being
//! typed, and turning a marked snippet into plain text with highlight offsets.

use skein_shared::search::Highlight;

/// Marks where a highlighted word starts in the snippet the store returns. Private-use
/// characters, removed from the content before marking, so they cannot be forged.
pub const HIGHLIGHT_START: char = '\u{E000}';
/// Marks where a highlighted word ends.
pub const HIGHLIGHT_END: char = '\u{E001}';

/// The shortest word matched as a prefix while it is typed: shorter ones match too much to help
/// (and cost the most).
pub const PREFIX_MIN_CHARS: usize = 3;

/// The query's last word when it is still being typed and should match as a prefix: it ends
/// in a letter or digit, outside a quoted phrase, is neither excluded (`-word`) nor the
/// operator `or`, and has at least [`PREFIX_MIN_CHARS`] characters.
pub fn open_last_word(raw: &str) -> Option<&str> {
    let last = raw.chars().last()?;
    if !last.is_alphanumeric() || raw.matches('"').count() % 2 == 1 {
        return None;
    }
    let word = raw.rsplit(char::is_whitespace).next().unwrap_or_default();
    let open = !word.starts_with('-') && !word.eq_ignore_ascii_case("or") && word.chars().count() >= PREFIX_MIN_CHARS;
    open.then_some(word)
}

/// `terms` (a `tsquery` in PostgreSQL's text form) with the open last word matching as a
/// prefix. `word_terms` is that word parsed alone: the prefix goes on only when the query's
/// terms end with it, so a stop word typed last (no terms of its own) never puts a prefix on
/// the word before it (`deploy the`, `cats -dogs the`).
pub fn with_prefix(terms: &str, word_terms: &str) -> String {
    if word_terms.ends_with('\'') && terms.ends_with(word_terms) { format!("{terms}:*") } else { terms.to_owned() }
}

/// A snippet is at most this many characters of the content (plus an ellipsis each side).
pub const SNIPPET_MAX_CHARS: usize = 200;
/// Characters of context kept before the first match when the content is cut.
const SNIPPET_LEAD_CHARS: usize = 60;
/// How far a cut moves to fall between words.
const WORD_SNAP_CHARS: usize = 16;

/// The snippet of a hit and its highlights, from its content and the same content with every
/// matched word marked ([`HIGHLIGHT_START`]…[`HIGHLIGHT_END`]; the store may have read some
/// characters differently, one for one, and leaves marker characters of the content out): the
/// whole content when it is short, else a window from a little before the first match, cut
/// between words, with `…` where it was cut. Offsets count characters (Unicode scalar
/// values), `end` exclusive.
pub fn snippet(content: &str, marked: &str) -> (String, Vec<Highlight>) {
    let text: Vec<char> = content.chars().filter(|c| !matches!(*c, HIGHLIGHT_START | HIGHLIGHT_END)).collect();
    let highlights: Vec<Highlight> = unmark(marked).into_iter().filter(|h| h.end as usize <= text.len()).collect();
    if text.len() <= SNIPPET_MAX_CHARS {
        return (text.into_iter().collect(), highlights);
    }
    let first = highlights.first().map_or(0, |h| h.start as usize);
    let start = snap_back(&text, first.saturating_sub(SNIPPET_LEAD_CHARS));
    let end = snap_back(&text, (start + SNIPPET_MAX_CHARS).min(text.len()));
    let end = if end <= first { (start + SNIPPET_MAX_CHARS).min(text.len()) } else { end };
    let (lead, tail) = (usize::from(start > 0), end < text.len());
    let mut out: String = if start > 0 { "…".into() } else { String::new() };
    out.push_str(text[start..end].iter().collect::<String>().trim());
    // Trimming moved the window's first character only if it was blank.
    let trimmed = text[start..end].iter().take_while(|c| c.is_whitespace()).count();
    if tail {
        out.push('…');
    }
    let shift = |at: usize| (at + lead).saturating_sub(start + trimmed) as u32;
    let kept = highlights
        .into_iter()
        .filter(|h| h.start as usize >= start + trimmed && (h.end as usize) <= end)
        .map(|h| Highlight { start: shift(h.start as usize), end: shift(h.end as usize) })
        .collect();
    (out, kept)
}

/// The position at or a little before `at` that starts a word (just after a blank), or `at`.
fn snap_back(text: &[char], at: usize) -> usize {
    if at == 0 || at >= text.len() {
        return at;
    }
    (at.saturating_sub(WORD_SNAP_CHARS)..=at).rev().find(|&i| i > 0 && text[i - 1].is_whitespace()).unwrap_or(at)
}

/// The highlighted ranges of a marked text (in characters of the text without markers, end
/// exclusive). Adjacent highlights merge; an unclosed one ends with the text.
fn unmark(marked: &str) -> Vec<Highlight> {
    let mut highlights: Vec<Highlight> = Vec::new();
    let (mut at, mut open) = (0u32, None);
    for c in marked.chars() {
        match c {
            HIGHLIGHT_START => open = open.or(Some(at)),
            HIGHLIGHT_END => {
                if let Some(start) = open.take()
                    && start < at
                {
                    match highlights.last_mut() {
                        Some(last) if last.end == start => last.end = at,
                        _ => highlights.push(Highlight { start, end: at }),
                    }
                }
            }
            _ => at += 1,
        }
    }
    if let Some(start) = open.filter(|s| *s < at) {
        highlights.push(Highlight { start, end: at });
    }
    highlights
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_word_being_typed_is_a_prefix() {
        assert_eq!(open_last_word("deploy pipel"), Some("pipel"));
        assert_eq!(open_last_word("café"), Some("café"));
        assert_eq!(open_last_word("o'brien"), Some("o'brien"));
        assert_eq!(open_last_word("deploy pipeline "), None);
        assert_eq!(open_last_word("\"exact phrase\""), None);
        assert_eq!(open_last_word("\"open phrase"), None);
        assert_eq!(open_last_word("cats -dogs"), None);
        assert_eq!(open_last_word("cats or"), None);
        assert_eq!(open_last_word("what?"), None);
        assert_eq!(open_last_word("deploy b"), None, "too short to help");
        assert_eq!(open_last_word(""), None);
    }

    #[test]
    fn prefix_goes_on_the_last_lexeme_only() {
        assert_eq!(with_prefix("'deploy' & 'pipel'", "'pipel'"), "'deploy' & 'pipel':*");
        assert_eq!(with_prefix("'o' <-> 'brien'", "'o' <-> 'brien'"), "'o' <-> 'brien':*");
        // A stop word typed last has no terms: nothing before it becomes a prefix.
        assert_eq!(with_prefix("'deploy'", ""), "'deploy'");
        assert_eq!(with_prefix("'cat' & !'dog'", ""), "'cat' & !'dog'");
        assert_eq!(with_prefix("", ""), "");
    }

    fn words(snippet: &str, highlights: &[Highlight]) -> Vec<String> {
        let chars: Vec<char> = snippet.chars().collect();
        highlights.iter().map(|h| chars[h.start as usize..h.end as usize].iter().collect()).collect()
    }

    #[test]
    fn short_content_is_the_snippet_with_character_offsets() {
        let (text, hl) =
            snippet("Le café et <b>le</b> thé!", "Le \u{E000}café\u{E001} et  b>le /b> \u{E000}thé\u{E001}!");
        assert_eq!(text, "Le café et <b>le</b> thé!");
        assert_eq!(hl, vec![Highlight { start: 3, end: 7 }, Highlight { start: 21, end: 24 }]);
        assert_eq!(words(&text, &hl), vec!["café", "thé"]);
    }

    #[test]
    fn long_content_is_cut_around_the_first_match_between_words() {
        let before: String = (0..60).map(|i| format!("w{i} ")).collect();
        let after: String = (0..60).map(|i| format!(" v{i}")).collect();
        let marked = format!("{before}\u{E000}needle\u{E001}{after} \u{E000}needle\u{E001}");
        let (text, hl) = snippet(&plain(&marked), &marked);
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert!(text.chars().count() <= SNIPPET_MAX_CHARS + 2);
        assert_eq!(words(&text, &hl), vec!["needle"], "the match past the cut is dropped");
        let lead: String = text.chars().skip(1).take_while(|c| *c != 'n').collect();
        assert!(lead.starts_with('w') && lead.len() <= SNIPPET_LEAD_CHARS + 1, "{lead:?}");
    }

    #[test]
    fn a_match_near_the_end_of_long_content_stays_in_view() {
        let before = "x".repeat(500);
        let marked = format!("{before} \u{E000}end\u{E001}");
        let (text, hl) = snippet(&plain(&marked), &marked);
        assert_eq!(words(&text, &hl), vec!["end"]);
        assert!(text.starts_with('…') && !text.ends_with('…'));
    }

    #[test]
    fn odd_markers_are_tolerated() {
        assert_eq!(unmark("\u{E001}a\u{E000}\u{E001}b"), vec![]);
        assert_eq!(unmark("\u{E000}ab\u{E001}\u{E000}cd\u{E001}"), vec![Highlight { start: 0, end: 4 }]);
        assert_eq!(unmark("x \u{E000}yz"), vec![Highlight { start: 2, end: 4 }]);
        // Markers in the content itself are not the store's: left out on both sides.
        let (text, hl) = snippet("a\u{E000}b c", "ab \u{E000}c\u{E001}");
        assert_eq!((text.as_str(), words("ab c", &hl)), ("ab c", vec!["c".to_owned()]));
        assert!(snippet("ab", "ab \u{E000}beyond\u{E001}").1.is_empty(), "ranges past the content are dropped");
    }

    fn plain(marked: &str) -> String {
        marked.chars().filter(|c| !matches!(*c, HIGHLIGHT_START | HIGHLIGHT_END)).collect()
    }
}
