//! Clusters on loopback: each node a real server in this process with its own ports and
//! data directory. Form a cluster of three, write through every node and read every write
//! back from every node, mint a token through a follower and bind with it everywhere, add
//! a replica (which starts from a snapshot), remove a node, lose the leader.

use std::time::{Duration, Instant};

use ldap3::{Ldap, Scope};
use tessera::admin::client::{Client, Target};
use tessera::config::Config;
use tessera::server;

use serde_json::json;

use crate::http::Auth;
use crate::tokens::{add_service, generate, service_dn};
use crate::{TestServer, add_person, client_tls, person_dn};

const CLUSTER: &str = "2.25.235497813471364094925541187040296631981.4.5";

/// A cluster member with node id `id`; its CA copied from `ca_from` (a member's data
/// directory) when given, as `tessera cluster join` does.
pub async fn node(id: u64, ca_from: Option<&std::path::Path>) -> TestServer {
    node_at(id, ca_from, tempfile::tempdir().unwrap(), 0, "").await
}

/// [`node`] in `dir` (a new one, or a stopped node's), its cluster port `port` (0: any).
pub async fn node_at(
    id: u64,
    ca_from: Option<&std::path::Path>,
    dir: tempfile::TempDir,
    port: u16,
    extra: &str,
) -> TestServer {
    let data = dir.path().join("data");
    let toml = format!(
        r#"
data_dir = "{data}"
[listen]
ldaps = "127.0.0.1:0"
ldap = "127.0.0.1:0"
https = "127.0.0.1:0"
[argon2]
memory_kib = 64
iterations = 1
parallelism = 1
[cluster]
node_id = {id}
listen = "127.0.0.1:{port}"
heartbeat = "100ms"
election_timeout = "500ms"
max_staleness = "2s"
token_use_flush = "1s"
snapshot_every = 50
{extra}
"#,
        data = data.display(),
    );
    let config = Config::parse(&toml).unwrap();
    if let Some(from) = ca_from.filter(|_| !data.join("tls").exists()) {
        let bundle = dir.path().join("join.json");
        let member = Config::parse(&format!(
            "data_dir = \"{}\"\n[cluster]\nnode_id = 1\nlisten = \"127.0.0.1:0\"\n",
            from.display()
        ))
        .unwrap();
        tessera::cluster::bundle::write(&member, &bundle).unwrap();
        tessera::cluster::bundle::join(&config, &bundle).unwrap();
    }
    let running = server::start(config).await.unwrap();
    let tls = client_tls(running.ca.as_ref().unwrap());
    TestServer {
        running: Some(running),
        dir,
        tls,
    }
}

/// The data directory of `node`.
pub fn data_dir(node: &TestServer) -> std::path::PathBuf {
    node.dir.path().join("data")
}

/// The cluster address `node` listens on.
pub fn address(node: &TestServer) -> String {
    let cluster = node.running().state.cluster.as_ref().unwrap();
    cluster.settings().advertise.clone()
}

/// Send a cluster request to `node` as its local administrator; its text, or the code
/// and message it was refused with.
pub async fn manage(node: &TestServer, request: serde_json::Value) -> Result<String, String> {
    let socket = node.running().ldapi.clone().unwrap();
    let mut local = Client::connect(&Target::Local { socket }).await.unwrap();
    local
        .extended(CLUSTER, Some(request.to_string().into_bytes()))
        .await
        .map(|v| String::from_utf8(v.unwrap_or_default()).unwrap())
        .map_err(|e| e.to_string())
}

