//! Tessera: an LDAP directory server for SSSD hosts, NAS devices and sync tools.
//!
//! # Layout
//!
//! Front ends decode a request, call the directory's rules, and encode what they return;
//! the rules sit beneath them, the domain and the store beneath the rules. Dependencies
//! point one way: `cli`, `db`, `server` + `ldap` -> `state` -> `dit` -> `directory`,
//! `store`, `identity`, `config`.
//!
//! - [`cli`]: the command line; [`admin`]: the admin commands' LDAP client (people, groups,
//!   service accounts, roles, tokens, search as another).
//! - [`server`]: sockets (LDAPS, LDAP + StartTLS, LDAPI), TLS and the certificate's
//!   lifecycle (`server::ca`), connection limits, framing (`server::frame`), readiness for
//!   a service manager and graceful shutdown. Knows LDAP frames, not meaning.
//! - [`ldap`]: the LDAP protocol only: one module per operation, `ldap::dispatch` (the one
//!   match on `LdapOp`), results, and every OID (`ldap::oid`).
//! - [`db`]: the offline commands (import, export, verify, backup) and the LDIF reader;
//!   import takes every entry through the rules LDAP Add applies.
//! - [`http`]: the JSON API (`/api/v1`), its OpenAPI document, health and metrics
//!   endpoints, and the web console (`/console`: HTML pages that call the API's operation
//!   functions); its listeners are `server::https`'s.
//! - [`authn`]: checking a name and a secret (LDAP simple binds, HTTP Basic and Bearer),
//!   throttled and recorded the same way for every front end.
//! - [`audit`]: the audit trail, logged and kept in the store.
//! - [`metrics`]: the Prometheus metrics.
//! - [`cluster`]: several servers holding the same directory through Raft (openraft):
//!   every write a `dit::command` committed to the log and applied on every node;
//!   node-to-node mutual TLS; forwarding writes to the leader; the staleness bound.
//! - [`state`]: the shared server state, and the async services around the rules (the
//!   password hashing pool, recording token use).
//! - [`dit`]: the directory's rules, synchronous over a store transaction with the time
//!   passed in: the caller and its rights (`dit::caller`), who may control whom
//!   (`dit::control`), credentials and tokens as entries (`dit::credentials`,
//!   `dit::token`), finishing and checking an entry (`dit::entry`), POSIX numbers,
//!   references, computed attributes, searching as a caller, the writes every front end
//!   shares (`dit::write`, `dit::password`), the tree and its names, and `DitError`.
//! - [`directory`]: the pure domain: DNs, entries, filters (and their RFC 4515 string
//!   form), the schema (and its file loader), matching rules, time, role grants.
//! - [`store`]: the redb store, the only module that touches redb.
//! - [`identity`]: password hashing and verification, the hashing pool, tokens' format,
//!   the bind throttle.
//! - [`config`]: the TOML configuration, defaults and validation.
//!
//! # Request flow
//!
//! ```text
//! accept -> (TLS handshake under a timeout, in the connection task)
//!   -> server::conn: FramedRead<FrameCodec> / FramedWrite<ResponseCodec>
//!      (server::frame: size and envelope checks, critical control OIDs from the raw
//!      bytes, placeholders for octets the codec cannot read as text)
//!   -> ldap::unsupported_critical: refused with 12, whatever the operation
//!   -> Bind, StartTLS, Abandon, Unbind run in order on the connection;
//!      every other operation is spawned: ldap::dispatch(OpContext, op)
//!   -> ldap::proxied: a proxied authorization control swaps the identity for this op
//!   -> op module: decode -> dit (in the op's own store transaction: dit::caller resolves
//!      the identity and its roles once, then the rules decide) -> encode
//!   -> responses sent back through a channel with the request's msgid; a lapsed
//!      identity's operation gets a Notice of Disconnection instead
//! a write: op module -> State::submit(dit::command::Command)
//!   -> single server: dit::command::apply in one store write transaction
//!   -> cluster: Raft log (forwarded to the leader) -> committed by a majority
//!      -> every node: cluster::storage applies it (dit::command::apply, same transaction
//!         records the log index) -> the answer once this node has applied it
//! db import -> db::import (reading thread: dit::entry; writer: dit::posix, store) ->
//!   dit::references once the file is in
//!
//! https -> (TLS handshake under a timeout) -> server::https: hyper, HTTP/1.1
//!   -> http router -> http::auth (Bearer or Basic, checked by authn on every request)
//!   -> handler -> the same dit operation, as the caller, in one store transaction
//!   -> JSON, or an RFC 9457 problem (http::problem maps DitError to a status, once)
//!   /console -> cross-site check (Origin, Sec-Fetch-Site) -> http::console::session
//!   (a server-side session from the cookie; a form's token on every post) -> the API's
//!   operation function, as the signed-in identity -> an askama page (refusals worded
//!   from the rules' reason)
//! ```

pub mod admin;
pub mod audit;
pub mod authn;
pub mod cli;
pub mod cluster;
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
