//! The OAuth 2 protocol, framework-free: request validation, grants, codes,
//! tokens and keys. oxide-auth drives the RFC 6749 flows over tessera's own
//! primitives; tessera checks first where oxide-auth is weaker than the RFCs.

pub mod keys;