pub async fn status(node: &TestServer) -> serde_json::Value {
    let text = manage(node, serde_json::json!({"op": "status"}))
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Form a cluster of `n` voters: node 1 initialised, the others joined as replicas and
/// promoted (through node 2 when there is one: a membership change forwarded to the
/// leader).
pub async fn form(n: u64) -> Vec<TestServer> {
    let first = node(1, None).await;
    let told = manage(&first, serde_json::json!({"op": "init"})).await;
    assert!(
        told.as_ref().unwrap().contains("cluster of one"),
        "{told:?}"
    );
    let ca = data_dir(&first);
    let mut nodes = vec![first];
    for id in 2..=n {
        let joined = node(id, Some(&ca)).await;
        let addr = address(&joined);
        let added = manage(
            &nodes[0],
            serde_json::json!({"op": "add-replica", "id": id, "address": addr}),
        )
        .await;
        assert!(added.as_ref().unwrap().contains("caught up"), "{added:?}");
        let via = nodes.last().unwrap();
        let promoted = manage(via, serde_json::json!({"op": "promote", "id": id})).await;
        assert!(promoted.as_ref().unwrap().contains("voter"), "{promoted:?}");
        nodes.push(joined);
    }
    for node in &nodes {
        wait_for(
            || async { matches!(role(node).await.as_str(), "leader" | "follower") },
            "a voter that hears its leader",
        )
        .await;
    }
    nodes
}

/// The role the rootDSE of `node` states.
pub async fn role(node: &TestServer) -> String {
    let mut ldap = node.ldaps().await;
    let (entries, _) = ldap
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["tesseraClusterRole"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let entry = ldap3::SearchEntry::construct(entries.into_iter().next().unwrap());
    entry
        .attrs
        .get("tesseraClusterRole")
        .and_then(|v| v.first().cloned())
        .unwrap_or_default()
}

/// Poll `check` every 50 ms until it holds, for at most 20 s.
pub async fn wait_for<F, Fut>(mut check: F, what: &str)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Does `node` hold the entry `dn` (read by its local administrator)?
pub async fn holds(node: &TestServer, dn: &str) -> bool {
    let mut admin = node.admin().await;
    let found = admin
        .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .unwrap();
    found.1.rc == 0 && found.0.len() == 1
}

/// Wait until `node` holds `dn`.
pub async fn wait_holds(node: &TestServer, dn: &str, what: &str) {
    let start = Instant::now();
    while !holds(node, dn).await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {dn}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The people `via*` on `node`: DN, uidNumber and entryUUID, sorted.
async fn uid_numbers(node: &TestServer) -> Vec<String> {
    let mut admin = node.admin().await;
    let (entries, _) = admin
        .search(
            crate::PEOPLE,
            Scope::OneLevel,
            "(uid=via*)",
            vec!["uidNumber", "entryUUID"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let mut seen: Vec<String> = entries
        .into_iter()
        .map(|e| {
            let e = ldap3::SearchEntry::construct(e);
            format!(
                "{} {:?} {:?}",
                e.dn, e.attrs["uidNumber"], e.attrs["entryUUID"]
            )
        })
        .collect();
    seen.sort();
    seen
}

async fn bind_ok(node: &TestServer, dn: &str, secret: &str) -> bool {
    let mut ldap: Ldap = node.ldaps().await;
    ldap.simple_bind(dn, secret).await.unwrap().rc == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_every_write_and_answer_reads_locally() {
    let nodes = form(3).await;
    let roles: Vec<String> = futures_roles(&nodes).await;
    assert_eq!(
        roles.iter().filter(|r| *r == "leader").count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| *r == "follower").count(),
        2,
        "{roles:?}"
    );

    // A write through every node, each read back on the node it went through at once
    // (answered once applied there), then on every node.
    for (i, node) in nodes.iter().enumerate() {
        let uid = format!("via{}", i + 1);
        let mut admin = node.admin().await;
        add_person(&mut admin, &uid, "secret-pw", true).await;
        assert!(
            holds(node, &person_dn(&uid)).await,
            "read-your-write on node {}",
            i + 1
        );
    }
    for node in &nodes {
        for i in 1..=3 {
            let dn = person_dn(&format!("via{i}"));
            wait_holds(node, &dn, "the write on every node").await;
        }
    }
    // POSIX numbers were allocated where the log was applied: the same on every node.
    let first = uid_numbers(&nodes[0]).await;
    assert_eq!(first.len(), 3);
    for node in &nodes[1..] {
        assert_eq!(uid_numbers(node).await, first);
    }

    // A password bind against every node, and a token minted through a follower (its
    // secret returned there, only its hash replicated) that binds on every node.
    for node in &nodes {
        assert!(bind_ok(node, &person_dn("via2"), "secret-pw").await);
    }
    let follower = nodes
        .iter()
        .zip(&roles)
        .find(|(_, r)| *r == "follower")
        .unwrap()
        .0;
    let mut admin = follower.admin().await;
    assert_eq!(add_service(&mut admin, "nas01", None).await, 0);
    let minted = generate(&mut admin, &service_dn("nas01"), "ci", None, None, None)
        .await
        .unwrap();
    for node in &nodes {
        wait_for(
            || bind_ok(node, "dn=token", &minted.token),
            "the token on every node",
        )
        .await;
    }
    // Its use on the followers reaches the leader's copy (and so every copy) in a batch.
    let token_dn = format!("tokenId={},{}", minted.id, service_dn("nas01"));
    for node in &nodes {
        wait_for(
            || async {
                let mut admin = node.admin().await;
                let (found, _) = admin
                    .search(&token_dn, Scope::Base, "(tokenLastUsed=*)", vec!["1.1"])
                    .await
                    .unwrap()
                    .success()
                    .unwrap();
                found.len() == 1
            },
            "tokenLastUsed everywhere",
        )
        .await;
    }
    // Revoked through another node: refused everywhere as soon as the revocation is
    // answered (a write that takes access away is answered once every node applied it).
    let mut other = nodes[2].admin().await;
    other.delete(&token_dn).await.unwrap().success().unwrap();
    for node in &nodes {
        assert!(!bind_ok(node, "dn=token", &minted.token).await);
        assert!(!holds(node, &token_dn).await);
    }

    // The HTTP API's writes take the same path, through a follower: an account created
    // in a group (one command), a token minted there that binds on every node, and the
    // account deleted with its tokens (one command) everywhere.
    let root = crate::http::api_admin(follower).await;
    let root = Auth::Bearer(&root);
    let http = follower.http();
    http.send("POST", "/api/v1/groups", root, &json!({"cn": "owners"}))
        .await
        .expect(201);
    http.send(
        "POST",
        "/api/v1/service-accounts",
        root,
        &json!({"name": "web01", "display_name": "Web", "managed_by": "owners"}),
    )
    .await
    .expect(201);
    let minted = http
        .send(
            "POST",
            "/api/v1/service-accounts/web01/tokens",
            root,
            &json!({"label": "web", "expires": "30d"}),
        )
        .await;
    minted.expect(201);
    let secret = minted.json()["token"].as_str().unwrap().to_string();
    for node in &nodes {
        wait_for(
            || bind_ok(node, "dn=token", &secret),
            "the API's token on every node",
        )
        .await;
    }
    http.delete("/api/v1/service-accounts/web01", root)
        .await
        .expect(204);
    for node in &nodes {
        assert!(!bind_ok(node, "dn=token", &secret).await);
        assert!(!holds(node, &service_dn("web01")).await);
    }

    // Node-to-node traffic takes only certificates from the cluster's CA.
    stranger_is_refused(&nodes[0]).await;

    // A fourth node joins as a replica: it starts from a snapshot and catches up.
    let ca = data_dir(&nodes[0]);
    let replica = node(4, Some(&ca)).await;
    assert_eq!(role(&replica).await, "joining");
    let added = manage(
        &nodes[1],
        serde_json::json!({"op": "add-replica", "id": 4, "address": address(&replica)}),
    )
    .await;
    assert!(added.as_ref().unwrap().contains("caught up"), "{added:?}");
    for i in 1..=3 {
        wait_holds(
            &replica,
            &person_dn(&format!("via{i}")),
            "the replica's copy",
        )
        .await;
    }
    wait_for(|| async { role(&replica).await == "learner" }, "a learner").await;
    // A write through the replica goes to the leader like any other.
    let mut admin = replica.admin().await;
    add_person(&mut admin, "via4", "pw", false).await;
    for node in &nodes {
        wait_holds(node, &person_dn("via4"), "the replica's write").await;
    }

    // Remove node 3: the others go on writing, it gets no more writes.
    let removed = manage(&nodes[0], serde_json::json!({"op": "remove", "id": 3})).await;
    assert!(
        removed.as_ref().unwrap().contains("out of the cluster"),
        "{removed:?}"
    );
    let listed = status(&nodes[0]).await;
    let ids: Vec<u64> = listed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 4], "{listed}");
    let mut admin = nodes[0].admin().await;
    add_person(&mut admin, "after-remove", "pw", false).await;
    wait_holds(
        &replica,
        &person_dn("after-remove"),
        "writes after the removal",
    )
    .await;
    assert!(!holds(&nodes[2], &person_dn("after-remove")).await);

    for node in nodes.into_iter().chain([replica]) {
        node.stop().await;
    }
}

/// A node with a certificate from another CA cannot talk to `node`'s cluster port, in
/// either direction: it does not trust the node, and the node does not take it.
async fn stranger_is_refused(node: &TestServer) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use tessera::cluster::network::{Manage, Request, Tls};
    use tessera::server::ca::{self, Generated};
    let now = time::OffsetDateTime::now_utc();
    let other = crate::private_tempdir();
    let generated = Generated::new(&other.path().join("tls"));
    ca::create_ca(&generated, &[], now).unwrap();
    let (cert, key, other_ca) = ca::node_certificate(&generated, 9, now).unwrap();
    let within = Duration::from_secs(2);
    let stranger = Tls::new(cert.clone(), &key, other_ca, None).unwrap();
    assert!(stranger.connect(&address(node), within).await.is_err());
    // Trusting the cluster's CA, with its own certificate: the node refuses it.
    let cluster_ca = CertificateDer::from_pem_file(data_dir(node).join("tls/ca.pem")).unwrap();
    let trusting = Tls::new(cert, &key, cluster_ca.to_vec(), None).unwrap();
    let refused = match trusting.connect(&address(node), within).await {
        Err(_) => true,
        Ok(mut conn) => conn
            .call(&Request::Manage(Manage::Promote { id: 9 }), within)
            .await
            .is_err(),
    };
    assert!(refused, "a certificate from another CA was taken");
}

async fn futures_roles(nodes: &[TestServer]) -> Vec<String> {
    let mut roles = Vec::new();
    for node in nodes {
        roles.push(role(node).await);
    }
    roles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_survives_the_loss_of_its_leader_and_a_cut_off_node_refuses() {
    let mut nodes = form(3).await;
    let roles = futures_roles(&nodes).await;
    let leader = roles.iter().position(|r| r == "leader").unwrap();
    let gone = nodes.remove(leader);
    let mut admin = gone.admin().await;
    add_person(&mut admin, "before", "pw", true).await;
    drop(admin);
    gone.stop().await;
    // A new leader among the two left; writes go on through either.
    let started = Instant::now();
    let mut admin = nodes[0].admin().await;
    add_person(&mut admin, "after", "pw", true).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    for node in &nodes {
        wait_holds(node, &person_dn("before"), "the write before").await;
        wait_holds(node, &person_dn("after"), "the write after").await;
    }
    // Stop one more: the last node has no majority, and after the staleness bound it
    // refuses binds and searches with 52 (its rootDSE says cut-off), writes with 51/52.
    let last = nodes.remove(1);
    nodes.remove(0).stop().await;
    wait_for(|| async { role(&last).await == "cut-off" }, "cut off").await;
    let mut ldap = last.ldaps().await;
    let bind = ldap.simple_bind(&person_dn("after"), "pw").await.unwrap();
    assert_eq!(bind.rc, 52, "{bind:?}");
    let search = ldap
        .search(crate::PEOPLE, Scope::OneLevel, "(uid=*)", vec!["uid"])
        .await
        .unwrap();
    assert_eq!(search.1.rc, 52);
    let mut admin = last.admin().await;
    let write = admin.delete(&person_dn("after")).await.unwrap();
    assert!(matches!(write.rc, 51 | 52), "{write:?}");
    // Not ready for a load balancer either, and the API refuses as LDAP does.
    let http = last.http();
    let ready = http.get("/readyz", Auth::None).await;
    ready.expect(503);
    assert_eq!(ready.json()["code"], "cut_off", "{}", ready.text());
    let basic = http.get("/api/v1/whoami", Auth::Basic("after", "pw")).await;
    basic.expect(503);
    // The local administrator may still read.
    assert!(holds(&last, &person_dn("after")).await);
    last.stop().await;
}

/// A free port on 127.0.0.1, for a node that must come back at the same address.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_catches_up_from_the_log_or_a_snapshot_and_the_log_is_compacted() {
    // Three nodes at fixed cluster ports, so each can come back where the others expect it.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let first = node_at(1, None, tempfile::tempdir().unwrap(), ports[0], "").await;
    manage(&first, serde_json::json!({"op": "init"}))
        .await
        .unwrap();
    let ca = data_dir(&first);
    let mut nodes = vec![first];
    for id in 2..=3u64 {
        let joined = node_at(
            id,
            Some(&ca),
            tempfile::tempdir().unwrap(),
            ports[id as usize - 1],
            "",
        )
        .await;
        let addr = address(&joined);
        manage(
            &nodes[0],
            serde_json::json!({"op": "add-replica", "id": id, "address": addr}),
        )
        .await
        .unwrap();
        manage(&nodes[0], serde_json::json!({"op": "promote", "id": id}))
            .await
            .unwrap();
        nodes.push(joined);
    }
    // Node 3 stops; 120 writes go on without it (snapshots every 50 entries: its part of
    // the log is dropped, so it must catch up from a snapshot over the store it has).
    let third = nodes.pop().unwrap();
    let dir = third.stop().await;
    let mut admin = nodes[0].admin().await;
    for i in 0..120 {
        add_person(&mut admin, &format!("while-down-{i}"), "pw", false).await;
    }
    let status = status(&nodes[0]).await;
    assert!(
        status["snapshot"].as_u64().is_some_and(|s| s >= 50),
        "{status}"
    );
    let back = node_at(3, Some(&ca), dir, ports[2], "").await;
    wait_holds(
        &back,
        &person_dn("while-down-119"),
        "the restarted node's catch-up",
    )
    .await;
    wait_for(
        || async { role(&back).await == "follower" },
        "the restarted node following",
    )
    .await;
    nodes.push(back);
    // The leader restarts too: a new one is elected, and it catches up on its return.
    let leader = {
        let mut found = None;
        for (i, n) in nodes.iter().enumerate() {
            if role(n).await == "leader" {
                found = Some(i);
            }
        }
        found.unwrap()
    };
    let old = nodes.remove(leader);
    let id = leader as u64 + 1;
    let dir = old.stop().await;
    let mut admin = nodes[0].admin().await;
    add_person(&mut admin, "after-leader-restart", "pw", false).await;
    let back = node_at(id, Some(&ca), dir, ports[id as usize - 1], "").await;
    wait_holds(
        &back,
        &person_dn("after-leader-restart"),
        "the old leader's catch-up",
    )
    .await;
    wait_holds(&back, &person_dn("while-down-0"), "the old leader's store").await;
    nodes.push(back);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_rules_settings_differ_says_so_and_refuses() {
    let first = node(1, None).await;
    manage(&first, serde_json::json!({"op": "init"}))
        .await
        .unwrap();
    let ca = data_dir(&first);
    let differ = "[posix]\nuid_min = 50000\n";

    // Refused when it is added: it would apply the log by other rules.
    let other = node_at(2, Some(&ca), tempfile::tempdir().unwrap(), 0, differ).await;
    let refused = manage(
        &first,
        serde_json::json!({"op": "add-replica", "id": 2, "address": address(&other)}),
    )
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("other rules settings")),
        "{refused:?}"
    );
    // As is a node nobody answers for.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let refused = manage(
        &first,
        serde_json::json!({"op": "add-replica", "id": 3, "address": nowhere}),
    )
    .await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("cannot reach")),
        "{refused:?}"
    );
    assert_eq!(status(&first).await["nodes"].as_array().unwrap().len(), 1);
    other.stop().await;

    // A member restarted with other settings notices at the next write, and refuses.
    let port = free_port();
    let third = node_at(3, Some(&ca), tempfile::tempdir().unwrap(), port, "").await;
    manage(
        &first,
        serde_json::json!({"op": "add-replica", "id": 3, "address": address(&third)}),
    )
    .await
    .unwrap();
    let dir = third.stop().await;
    let third = node_at(3, None, dir, port, differ).await;
    let mut admin = first.admin().await;
    add_person(&mut admin, "posix-numbered", "pw", true).await;
    wait_for(
        || async { status(&third).await["rules_differ"] == true },
        "the difference noticed",
    )
    .await;
    assert_eq!(status(&first).await["rules_differ"], false);
    let mut ldap = third.ldaps().await;
    let bind = ldap.simple_bind("", "").await.unwrap();
    assert_eq!(bind.rc, 52, "{bind:?}");
    third.stop().await;
    first.stop().await;
}

