//! Tessera: an LDAP directory server for SSSD hosts, NAS devices and sync tools.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration, defaults and validation.
//! - [`server`]: sockets (LDAPS, LDAP + StartTLS, LDAPI), TLS and the certificate's
//!   lifecycle (`server::ca`), connection limits, framing, readiness for a service manager
//!   and graceful shutdown. Knows LDAP frames, not meaning.
//! - [`ldap`]: protocol semantics, one module per operation; `ldap::dispatch` holds the
//!   one match on `LdapOp`.
//! - [`http`]: the JSON API (`/api/v1`), its OpenAPI document, health and metrics
//!   endpoints; its listeners are `server::https`'s.
//! - [`authn`]: checking a name and a secret (LDAP simple binds, HTTP Basic and Bearer),
//!   throttled and recorded the same way for every front end.
//! - [`dit`]: the directory's rules beneath every front end, in a store transaction.
//! - [`audit`]: the audit trail, logged and kept in the store.
//! - [`metrics`]: the Prometheus metrics.
//! - [`directory`]: the pure domain: DNs, entries, filters (and their RFC 4515 string
//!   form), schema, matching rules, and role grants (`directory::access`).
//! - [`store`]: the redb store, the only module that touches redb.
//! - [`identity`]: password hashing and verification, token minting and checking.
//! - [`admin`]: the admin commands' LDAP client (people, groups, service accounts, roles).
//! - [`ldif`] and [`db`]: LDIF reading/writing and the offline import/export/verify commands.
//! - [`cli`]: the command line.
//!
//! # Request flow
//!
//! ```text
//! accept -> (TLS handshake under a timeout, in the connection task)
//!   -> server::conn: FramedRead<FrameCodec> / FramedWrite<LdapCodec>
//!      (FrameCodec: size and envelope checks, critical control OIDs from the raw bytes)
//!   -> ldap::unsupported_critical: refused with 12, whatever the operation
//!   -> Bind, StartTLS, Abandon, Unbind run in order on the connection;
//!      every other operation is spawned: ldap::dispatch(OpContext, op)
//!   -> ldap::proxied: a proxied authorization control swaps the identity for this op
//!   -> op module -> ldap::access::caller (roles held, once per operation, in the op's
//!      own transaction) -> per-entry decisions -> store (spawn_blocking, redb)
//!   -> responses sent back through a channel with the request's msgid
//!
//! https -> (TLS handshake under a timeout) -> server::https: hyper, HTTP/1.1
//!   -> http router -> http::auth (Bearer or Basic, checked by authn on every request)
//!   -> handler -> the same dit operation, as the caller, in one store transaction
//!   -> JSON, or an RFC 9457 problem (http::problem maps DitError to a status, once)
//! ```

pub mod admin;
pub mod audit;
pub mod authn;
pub mod cli;
pub mod config;
pub mod db;
pub mod directory;
pub mod dit;
pub mod http;
pub mod identity;
pub mod ldap;
pub mod metrics;
pub mod server;
pub mod state;
pub mod store;
