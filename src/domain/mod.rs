//! Pure types and rules, no I/O: what a valid username, password or
//! `return_to` path is, and how secrets are made and digested.

mod account;
mod client;
mod pkce;
mod redirect_uri;
mod return_to;
mod scope;
mod secret;
pub mod text;
mod time;

pub use account::{
    DisplayName, Email, FieldError, NewAccount, Password, User, UserId, Username,
    is_disallowed_char,
};
pub use client::{Client, ClientId, ClientType, GrantType, TokenAuthMethod};
pub use pkce::{PkceChallenge, PkceError, is_well_formed as is_well_formed_pkce_value};
pub use redirect_uri::{RedirectUri, RedirectUriError};
pub use return_to::ReturnTo;
pub use scope::{MAX_SCOPE_BYTES, ScopeError, ScopeSet};
pub use secret::{SecretToken, TokenDigest, constant_time_eq};
pub use time::{UnixTime, format_date, format_time, now};
