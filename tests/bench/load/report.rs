//! Results: one line per run as it finishes, then the table of Tessera/slapd ratios, the
//! one-off figures (import, start-up, RSS) and a JSON file with everything.

use std::fmt::Write as _;
use std::path::Path;

pub struct RunResult {
    pub scenario: String,
    pub server: String,
    pub conns: usize,
    pub ops: u64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// 1-minute load average when the run ended.
    pub load: f64,
    /// Ops/s in each round, in the order they ran.
    pub rounds: Vec<f64>,
    /// Server CPU (user + system) per counted operation, in microseconds.
    pub cpu_us_per_op: Option<f64>,
}

impl RunResult {
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<30} {:<8} c={:<3} {:>10.1} ops/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {:>4}  load {:.2}",
            self.scenario,
            self.server,
            self.conns,
            self.ops_per_s,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.load
        );
        if let Some(cpu) = self.cpu_us_per_op {
            let _ = write!(s, "  cpu {cpu:.1} µs/op");
        }
        if let Some(e) = &self.first_error {
            let _ = write!(s, "  first error: {e}");
        }
        s
    }
}

pub struct Report {
    people: usize,
    quick: bool,
    runs: Vec<RunResult>,
    metrics: Vec<(String, String, f64)>,
    notes: Vec<(String, String)>,
    machine: String,
}

impl Report {
    pub fn new(people: usize, quick: bool) -> Self {
        Report {
            people,
            quick,
            runs: Vec::new(),
            metrics: Vec::new(),
            notes: Vec::new(),
            machine: machine_line(),
        }
    }

    pub fn push(&mut self, r: RunResult) {
        self.runs.push(r);
    }

    pub fn metric(&mut self, server: &str, key: &str, value: f64) {
        self.metrics
            .push((server.to_string(), key.to_string(), value));
    }

    pub fn note(&mut self, key: &str, value: String) {
        self.notes.push((key.to_string(), value));
    }

