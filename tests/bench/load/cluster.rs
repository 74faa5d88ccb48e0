//! `--cluster`: what a three-node cluster costs and buys, against a single server on the
//! same data and machine. getpwnam on a follower against the single server; the latency
//! of LDAP Add and of a token mint, one at a time, on the single server and on the
//! cluster through its leader and through a follower; and the time from SIGKILLing the
//! leader to the first write committed through a follower (by the new leader). All
//! nodes and the load generator share this machine's cores.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::exop::Exop;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

use crate::data::{DataSet, SUFFIX};
use crate::report::Report;
use crate::scenario::{self, Kind, Plan, Target};
use crate::servers::{Server, ServerKind, Tls, ber_sequence, free_port};

const GENERATE_TOKEN: &str = "2.25.235497813471364094925541187040296631981.4.1";

/// How long and how often to measure.
pub struct Timing {
    pub quick: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
}

/// Run the cluster measurements; the number of runs that failed.
pub async fn run(
    dir: &Path,
    data: &Arc<DataSet>,
    tls: &Tls,
    report: &mut Report,
    timing: Timing,
) -> i32 {
    let Timing {
        quick,
        warmup,
        duration,
        rounds,
    } = timing;
    let writes = if quick { 30 } else { 300 };
    let mut single = Server::prepare_tessera(&dir.join("single"), data, tls, "");
    single.import();
    single.start().await;
    let principals = single.provision().await;

    // The cluster: node 1 imports the data set and forms a cluster of one; nodes 2 and 3
    // join from its snapshot and are promoted.
    let mut nodes: Vec<Server> = Vec::new();
    let mut addrs = Vec::new();
    for id in 1..=3u64 {
        let port = free_port();
        let table = format!(
            "[cluster]\nnode_id = {id}\nlisten = \"127.0.0.1:{port}\"\nheartbeat = \"100ms\"\nelection_timeout = \"500ms\"\nmax_staleness = \"5s\"\n"
        );
        let node = Server::prepare_tessera(&dir.join(format!("node{id}")), data, tls, &table);
        nodes.push(node);
        addrs.push(format!("127.0.0.1:{port}"));
    }
    nodes[0].import();
    nodes[0].start().await;
    cli(&nodes[0], &["cluster", "init"]);
    let bundle = dir.join("join.json");
    cli(
        &nodes[0],
        &["cluster", "bundle", &bundle.display().to_string()],
    );
    for i in 1..3 {
        cli(
            &nodes[i],
            &["cluster", "join", &bundle.display().to_string()],
        );
        nodes[i].start().await;
        let id = (i + 1).to_string();
        cli(&nodes[0], &["cluster", "add-replica", &id, &addrs[i]]);
        cli(&nodes[0], &["cluster", "promote", &id]);
    }
    let cluster_principals = nodes[0].provision().await;
    // The tokens reach the followers before they are used there.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut failures = 0;
    // getpwnam on a follower against the single server, taking turns.
    for conns in [1usize, 8] {
        let plan = Plan {
            kind: Kind::Getpwnam,
            conns,
            warmup,
            duration,
            flood: 0,
        };
        let follower = Arc::new(Target::new(
            &nodes[1],
            data,
            cluster_principals.reader.clone(),
        ));
        let alone = Arc::new(Target::new(&single, data, principals.reader.clone()));
        let mut totals: Vec<(String, scenario::Measured)> = Vec::new();
        for round in 0..rounds.max(1) {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (target, name) = if i == 0 {
                    (follower.clone(), "getpwnam (cluster follower)")
                } else {
                    (alone.clone(), "getpwnam (single server)")
                };
                for (_, measured) in scenario::run(target, plan).await {
                    match totals.iter_mut().find(|(n, _)| n == name) {
                        Some((_, t)) => t.absorb(measured),
                        None => totals.push((name.to_string(), measured)),
                    }
                }
            }
        }
        for (name, measured) in totals {
            let result = measured.result(&name, ServerKind::Tessera, conns);
            println!("{}", result.line());
            if result.ops == 0 || result.errors * 100 > result.ops {
                failures += 1;
            }
            report.push(result);
        }
    }

    // Write latency, one operation at a time, as svc-admin with a read-write token.
    let admin = &writer(&single, &principals.admin).await;
    let cluster_admin = &writer(&nodes[0], &cluster_principals.admin).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cases: [(&str, &Server, &scenario::Principal); 3] = [
        ("single server", &single, admin),
        ("cluster, via the leader", &nodes[0], cluster_admin),
        ("cluster, via a follower", &nodes[1], cluster_admin),
    ];
    for (what, server, principal) in cases {
        let mut ldap = connect(server, principal).await;
        let tag = what.split_whitespace().last().unwrap_or("x").to_string();
        let adds = timed(writes, |n| {
            let dn = format!("uid=bench-{tag}-{n},ou=people,{SUFFIX}");
            let mut ldap = ldap.clone();
            async move {
                let attrs = vec![
                    ("objectClass", HashSet::from(["inetOrgPerson"])),
                    (
                        "uid",
                        HashSet::from([dn.split(['=', ',']).nth(1).unwrap_or("x")]),
                    ),
                    ("cn", HashSet::from(["bench"])),
                    ("sn", HashSet::from(["bench"])),
                ];
                match ldap.add(&dn, attrs).await {
                    Ok(r) if r.rc == 0 => true,
                    other => {
                        if n == 0 {
                            eprintln!("add {dn}: {other:?}");
                        }
                        false
                    }
                }
            }
        })
        .await;
        let service = format!("uid=svc-reader,ou=services,{SUFFIX}");
        let mints = timed(writes, |n| {
            let mut ldap = ldap.clone();
            let request = ber_sequence(&[
                (0x80, service.as_bytes()),
                (0x81, format!("bench {n}").as_bytes()),
            ]);
            async move {
                ldap.extended(Exop {
                    name: Some(GENERATE_TOKEN.into()),
                    val: Some(request),
                })
                .await
                .is_ok_and(|r| r.1.rc == 0)
            }
        })
        .await;
        for (op, (lat, errors)) in [("LDAP Add", adds), ("token mint", mints)] {
            println!(
                "write latency {op:<10} {what:<26} mean {:>6.2} ms  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ops, {errors} errors)",
                mean(&lat),
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat.len()
            );
            report.note(
                &format!("write_latency_ms:{op}:{what}"),
                format!(
                    "mean {:.2} p50 {:.2} p99 {:.2} n {}",
                    mean(&lat),
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    lat.len()
                ),
            );
            if errors > 0 {
                failures += 1;
            }
        }
        let _ = ldap.unbind().await;
    }

    // Failover, three times: SIGKILL the leader, then write through a follower until a
    // write commits; the killed node is started again before the next round.
    let mut took_ms = Vec::new();
    for round in 0..3 {
        let leader = leader_of(&nodes);
        let via = (leader + 1) % nodes.len();
        let mut follower = connect(&nodes[via], cluster_admin).await;
        let started = Instant::now();
        nodes[leader].kill();
        let mut tries = 0;
        let took = loop {
            tries += 1;
            let dn = format!("uid=after-failover-{round}-{tries},ou=people,{SUFFIX}");
            let attrs = vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["x"])),
                ("sn", HashSet::from(["x"])),
            ];
            if matches!(follower.add(&dn, attrs).await.map(|r| r.rc), Ok(0)) {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(60) {
                println!("FAIL - no write committed within 60 s of killing the leader");
                failures += 1;
                break started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let ms = took.as_secs_f64() * 1000.0;
        println!(
            "failover {}: node {} (leader) SIGKILLed -> first committed write through node {}: {ms:.0} ms ({tries} tries)",
            round + 1,
            leader + 1,
            via + 1
        );
        took_ms.push(ms);
        let _ = follower.unbind().await;
        nodes[leader].start().await;
        // Back as a follower, caught up, before the next round.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "failover: leader SIGKILLed -> first committed write: mean {:.0} ms, max {:.0} ms (election timeout 500-1000 ms)",
        mean(&took_ms),
        took_ms.iter().copied().fold(0.0, f64::max)
    );
    report.note(
        "failover_ms",
        took_ms
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(" "),
    );

    single.stop();
    for node in &mut nodes {
        node.stop();
    }
    failures
}