/// The cluster port answers before anyone is authenticated: a stranger that opens
/// connections and never finishes a handshake holds its share of them, the next is closed
/// unread, and once they are gone a node joins through the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unfinished_handshakes_from_one_address_are_bounded() {
    use tessera::cluster::network::HANDSHAKES_PER_PEER;
    use tokio::io::AsyncReadExt;
    let first = node(1, None).await;
    manage(&first, serde_json::json!({"op": "init"}))
        .await
        .unwrap();
    let addr = address(&first);
    let mut stalled = Vec::new();
    for _ in 0..HANDSHAKES_PER_PEER {
        stalled.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut byte = [0u8; 1];
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), over.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "a connection past the share is closed at once: {closed:?}"
    );
    let waiting =
        tokio::time::timeout(Duration::from_millis(300), stalled[0].read(&mut byte)).await;
    assert!(
        waiting.is_err(),
        "one within the share waits for its handshake: {waiting:?}"
    );
    drop(stalled);

    let joined = node(2, Some(&data_dir(&first))).await;
    let added = manage(
        &first,
        serde_json::json!({"op": "add-replica", "id": 2, "address": address(&joined)}),
    )
    .await;
    assert!(added.as_ref().unwrap().contains("caught up"), "{added:?}");
    joined.stop().await;
    first.stop().await;
}
