//! Per-connection protocol state: who is bound, over what transport, and the paged-search
//! cookies this connection has been issued.
//!
//! Owned by the connection task; operations in flight get a cheap snapshot. No I/O.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::directory::dn::Dn;

/// Who the connection authenticated as. Re-checked against the directory on every
/// operation (see `access::caller`), so a deleted entry loses its rights at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A local process on the LDAPI socket, by SO_PEERCRED.
    Local {
        dn: Dn,
        admin: bool,
    },
    /// A directory entry that bound with its password.
    Entry(Dn),
    /// An account bound with one of its tokens (API token or app password); the token is
    /// re-checked on every operation.
    Token {
        account: Dn,
        token_id: String,
    },
    /// For one operation, another identity (proxied authorization, RFC 4370) with exactly
    /// its rights; the root DN stands for anonymous. A read-only token stays read-only.
    Proxied {
        target: Dn,
        read_only: bool,
    },
}

impl Principal {
    pub fn dn(&self) -> Option<&Dn> {
        match self {
            Principal::Anonymous => None,
            Principal::Local { dn, .. } | Principal::Entry(dn) => Some(dn),
            Principal::Token { account, .. } => Some(account),
            Principal::Proxied { target, .. } => (!target.is_root()).then_some(target),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
    Ldapi { uid: u32, gid: u32 },
}

impl Transport {
    /// Safe to carry credentials: TLS or a local socket.
    pub fn is_protected(&self) -> bool {
        !matches!(self, Transport::Plain)
    }
}

/// What the TLS handshake verified about the client, for SASL EXTERNAL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientCert {
    /// No certificate: plain LDAP, LDAPI, or a TLS client that sent none.
    #[default]
    Absent,
    /// A certificate that chained to `tls.client_ca`, by its subject.
    Verified(Dn),
    /// A verified certificate whose subject has no LDAP string form (a value that is not
    /// a string): it cannot name an entry.
    Unnamed,
}

/// Cookies issued and not yet used. A cookie is good for one use on this connection.
#[derive(Debug, Default)]
pub struct PagedCookies {
    issued: VecDeque<Vec<u8>>,
}

const MAX_OPEN_PAGED: usize = 32;

impl PagedCookies {
    pub fn issue(&mut self, cookie: Vec<u8>) {
        if self.issued.len() >= MAX_OPEN_PAGED {
            self.issued.pop_front();
        }
        self.issued.push_back(cookie);
    }

    /// Consume `cookie`; false if it was never issued here or was already used.
    pub fn take(&mut self, cookie: &[u8]) -> bool {
        match self.issued.iter().position(|c| c == cookie) {
            Some(i) => {
                self.issued.remove(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub transport: Transport,
    /// The client's address; None on the LDAPI socket.
    pub peer: Option<std::net::IpAddr>,
    pub client_cert: ClientCert,
    pub paged: Arc<Mutex<PagedCookies>>,
    /// Random per connection; binds paged cookies to it.
    pub nonce: [u8; 16],
}

impl Session {
    pub fn new(transport: Transport, peer: Option<std::net::IpAddr>) -> Session {
        let mut nonce = [0u8; 16];
        // A failure leaves a zero nonce: cookies are then still MAC-protected, only not
        // bound to this connection. getrandom does not fail on Linux once seeded.
        let _ = getrandom::fill(&mut nonce);
        Session {
            principal: Principal::Anonymous,
            transport,
            peer,
            client_cert: ClientCert::Absent,
            paged: Arc::new(Mutex::new(PagedCookies::default())),
            nonce,
        }
    }
}