/// Run `n` operations one after another; their latencies (ms) and the failures.
async fn timed<F, Fut>(n: usize, mut op: F) -> (Vec<f64>, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n {
        let start = Instant::now();
        if op(i).await {
            lat.push(start.elapsed().as_secs_f64() * 1000.0);
        } else {
            errors += 1;
        }
    }
    (lat, errors)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

/// `admin` with a read-write token of its own, minted by the local administrator.
async fn writer(server: &Server, admin: &scenario::Principal) -> scenario::Principal {
    let sock = server.dir.join("data").join("ldapi.sock");
    let url = format!("ldapi://{}", sock.display().to_string().replace('/', "%2F"));
    let (conn, mut ldap) = LdapConnAsync::new(&url).await.expect("ldapi connect");
    ldap3::drive!(conn);
    ldap.sasl_external_bind()
        .await
        .and_then(|r| r.success())
        .expect("SASL EXTERNAL");
    let account = format!("uid=svc-admin,ou=services,{SUFFIX}");
    let request = ber_sequence(&[
        (0x80, account.as_bytes()),
        (0x81, b"load benchmark writes"),
        (0x82, b"read-write"),
    ]);
    let (exop, _) = ldap
        .extended(Exop {
            name: Some(GENERATE_TOKEN.into()),
            val: Some(request),
        })
        .await
        .and_then(|r| r.success())
        .expect("generate a read-write token");
    let value = exop.val.expect("a response value");
    let token = crate::servers::ber_field(&value, 0x81).expect("the token");
    let _ = ldap.unbind().await;
    scenario::Principal {
        dn: admin.dn.clone(),
        password: String::from_utf8(token).expect("token text"),
        role: "directory-admins, read-write",
    }
}

/// An LDAPS connection to `server` bound as `principal`.
async fn connect(server: &Server, principal: &scenario::Principal) -> Ldap {
    let settings = LdapConnSettings::new().set_config(server.tls_client());
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &server.ldaps_url())
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(&principal.dn, &principal.password)
        .await
        .and_then(|r| r.success())
        .expect("bind");
    ldap
}

/// The index in `nodes` of the one that leads now, by the first running node's status.
fn leader_of(nodes: &[Server]) -> usize {
    for _ in 0..100 {
        for node in nodes.iter().filter(|n| n.pid().is_some()) {
            let status = cli(node, &["cluster", "status"]);
            let leader = status
                .lines()
                .find_map(|l| l.trim().strip_prefix("\"leader\": "))
                .and_then(|v| v.trim_end_matches(',').parse::<usize>().ok());
            if let Some(id) = leader.filter(|id| nodes[id - 1].pid().is_some()) {
                return id - 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader among the running nodes");
}

/// Run `tessera ARGS --config` for `server`, which must succeed; its output.
fn cli(server: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .arg("--config")
        .arg(server.config())
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "tessera {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
