//! Input validation: every problem with a request is collected and reported at once.

use skein_shared::FieldError;

use crate::{DomainError, DomainResult};

/// The highest sampling temperature accepted.
pub const TEMPERATURE_MAX: f32 = 2.0;
/// The longest address SMTP can deliver to (RFC 5321's path limit, less the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// The largest token budget a reply may ask for.
pub const MAX_TOKENS: u32 = 1_000_000;

/// Collects field errors; `finish` turns any into one 422.
#[derive(Default)]
pub struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Required text: not blank, at most `max` characters. Returns the trimmed value.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.fail(field, "required", "must not be empty");
        } else {
            self.max_chars(field, trimmed, max);
        }
        trimmed.to_owned()
    }

    /// Optional text: blank counts as absent.
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let trimmed = value.map(str::trim).filter(|v| !v.is_empty())?;
        self.max_chars(field, trimmed, max);
        Some(trimmed.to_owned())
    }

    /// A sampling temperature: 0 to [`TEMPERATURE_MAX`], as OpenAI-compatible providers accept.
    pub fn temperature(&mut self, field: &str, value: Option<f32>) {
        if value.is_some_and(|t| !(0.0..=TEMPERATURE_MAX).contains(&t)) {
            self.fail(field, "out_of_range", format!("between 0 and {TEMPERATURE_MAX}"));
        }
    }

    /// A reply's token budget: 1 to [`MAX_TOKENS`].
    pub fn max_tokens(&mut self, field: &str, value: Option<u32>) {
        if value.is_some_and(|n| n == 0 || n > MAX_TOKENS) {
            self.fail(field, "out_of_range", format!("between 1 and {MAX_TOKENS}"));
        }
    }

    /// Message content is kept verbatim (Markdown whitespace matters) but may not be blank.
    pub fn content(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.fail(field, "required", "must not be empty");
        } else {
            self.max_chars(field, value, max);
        }
    }

    pub fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.fail(field, "too_long", format!("must be at most {max} characters"));
        }
    }

    /// A plausible email address, normalised to lower case.
    pub fn email(&mut self, field: &str, value: &str) -> String {
        let email = value.trim().to_lowercase();
        if email.chars().count() > EMAIL_MAX_CHARS {
            self.fail(field, "too_long", format!("must be at most {EMAIL_MAX_CHARS} characters"));
        } else if !is_plausible_email(&email) {
            self.fail(field, "invalid", "must be an email address");
        }
        email
    }

    pub fn password(&mut self, field: &str, value: &str, min: usize, email: &str) {
        let chars = value.chars().count();
        let local = email.split('@').next().unwrap_or_default();
        if chars < min {
            self.fail(field, "too_short", format!("must be at least {min} characters"));
        } else if chars > 1024 {
            self.fail(field, "too_long", "must be at most 1024 characters");
        } else if is_weak_password(value, local) {
            self.fail(field, "weak", "is too easy to guess");
        }
    }

    pub fn finish(self) -> DomainResult<()> {
        if self.errors.is_empty() { Ok(()) } else { Err(DomainError::Validation(self.errors)) }
    }
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Rejects the passwords every guessing list starts with, one repeated character, and the
/// user's own email name.
fn is_weak_password(password: &str, email_local: &str) -> bool {
    const COMMON: &[&str] = &[
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyui",
        "qwerty123",
        "11111111",
        "iloveyou",
        "abcdefgh",
        "letmein1",
        "welcome1",
        "admin123",
        "passw0rd",
        "sunshine",
        "football",
        "baseball",
        "trustno1",
    ];
    let lower = password.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next();
    COMMON.contains(&lower.as_str())
        || chars.all(|c| Some(c) == first)
        || (!email_local.is_empty() && lower == email_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(check: Check) -> Vec<String> {
        match check.finish() {
            Err(DomainError::Validation(errs)) => errs.into_iter().map(|e| format!("{}:{}", e.field, e.code)).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "First.Last+tag@example.org"] {
            let mut c = Check::new();
            c.email("email", good);
            assert!(c.finish().is_ok(), "{good}");
        }
        for bad in ["", "no-at", "@x.com", "a@b", "a@.com", "a b@c.com", "a@b.com.", "a@b@c.com"] {
            let mut c = Check::new();
            c.email("email", bad);
            assert_eq!(errors(c), vec!["email:invalid"], "{bad}");
        }
    }

    #[test]
    fn email_is_normalised() {
        assert_eq!(Check::new().email("email", "  Ann@Example.COM "), "ann@example.com");
    }

    #[test]
    fn passwords() {
        let cases = [("short", "too_short"), ("password", "weak"), ("aaaaaaaaaa", "weak"), ("annabelle", "weak")];
        for (pw, code) in cases {
            let mut c = Check::new();
            c.password("password", pw, 8, "annabelle@example.com");
            assert_eq!(errors(c), vec![format!("password:{code}")], "{pw}");
        }
        let mut c = Check::new();
        c.password("password", "correct horse battery", 8, "ann@example.com");
        assert!(c.finish().is_ok());
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let mut c = Check::new();
        c.text("title", "ééé", 3);
        assert!(c.finish().is_ok());
        let mut c = Check::new();
        c.text("title", "éééé", 3);
        c.text("name", "   ", 3);
        c.content("content", " \n ", 10);
        assert_eq!(errors(c), vec!["title:too_long", "name:required", "content:required"]);
    }

    #[test]
    fn blank_optional_text_is_absent() {
        let mut c = Check::new();
        assert_eq!(c.optional_text("title", Some("  "), 5), None);
        assert_eq!(c.optional_text("title", Some(" hi "), 5), Some("hi".to_owned()));
    }
}
