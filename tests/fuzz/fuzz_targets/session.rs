//! The whole session state machine: arbitrary bytes as one client's side of a connection
//! against an in-memory directory. The first byte picks who the client is:
//!
//! * 0: the local administrator on LDAPI, who may do everything (its own server);
//! * 1: an anonymous client over TLS, which knows no credential;
//! * 2: the same, bound first with a valid read-only token of a service account that
//!   holds no role.
//!
//! Always: the server answers or disconnects, never panics or hangs. For 1 and 2 (their
//! own server, which nothing else writes to), the §5 invariants as well: the store's
//! commit count does not move (neither anonymous nor a read-only token changes the
//! directory, whatever they send), and every entry a search returns is one anonymous may
//! see (rootDSE, subschema, the suffix entry), or for the token, also its own account and
//! what is below it.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapMsg, LdapOp};
use libfuzzer_sys::fuzz_target;
use tessera::directory::dn::Dn;
use tessera::directory::entry::Entry;
use tessera::ldap::session::Transport;
use tessera::dit::caller::{self, Principal};
use tessera::dit::credentials::Intent;
use tessera::dit::token::{self, Request};
use tessera::server::conn::{self, ConnShared};
use tessera::store::{DirectoryRead, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

const CONFIG: &str = "[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n\
    [limits]\nidle_timeout = \"2s\"\n\
    [throttle]\nfree_failures = 1000000000\nsource_free_failures = 1000000000\n";
const ACCOUNT: &str = "uid=fuzz-ro,ou=services,dc=example,dc=com";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn new_server() -> ConnShared {
    let config = tessera::config::Config::parse(CONFIG).expect("config");
    runtime()
        .block_on(async { tessera::server::in_memory(config) })
        .expect("in-memory server")
}

fn admin_server() -> &'static ConnShared {
    static SERVER: OnceLock<ConnShared> = OnceLock::new();
    SERVER.get_or_init(new_server)
}

/// The server only anonymous and read-only-token clients reach, and its token.
fn restricted_server() -> &'static (ConnShared, String) {
    static SERVER: OnceLock<(ConnShared, String)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let shared = new_server();
        let state = shared.state.clone();
        let minted = state
            .store
            .write_blocking(|w| {
                let mut account = Entry::new(Dn::parse(ACCOUNT).expect("DN"));
                account.set(
                    "objectClass",
                    vec![b"top".to_vec(), b"tesseraServiceAccount".to_vec()],
                );
                account.set_str("uid", "fuzz-ro");
                account.set_str("cn", "fuzz-ro");
                w.add(&account)?;
                let req = Request {
                    account: account.dn.clone(),
                    label: "fuzz".into(),
                    read_write: false,
                    expires: None,
                    intent: Intent::ApiToken,
                    extend_on_use: None,
                };
                let policy = state.policy();
                let admin = Principal::Local {
                    dn: Dn::parse("cn=fuzz").expect("DN"),
                    admin: true,
                };
                let caller = caller::caller(w, &admin, &policy).map_err(|e| StoreError::Refused(e.message))?;
                token::generate_now(w, &policy, &caller, &req)
                    .map_err(|e| StoreError::Refused(e.message))
            })
            .expect("a read-only token");
        // A bind records the token's last use (at most once a minute): a designed write,
        // not one the client asked for. Marked as recorded far ahead, it never happens,
        // so any commit at all is a finding.
        let far = state.clock.now() + time::Duration::days(365 * 100);
        state
            .token_uses
            .lock()
            .expect("lock")
            .insert(minted.id.clone(), far);
        (shared, minted.token)
    })
}

fn commits(shared: &ConnShared) -> u64 {
    shared
        .state
        .store
        .read_blocking(|r| Ok::<_, StoreError>(r.generation()))
        .expect("a read")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (shared, transport, prefix, may_see) = match mode % 3 {
        0 => (
            admin_server(),
            Transport::Ldapi { uid: 0, gid: 0 },
            Vec::new(),
            None,
        ),
        1 => (
            &restricted_server().0,
            Transport::Tls,
            Vec::new(),
            Some(false),
        ),
        _ => {
            let (shared, token) = restricted_server();
            (shared, Transport::Tls, bind_request(token), Some(true))
        }
    };
    let before = may_see.map(|_| commits(shared));
    let output = runtime().block_on(async {
        let (mut client, server_side) = tokio::io::duplex(256 * 1024);
        let serving = tokio::spawn({
            let shared = shared.clone();
            async move { conn::serve_stream(&shared, server_side, transport).await }
        });
        let _ = client.write_all(&prefix).await;
        let _ = client.write_all(rest).await;
        let _ = client.shutdown().await;
        let mut output = Vec::new();
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = client.read_to_end(&mut output).await;
        })
        .await;
        assert!(drained.is_ok(), "the server neither answered nor closed");
        let done = tokio::time::timeout(Duration::from_secs(10), serving).await;
        assert!(
            matches!(done, Ok(Ok(()))),
            "the connection task ended cleanly"
        );
        output
    });
    let (Some(with_token), Some(before)) = (may_see, before) else {
        return;
    };
    // Spawned operations of a connection that ended may still be finishing.
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(before, commits(shared), "the directory changed");
    let anonymous = ["", "cn=subschema", "dc=example,dc=com"];
    let account = Dn::parse(ACCOUNT).expect("DN");
    for dn in returned_entries(&output) {
        let parsed = Dn::parse(&dn).expect("a returned DN parses");
        let visible = anonymous.contains(&parsed.norm())
            || (with_token && (parsed == account || parsed.is_within(&account)));
        assert!(visible, "returned {dn} (token session: {with_token})");
    }
});

fn bind_request(token: &str) -> Vec<u8> {
    let msg = LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: "dn=token".into(),
            cred: LdapBindCred::Simple(token.into()),
        }),
        ctrl: Vec::new(),
    };
    let mut buf = BytesMut::new();
    LdapCodec::default().encode(msg, &mut buf).expect("encode");
    buf.to_vec()
}

/// The DNs of the search entries in what the server wrote.
fn returned_entries(output: &[u8]) -> Vec<String> {
    let mut codec = LdapCodec::new(Some(64 << 20), None);
    let mut buf = BytesMut::from(output);
    let mut dns = Vec::new();
    while let Ok(Some(msg)) = codec.decode(&mut buf) {
        if let LdapOp::SearchResultEntry(entry) = msg.op {
            dns.push(entry.dn);
        }
    }
    dns
}
