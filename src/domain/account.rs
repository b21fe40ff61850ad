//! What a user account is made of, and the rules each field follows.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A user's stable identifier (a UUID), used as `sub` in tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A problem with one form field, phrased for the person filling it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A username: 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit.
/// Usernames are case-insensitive: they are stored lower-cased, so `Alice`
/// and `alice` are one account. The narrow alphabet rules out look-alike
/// Unicode names and control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.len() < Self::MIN_LEN || name.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "username",
                format!("Use {} to {} characters.", Self::MIN_LEN, Self::MAX_LEN),
            ));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if !name.chars().all(allowed) {
            return Err(FieldError::new(
                "username",
                "Use only letters a-z, digits, dots, dashes and underscores.",
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                "username",
                "Start with a letter or a digit.",
            ));
        }
        Ok(Self(name))
    }

    /// A stored username, already normalised.
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    /// The throttle key for whatever was typed at sign-in: attempts on
    /// `Alice` and `alice` count together, and names that could never exist
    /// still get a key, so they behave exactly like real ones (LG-02). Names
    /// outside the alphabet are keyed by a digest, so control characters
    /// (PostgreSQL refuses NUL in text) never reach the database.
    pub fn throttle_key(raw: &str) -> String {
        match Self::parse(raw) {
            Ok(name) => name.0,
            Err(_) => format!(
                "#{}",
                &super::TokenDigest::of(raw.trim().to_lowercase().as_bytes()).as_str()[..32]
            ),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address. Only its shape is checked; tessera does not send mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim();
        let error = || FieldError::new("email", "Enter an address such as name@example.com.");
        if email.len() > Self::MAX_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(error());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(error());
        };
        if local.is_empty()
            || domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || !domain.contains('.')
            || local.contains('@')
        {
            return Err(error());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn from_stored(email: String) -> Self {
        Self(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a user wants to be called: up to 100 characters, no control or
/// bidirectional-override characters (they can disguise text on pages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "display_name",
                format!("Use at most {} characters.", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(is_disallowed_char) {
            return Err(FieldError::new(
                "display_name",
                "Remove control or text-direction characters.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Control characters, and invisible or text-direction characters (bidi
/// controls, zero-width spaces and joiners: see [`super::text::is_invisible`]),
/// which can make text display as something else.
pub fn is_disallowed_char(c: char) -> bool {
    c.is_control() || super::text::is_invisible(c)
}

/// A password as typed. Any Unicode is allowed and nothing is truncated
/// (LG-04); only the length is bounded, the upper bound so that hashing a
/// megabyte cannot be used to tie up the server. `Debug` prints nothing.
pub struct Password(SecretString);

impl Password {
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String, min_chars: usize) -> Result<Self, FieldError> {
        let count = raw.chars().count();
        if count < min_chars {
            return Err(FieldError::new(
                "password",
                format!("Use at least {min_chars} characters."),
            ));
        }
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(
                "password",
                format!("Use at most {} characters.", Self::MAX_CHARS),
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A password presented at sign-in: not checked against the policy (the
    /// policy may have changed since it was set), only capped in length.
    pub fn presented(raw: String) -> Self {
        let mut raw = raw;
        if raw.len() > Self::MAX_CHARS * 4 {
            raw.truncate(0);
        }
        Self(SecretString::from(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A validated sign-up.
#[derive(Debug)]
pub struct NewAccount {
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub password: Password,
}

impl NewAccount {
    /// Validates every field and returns all problems at once, so the form
    /// can show each next to its field.
    pub fn parse(
        username: &str,
        email: &str,
        display_name: &str,
        password: String,
        password_confirmation: Option<&str>,
        min_password_chars: usize,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let username = Username::parse(username).map_err(|e| errors.push(e)).ok();
        let email = if email.trim().is_empty() {
            None
        } else {
            Email::parse(email).map_err(|e| errors.push(e)).ok()
        };
        let display_name = if display_name.trim().is_empty() {
            None
        } else {
            DisplayName::parse(display_name)
                .map_err(|e| errors.push(e))
                .ok()
        };
        if let Some(confirmation) = password_confirmation
            && confirmation != password
        {
            errors.push(FieldError::new(
                "password_confirmation",
                "The two passwords do not match.",
            ));
        }
        if let Some(name) = &username
            && password.trim().eq_ignore_ascii_case(name.as_str())
        {
            errors.push(FieldError::new(
                "password",
                "Choose a password that is not your username.",
            ));
        }
        let password = Password::parse(password, min_password_chars)
            .map_err(|e| errors.push(e))
            .ok();
        match (username, password) {
            (Some(username), Some(password)) if errors.is_empty() => Ok(Self {
                username,
                email,
                display_name,
                password,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_to_lower_case() {
        assert_eq!(
            Username::parse("  Alice ").expect("valid").as_str(),
            "alice"
        );
    }

    #[test]
    fn usernames_outside_the_alphabet_are_refused() {
        for bad in [
            "ab",
            "a b",
            "al\u{0}ice",
            "-alice",
            "alice!",
            "аlice",
            &"x".repeat(33),
            "' OR '1'='1",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["bob", "alice.smith", "a_1-2", "007"] {
            assert!(Username::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn throttle_keys_fold_case_and_never_carry_control_characters() {
        assert_eq!(Username::throttle_key(" Alice"), "alice");
        let odd = Username::throttle_key("alice\0");
        assert!(odd.starts_with('#') && odd.len() == 33, "{odd}");
        assert_eq!(odd, Username::throttle_key("ALICE\0"));
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        for bad in ["a", "a@", "@b.c", "a@b", "a b@c.d", "a\r\nb@c.d", "a@.c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn display_names_refuse_control_and_bidi_characters() {
        assert!(DisplayName::parse("Alice Liddell").is_ok());
        assert!(DisplayName::parse("evil\u{202e}txt").is_err());
        assert!(DisplayName::parse("a\nb").is_err());
    }

    #[test]
    fn passwords_keep_every_character() {
        let long = "ü".repeat(64);
        let password = Password::parse(long.clone(), 8).expect("valid");
        assert_eq!(password.expose(), long);
        assert!(Password::parse("short".into(), 8).is_err());
        assert!(Password::parse("x".repeat(1025), 8).is_err());
    }

    #[test]
    fn a_new_account_reports_every_problem_at_once() {
        let errors = NewAccount::parse("a", "nope", "", "short".into(), Some("other"), 8)
            .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["username", "email", "password_confirmation", "password"]
        );
    }

    #[test]
    fn password_equal_to_username_is_refused() {
        let errors =
            NewAccount::parse("alice123", "", "", "ALICE123".into(), None, 8).expect_err("invalid");
        assert_eq!(errors[0].field, "password");
    }
}

/// A user account as the rest of tessera sees it (never with its hash).
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub disabled: bool,
    pub created_at: super::UnixTime,
}

impl User {
    /// The name to greet the user with.
    pub fn greeting_name(&self) -> &str {
        self.display_name
            .as_ref()
            .map(DisplayName::as_str)
            .filter(|name| !name.is_empty())
            .unwrap_or(self.username.as_str())
    }
}
