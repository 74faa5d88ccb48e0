//! The HTTP API's own cost, measured with ApacheBench (`ab`, Debian's apache2-utils) over
//! HTTPS with keep-alive: listing a service account's tokens, and minting one. ab prints
//! requests/s and the latency percentiles; nothing here times anything itself.

use std::path::Path;
use std::process::Command;

/// What one ab run reported.
#[derive(Debug, Default)]
pub struct Figures {
    pub completed: u64,
    pub failed: u64,
    pub per_second: f64,
    /// Milliseconds: 50th, 90th, 99th percentile and the slowest.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Figures {
    pub fn line(&self, name: &str, conns: usize) -> String {
        format!(
            "api {name:<12} {conns:>3} conns: {:>9.1} req/s  p50 {:>5.1} ms  p90 {:>5.1} ms  p99 {:>5.1} ms  max {:>6.1} ms  ({} requests, {} failed)",
            self.per_second, self.p50, self.p90, self.p99, self.max, self.completed, self.failed
        )
    }

    pub fn pairs(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("per_s", self.per_second),
            ("p50_ms", self.p50),
            ("p90_ms", self.p90),
            ("p99_ms", self.p99),
            ("max_ms", self.max),
        ]
    }
}

/// Token list and token create, `requests` each over `conns` connections.
pub fn run(
    port: u16,
    token: &str,
    requests: usize,
    conns: usize,
    work: &Path,
) -> Vec<(String, Figures)> {
    let base = format!("https://127.0.0.1:{port}/api/v1/service-accounts/svc-reader/tokens");
    let auth = format!("Authorization: Bearer {token}");
    let body = work.join("token.json");
    std::fs::write(&body, br#"{"label": "ab", "expires": "1d"}"#).expect("request body");
    let mut out = Vec::new();
    for (name, post) in [("token-list", false), ("token-create", true)] {
        let mut ab = Command::new("ab");
        ab.args([
            "-k",
            "-q",
            "-n",
            &requests.to_string(),
            "-c",
            &conns.to_string(),
            "-H",
            &auth,
        ]);
        if post {
            ab.arg("-p").arg(&body).args(["-T", "application/json"]);
        }
        ab.arg(&base);
        let output = ab
            .output()
            .expect("ab (apt-get install apache2-utils) to run");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "ab failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out.push((name.to_string(), parse(&text)));
    }
    out
}

fn parse(text: &str) -> Figures {
    let number = |line: &str| {
        line.split_whitespace()
            .find_map(|w| w.trim_matches([',', '(', ')']).parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut f = Figures::default();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Complete requests:") {
            f.completed = number(rest) as u64;
        } else if t.starts_with("(Connect:") {
            // ab counts a body whose length differs from the first one's as a failure
            // ("Length"): minted tokens' expiry times differ in length, which is no error.
            for field in ["Connect:", "Receive:", "Exceptions:"] {
                if let Some((_, after)) = t.split_once(field) {
                    f.failed += number(after.trim_end_matches(')')) as u64;
                }
            }
        } else if let Some(rest) = t.strip_prefix("Non-2xx responses:") {
            f.failed += number(rest) as u64;
        } else if let Some(rest) = t.strip_prefix("Requests per second:") {
            f.per_second = number(rest);
        } else if let Some(rest) = t.strip_prefix("50%") {
            f.p50 = number(rest);
        } else if let Some(rest) = t.strip_prefix("90%") {
            f.p90 = number(rest);
        } else if let Some(rest) = t.strip_prefix("99%") {
            f.p99 = number(rest);
        } else if let Some(rest) = t.strip_prefix("100%") {
            f.max = number(rest);
        }
    }
    f
}
