//! The side-by-side load benchmark against OpenLDAP slapd (issue 6).
//!
//! `cargo bench --bench load -- --people 10000`: generates one data set, loads it into
//! Tessera (`tessera db import`) and a private slapd (`slapadd`, mdb), starts both on
//! loopback ports with their own temporary directories, runs every scenario against both,
//! alternating, and prints a table, the Tessera/slapd ratios and JSON. `--quick` is the CI
//! smoke run. The load generator shares the machine with the servers; the load average is
//! printed with every figure. Timings belong here, never in tests. `--cluster` measures a
//! three-node cluster against a single server instead (`cluster`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod api;
mod cluster;
mod data;
mod report;
mod scenario;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::data::DataSet;
use crate::report::Report;
use crate::scenario::{Kind, Plan, Principal, Target};
use crate::servers::{Server, ServerKind};

#[derive(Parser, Debug)]
#[command(about = "Tessera vs OpenLDAP slapd load benchmark")]
struct Args {
    /// People in the data set (groups: 1,000, or people/10 when fewer than 10,000 people).
    #[arg(long, default_value_t = 10_000)]
    people: usize,
    /// Small data, short runs, one concurrency: the CI smoke test.
    #[arg(long)]
    quick: bool,
    /// Concurrent connections per scenario, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    conns: Vec<usize>,
    /// Scenarios to run (default: all), comma separated.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Warm-up before measuring, seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured time per run, seconds (per round, with its own warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Rounds per scenario and concurrency: the two servers take turns, round by round,
    /// so a drift in the machine's speed (this VM's moves up to 3× between runs) reaches
    /// both alike. Figures add the rounds up; the table also shows the ratio's range
    /// across rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Password-bind connections flooding the server in `mixed`.
    #[arg(long, default_value_t = 8)]
    flood: usize,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench-load.json")]
    json: PathBuf,
    /// Lines for Tessera's `[limits]` section, e.g. 'busy_poll = "0"', to compare a
    /// setting against its default on the same build.
    #[arg(long, default_value = "")]
    tessera_limits: String,
    /// Run Tessera with its HTTPS API listener on (off by default, as in every earlier
    /// run), to see what having it costs the LDAP scenarios.
    #[arg(long)]
    https: bool,
    /// Also measure the API itself with ApacheBench (`ab`, Debian's apache2-utils): token
    /// list and token create, requests/s and latency percentiles. Implies --https.
    #[arg(long)]
    api: bool,
    /// Requests per API measurement.
    #[arg(long, default_value_t = 4000)]
    api_requests: usize,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 8)]
    api_conns: usize,
    /// Keep the temporary directory (data, configs, logs) for inspection.
    #[arg(long)]
    keep: bool,
    /// Measure a three-node cluster against a single server instead (no slapd): getpwnam
    /// on a follower, write latency, failover time.
    #[arg(long)]
    cluster: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let mut args = Args::parse();
    args.https |= args.api;
    if args.quick {
        args.people = args.people.min(500);
        args.conns = vec![4];
        args.warmup = 0.3;
        args.duration = 1.0;
        args.flood = 2;
        args.rounds = 1;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(run(args));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let work = tempfile::Builder::new()
        .prefix("tessera-bench-")
        .tempdir()
        .expect("temp dir");
    let dir = work.path().to_path_buf();
    let mut report = Report::new(args.people, args.quick);
    if !args.tessera_limits.is_empty() {
        report.note("tessera_limits", args.tessera_limits.clone());
    }
    report.note(
        "tessera_https",
        if args.https { "on" } else { "off" }.into(),
    );
    if args.cluster {
        println!(
            "Tessera cluster against a single server: {} people, {} rounds of warm-up {}s and {}s, {}",
            args.people,
            args.rounds,
            args.warmup,
            args.duration,
            report::machine_line()
        );
        let data = Arc::new(DataSet::generate(args.people, &dir));
        let tls = servers::Tls::generate(&dir);
        let timing = cluster::Timing {
            quick: args.quick,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.duration),
            rounds: args.rounds,
        };
        let failures = cluster::run(&dir, &data, &tls, &mut report, timing).await;
        report.write_json(&args.json);
        println!("JSON: {}", args.json.display());
        if args.keep {
            println!("kept {}", work.keep().display());
        }
        return i32::from(failures > 0);
    }
    println!(
        "Tessera vs slapd load benchmark: {} people, conns {:?}, {} rounds of warm-up {}s and {}s per server, {}",
        args.people,
        args.conns,
        args.rounds,
        args.warmup,
        args.duration,
        report::machine_line()
    );

    servers::ensure_slapd();
    let argon_rate =
        scenario::raw_argon2_rate(Duration::from_secs_f64(if args.quick { 0.5 } else { 3.0 }));
    report.note(
        "argon2id_raw_verifications_per_s",
        format!("{argon_rate:.1}"),
    );
    println!(
        "raw argon2id verification rate (m=19456 KiB, t=2, p=1, all cores, in process): {argon_rate:.1}/s"
    );

    let t = Instant::now();
    let data = Arc::new(DataSet::generate(args.people, &dir));
    println!(
        "data set: {} people, {} groups, LDIF written in {:.1}s",
        data.people,
        data.groups,
        t.elapsed().as_secs_f64()
    );

    let tls = servers::Tls::generate(&dir);
    let mut tessera = Server::prepare(
        ServerKind::Tessera,
        &dir,
        &data,
        &tls,
        &args.tessera_limits,
        args.https,
    );
    let mut slapd = Server::prepare(ServerKind::Slapd, &dir, &data, &tls, "", false);
    for s in [&mut tessera, &mut slapd] {
        let import = s.import();
        println!("{:<8} import: {:.2}s", s.kind.name(), import.as_secs_f64());
        report.metric(s.kind.name(), "import_s", import.as_secs_f64());
    }
    for s in [&mut tessera, &mut slapd] {
        let startup = s.start().await;
        println!(
            "{:<8} startup: {:.3}s",
            s.kind.name(),
            startup.as_secs_f64()
        );
        report.metric(s.kind.name(), "startup_s", startup.as_secs_f64());
    }
    let principals = tessera.provision().await;
    let targets = [
        Arc::new(Target::new(&tessera, &data, principals.reader.clone())),
        Arc::new(Target::new(
            &slapd,
            &data,
            Principal {
                dn: data.slapd_reader_dn(),
                password: data.service_password.clone(),
                role: "users read (slapd ACL)",
            },
        )),
    ];
    for s in [&tessera, &slapd] {
        report.metric(s.kind.name(), "rss_after_start_kib", s.rss_kib() as f64);
    }

    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let wanted = |k: &str| args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == k);
    // Runs whose figures mean nothing: they did no work, or much of it failed.
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0usize;
    for kind in Kind::ALL {
        if !wanted(kind.name()) {
            continue;
        }
        for (c, &conns) in args.conns.iter().enumerate() {
            let plan = Plan {
                kind,
                conns,
                warmup,
                duration,
                flood: args.flood,
            };
            // Per server: each reported run's name and its rounds so far, added up.
            let mut totals: [Vec<(String, scenario::Measured)>; 2] = [Vec::new(), Vec::new()];
            for round in 0..args.rounds.max(1) {
                // Alternate which server goes first, so neither always runs on a warmer
                // machine.
                let order: [usize; 2] = if (c + round) % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let target = &targets[i];
                    for (name, measured) in scenario::run(target.clone(), plan).await {
                        let line = measured.result(&name, target.server, conns).line();
                        println!("{line}  (round {})", round + 1);
                        match totals[i].iter_mut().find(|(n, _)| *n == name) {
                            Some((_, total)) => total.absorb(measured),
                            None => totals[i].push((name, measured)),
                        }
                    }
                }
            }
            for (i, runs) in totals.iter().enumerate() {
                for (name, measured) in runs {
                    let result = measured.result(name, targets[i].server, conns);
                    failures.extend(unsound(&result));
                    checked += 1;
                    report.push(result);
                }
            }
        }
    }

    if wanted("role-cost") {
        let conns = if args.quick { 4 } else { 8 };
        for principal in [&principals.reader, &principals.admin] {
            let target = Arc::new(Target::new(&tessera, &data, principal.clone()));
            let plan = Plan {
                kind: Kind::Getpwnam,
                conns,
                warmup,
                duration,
                flood: 0,
            };
            for (_, measured) in scenario::run(target, plan).await {
                let name = format!("role-cost:{}", principal.role);
                let result = measured.result(&name, ServerKind::Tessera, conns);
                println!("{}", result.line());
                failures.extend(unsound(&result));
                checked += 1;
                report.push(result);
            }
        }
    }

    if args.api {
        let port = tessera.https_port.expect("the HTTPS listener is on");
        for (name, figures) in api::run(
            port,
            &principals.api_token,
            args.api_requests,
            args.api_conns,
            &dir,
        ) {
            println!("{}", figures.line(&name, args.api_conns));
            for (key, value) in figures.pairs() {
                report.metric("tessera", &format!("api_{name}_{key}"), value);
            }
            if figures.failed > 0 || figures.completed == 0 {
                failures.push(format!(
                    "api {name}: {} of {} requests failed",
                    figures.failed, figures.completed
                ));
            }
            checked += 1;
        }
    }
    for s in [&tessera, &slapd] {
        report.metric(s.kind.name(), "rss_after_load_kib", s.rss_kib() as f64);
    }
    tessera.stop();
    slapd.stop();

    report.print(argon_rate);
    report.write_json(&args.json);
    println!("JSON: {}", args.json.display());
    if args.keep {
        let kept = work.keep();
        println!("kept {}", kept.display());
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAIL - {f}");
        }
        eprintln!("{} runs did no work or had errors", failures.len());
        return 1;
    }
    if checked == 0 {
        eprintln!("FAIL - no scenario ran");
        return 1;
    }
    println!(
        "all {checked} runs completed operations, with at most 1 error in {MAX_ERROR_RATE_DENOMINATOR}"
    );
    0
}

/// At most one error in this many operations: a few connection hiccups under load are not
/// the server failing.
const MAX_ERROR_RATE_DENOMINATOR: u64 = 100;

/// Why `result` cannot be trusted, if it cannot: no operation completed, or more than one
/// in [`MAX_ERROR_RATE_DENOMINATOR`] failed (its first error is shown).
fn unsound(result: &report::RunResult) -> Option<String> {
    let what = format!(
        "{} on {} at {} connections",
        result.scenario, result.server, result.conns
    );
    if result.ops == 0 {
        return Some(format!(
            "{what}: no operation completed ({} errors, first: {})",
            result.errors,
            result.first_error.as_deref().unwrap_or("none")
        ));
    }
    if result.errors * MAX_ERROR_RATE_DENOMINATOR > result.ops {
        return Some(format!(
            "{what}: {} errors in {} operations (first: {})",
            result.errors,
            result.ops,
            result.first_error.as_deref().unwrap_or("none")
        ));
    }
    None
}
