//! Token verification next to argon2id password verification, on this machine.
//! `cargo bench --bench tokens`: prints the cost of one check of each kind.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use tessera::identity::password::{self, Argon2Params, StoredPassword};
use tessera::identity::token;

fn main() {
    let minted = token::generate().expect("random source");
    let token_cost = per_op(Duration::from_secs(2), || {
        let presented = token::parse(black_box(&minted.token)).expect("parses");
        assert!(presented.verify(black_box(minted.hash.as_bytes())));
    });

    let params = Argon2Params::default();
    let stored = password::hash(b"correct horse battery staple", &params).expect("hash");
    let stored = StoredPassword::parse(stored.as_bytes()).expect("parse");
    let argon_cost = per_op(Duration::from_secs(3), || {
        assert!(stored.verify(black_box(b"correct horse battery staple")));
    });

    println!("{:<44} {:>12}", "check", "per check");
    println!(
        "{:<44} {:>12}",
        "API token (parse + SHA-256 + constant-time)",
        fmt(token_cost)
    );
    println!(
        "{:<44} {:>12}",
        format!(
            "argon2id password (m={} KiB, t={}, p={})",
            params.memory_kib, params.iterations, params.parallelism
        ),
        fmt(argon_cost)
    );
    println!(
        "ratio: a token check costs 1/{:.0} of a password check",
        argon_cost.as_secs_f64() / token_cost.as_secs_f64()
    );
}

/// Mean time of `f` over repeated runs lasting about `budget`.
fn per_op(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed() / n.max(1)
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.2} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
