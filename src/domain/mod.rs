//! Pure types and rules, no I/O: what a valid username, password or
//! `return_to` path is, and how secrets are made and digested.

mod account;
mod return_to;
mod secret;
mod time;

pub use account::{DisplayName, Email, FieldError, NewAccount, Password, User, UserId, Username};
pub use return_to::ReturnTo;
pub use secret::{SecretToken, TokenDigest};
pub use time::{UnixTime, format_date, now};
