//! The whole session state machine: arbitrary bytes as one client's side of a connection
//! (as the local administrator, who may do everything) against an in-memory directory.
//! The server must answer or disconnect, never panic or hang.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tessera::ldap::session::Transport;
use tessera::server::conn::{self, ConnShared};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

fn server() -> &'static ConnShared {
    static SERVER: OnceLock<ConnShared> = OnceLock::new();
    SERVER.get_or_init(|| {
        let config = tessera::config::Config::parse(
            "[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n[limits]\nidle_timeout = \"2s\"\n",
        )
        .expect("config");
        runtime()
            .block_on(async { tessera::server::in_memory(config) })
            .expect("in-memory server")
    })
}

fuzz_target!(|data: &[u8]| {
    let shared = server();
    runtime().block_on(async {
        let (mut client, server_side) = tokio::io::duplex(256 * 1024);
        let transport = Transport::Ldapi { uid: 0, gid: 0 };
        let serving = tokio::spawn({
            let shared = shared.clone();
            async move { conn::serve_stream(&shared, server_side, transport).await }
        });
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(drained.is_ok(), "the server neither answered nor closed");
        let done = tokio::time::timeout(Duration::from_secs(10), serving).await;
        assert!(matches!(done, Ok(Ok(()))), "the connection task ended cleanly");
    });
});