    fn find(&self, scenario: &str, server: &str, conns: usize) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.scenario == scenario && r.server == server && r.conns == conns)
    }

    fn metric_value(&self, server: &str, key: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(s, k, _)| s == server && k == key)
            .map(|(_, _, v)| *v)
    }

    pub fn print(&self, argon_rate: f64) {
        println!();
        println!("## Results ({} people; {})", self.people, self.machine);
        println!();
        println!(
            "| scenario | conns | Tessera ops/s | slapd ops/s | ratio | ratio by round | Tessera p50 / p99 ms | slapd p50 / p99 ms | server CPU µs/op T / S | errors T/S |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut seen: Vec<(String, usize)> = Vec::new();
        for r in &self.runs {
            let key = (pair_name(&r.scenario), r.conns);
            if r.scenario.starts_with("role-cost") || seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let (t, s) = if key.0 == "bind-token / bind-ssha" {
                (
                    self.find("bind-token", "tessera", r.conns),
                    self.find("bind-ssha", "slapd", r.conns),
                )
            } else {
                (
                    self.find(&r.scenario, "tessera", r.conns),
                    self.find(&r.scenario, "slapd", r.conns),
                )
            };
            let ops =
                |x: Option<&RunResult>| x.map_or("-".into(), |x| format!("{:.1}", x.ops_per_s));
            let lat = |x: Option<&RunResult>| {
                x.map_or("-".into(), |x| format!("{:.2} / {:.2}", x.p50_ms, x.p99_ms))
            };
            let errs = |x: Option<&RunResult>| x.map_or("-".into(), |x| x.errors.to_string());
            let cpu = |x: Option<&RunResult>| {
                x.and_then(|x| x.cpu_us_per_op)
                    .map_or("-".into(), |c| format!("{c:.1}"))
            };
            let ratio = match (t, s) {
                (Some(t), Some(s)) if s.ops_per_s > 0.0 => {
                    format!("{:.2}×", t.ops_per_s / s.ops_per_s)
                }
                _ => "-".into(),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {}/{} |",
                key.0,
                r.conns,
                ops(t),
                ops(s),
                ratio,
                round_ratios(t, s),
                lat(t),
                lat(s),
                cpu(t),
                cpu(s),
                errs(t),
                errs(s)
            );
        }
        println!();
        self.print_derived(argon_rate);
    }

    fn print_derived(&self, argon_rate: f64) {
        // The flood's effect on searches, per server and concurrency.
        for server in ["tessera", "slapd"] {
            for alone in self
                .runs
                .iter()
                .filter(|r| r.server == server && r.scenario == "mixed:search-alone")
            {
                if let Some(flooded) = self.runs.iter().find(|r| {
                    r.server == server
                        && r.conns == alone.conns
                        && r.scenario.starts_with("mixed:search+")
                }) {
                    println!(
                        "mixed, {server}, c={}: search throughput under the bind flood is {:.0}% of unloaded ({:.1} -> {:.1} ops/s)",
                        alone.conns,
                        100.0 * flooded.ops_per_s / alone.ops_per_s.max(f64::MIN_POSITIVE),
                        alone.ops_per_s,
                        flooded.ops_per_s
                    );
                }
            }
        }
        let best_bind = self
            .runs
            .iter()
            .filter(|r| r.server == "tessera" && r.scenario == "bind-password")
            .map(|r| r.ops_per_s)
            .fold(0.0, f64::max);
        if best_bind > 0.0 {
            println!(
                "bind-password, tessera: best {best_bind:.1}/s = {:.0}% of the raw argon2id rate ({argon_rate:.1}/s)",
                100.0 * best_bind / argon_rate
            );
        }
        let reader = self
            .runs
            .iter()
            .find(|r| r.scenario == "role-cost:directory-readers");
        let admin = self
            .runs
            .iter()
            .find(|r| r.scenario == "role-cost:directory-admins");
        if let (Some(reader), Some(admin)) = (reader, admin) {
            println!(
                "role cost (getpwnam, tessera, c={}): directory-readers {:.1} ops/s (p50 {:.3} ms) vs directory-admins {:.1} ops/s (p50 {:.3} ms): reader/admin {:.2}×",
                reader.conns,
                reader.ops_per_s,
                reader.p50_ms,
                admin.ops_per_s,
                admin.p50_ms,
                reader.ops_per_s / admin.ops_per_s.max(f64::MIN_POSITIVE)
            );
        }
        println!();
        println!("| figure | Tessera | slapd | ratio |");
        println!("|---|---:|---:|---:|");
        for (key, label, unit) in [
            ("import_s", "import (tessera db import / slapadd -q)", "s"),
            ("startup_s", "startup to first LDAPS bind", "s"),
            ("rss_after_start_kib", "RSS after start", "MiB"),
            ("rss_after_load_kib", "RSS after load", "MiB"),
        ] {
            let (Some(t), Some(s)) = (
                self.metric_value("tessera", key),
                self.metric_value("slapd", key),
            ) else {
                continue;
            };
            let (t, s) = if unit == "MiB" {
                (t / 1024.0, s / 1024.0)
            } else {
                (t, s)
            };
            println!(
                "| {label} | {t:.2} {unit} | {s:.2} {unit} | {:.2}× |",
                t / s.max(f64::MIN_POSITIVE)
            );
        }
    }

    pub fn write_json(&self, path: &Path) {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"people\": {},", self.people);
        let _ = writeln!(j, "  \"quick\": {},", self.quick);
        let _ = writeln!(j, "  \"machine\": {},", json_str(&self.machine));
        let _ = writeln!(j, "  \"machine_at_end\": {},", json_str(&machine_line()));
        j.push_str("  \"notes\": {");
        let notes: Vec<String> = self
            .notes
            .iter()
            .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
            .collect();
        j.push_str(&notes.join(", "));
        j.push_str("},\n  \"metrics\": [\n");
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|(s, k, v)| {
                format!(
                    "    {{\"server\": {}, \"metric\": {}, \"value\": {v}}}",
                    json_str(s),
                    json_str(k)
                )
            })
            .collect();
        j.push_str(&metrics.join(",\n"));
        j.push_str("\n  ],\n  \"runs\": [\n");
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                format!(
                    "    {{\"scenario\": {}, \"server\": {}, \"conns\": {}, \"ops\": {}, \"ops_per_s\": {:.3}, \"rounds_ops_per_s\": [{}], \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"cpu_us_per_op\": {}, \"errors\": {}, \"first_error\": {}, \"load\": {:.2}}}",
                    json_str(&r.scenario),
                    json_str(&r.server),
                    r.conns,
                    r.ops,
                    r.ops_per_s,
                    r.rounds
                        .iter()
                        .map(|x| format!("{x:.3}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.p50_ms,
                    r.p99_ms,
                    r.cpu_us_per_op
                        .map_or("null".into(), |c| format!("{c:.2}")),
                    r.errors,
                    r.first_error.as_deref().map_or("null".into(), json_str),
                    r.load
                )
            })
            .collect();
        j.push_str(&runs.join(",\n"));
        j.push_str("\n  ]\n}\n");
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(path, j).expect("write JSON");
    }
}

/// The lowest and highest Tessera/slapd ratio of one round against the round that ran next
/// to it: how far the machine's drift moves a figure.
fn round_ratios(t: Option<&RunResult>, s: Option<&RunResult>) -> String {
    let (Some(t), Some(s)) = (t, s) else {
        return "-".into();
    };
    let ratios: Vec<f64> = t
        .rounds
        .iter()
        .zip(&s.rounds)
        .filter(|(_, s)| **s > 0.0)
        .map(|(t, s)| t / s)
        .collect();
    match (
        ratios.iter().copied().reduce(f64::min),
        ratios.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if ratios.len() > 1 => format!("{lo:.2}–{hi:.2}"),
        _ => "-".into(),
    }
}

/// Both halves of the bind-service scenario share a row.
fn pair_name(scenario: &str) -> String {
    match scenario {
        "bind-token" | "bind-ssha" => "bind-token / bind-ssha".into(),
        other => other.into(),
    }
}

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Cores, CPU model and load average, for the record.
pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, {model}, load average {}", load.join(" "))
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
