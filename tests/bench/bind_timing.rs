//! B5, the timing oracle: how long a failed bind takes, by why it failed, against the real
//! server in this process (LDAPI socket, so no TLS noise; production argon2 parameters;
//! throttling off, since it holds repeated failures on purpose). `cargo bench --bench
//! bind_timing [-- SAMPLES]`: median of SAMPLES binds (default 200) for each case, taken
//! group by group in a fresh random order each round, so drift and warm caches hit all
//! cases alike, and each median's difference from its group's first. Every case must answer 49; a difference under 10 % is the target.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ldap3::exop::Exop;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use sha2::{Digest, Sha256};
use tessera::config::Config;
use tessera::ldap::ber;

const SUFFIX: &str = "dc=example,dc=com";
const GENERATE: &str = "2.25.235497813471364094925541187040296631981.4.1";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

struct Case {
    group: &'static str,
    name: &'static str,
    dn: String,
    password: String,
    samples: Vec<Duration>,
}

#[tokio::main]
async fn main() {
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "data_dir = \"{}\"\n[listen]\nhttps = \"\"\nldaps = \"127.0.0.1:0\"\nldap = \"\"\n\
         [throttle]\nfree_failures = 1000000000\nsource_free_failures = 1000000000\n",
        dir.path().join("data").display()
    );
    let config = Config::parse(&toml).expect("config");
    let argon2 = config.argon2;
    let running = tessera::server::start(config).await.expect("server");
    let url = format!(
        "ldapi://{}",
        running
            .ldapi
            .as_ref()
            .expect("ldapi")
            .display()
            .to_string()
            .replace('/', "%2F")
    );
    let mut admin = connect(&url).await;
    admin.sasl_external_bind().await.unwrap().success().unwrap();
    let person = |uid: &str| format!("uid={uid},ou=people,{SUFFIX}");
    let service = |uid: &str| format!("uid={uid},ou=services,{SUFFIX}");
    add(
        &mut admin,
        &person("known"),
        &[
            ("objectClass", "inetOrgPerson"),
            ("cn", "k"),
            ("sn", "k"),
            ("userPassword", "right password"),
        ],
    )
    .await;
    add(
        &mut admin,
        &person("nopassword"),
        &[("objectClass", "inetOrgPerson"), ("cn", "n"), ("sn", "n")],
    )
    .await;
    add(
        &mut admin,
        &service("svc"),
        &[("objectClass", "tesseraServiceAccount"), ("cn", "svc")],
    )
    .await;
    add(
        &mut admin,
        &service("expired"),
        &[("objectClass", "tesseraServiceAccount"), ("cn", "e")],
    )
    .await;
    let token = generate(&mut admin, &service("svc")).await;
    let expired_token = generate(&mut admin, &service("expired")).await;
    let expire = ldap3::Mod::Replace("accountExpires", HashSet::from(["20000101000000Z"]));
    admin
        .modify(&service("expired"), vec![expire])
        .await
        .unwrap()
        .success()
        .unwrap();

    let (body, _check) = token.split_at(token.len() - 6);
    let id = &token[4..16];
    let wrong_secret = with_checksum(&format!("tsr_{id}_{}", "x".repeat(33)));
    let unknown_id = with_checksum(&format!("tsr_{}_{}", "Q".repeat(12), "x".repeat(33)));
    let last = token.chars().last().unwrap();
    let bad_check = format!(
        "{body}{}{}",
        &token[token.len() - 6..token.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    let case = |group, name, dn: &str, password: &str| Case {
        group,
        name,
        dn: dn.to_string(),
        password: password.to_string(),
        samples: Vec::with_capacity(samples),
    };
    let mut cases = vec![
        case(
            "password",
            "unknown DN",
            &person("nobody"),
            "right password",
        ),
        case(
            "password",
            "known DN, wrong password",
            &person("known"),
            "wrong password",
        ),
        case(
            "password",
            "account without a password (disabled)",
            &person("nopassword"),
            "right password",
        ),
        case("token", "unknown token id", "dn=token", &unknown_id),
        case("token", "known id, wrong secret", "dn=token", &wrong_secret),
        case("token", "bad checksum", "dn=token", &bad_check),
        case(
            "token",
            "expired account, its own valid token",
            "dn=token",
            &expired_token,
        ),
    ];

    let mut client = connect(&url).await;
    // Warm-up: the caches, the allocator, the blocking pool.
    for c in &cases {
        for _ in 0..5 {
            bind(&mut client, &c.dn, &c.password).await;
        }
    }
    // Group by group, each round in a new random order: no case always follows an argon2
    // run, or always comes first after one.
    let mut seed = u64::from(std::process::id()) | 1;
    for group in ["password", "token"] {
        let mut order: Vec<usize> = (0..cases.len())
            .filter(|&i| cases[i].group == group)
            .collect();
        for _ in 0..samples {
            shuffle(&mut order, &mut seed);
            for &i in &order {
                let c = &mut cases[i];
                let took = bind(&mut client, &c.dn, &c.password).await;
                c.samples.push(took);
            }
        }
    }

    println!(
        "failed simple binds over LDAPI, median of {samples} (argon2id m={} KiB, t={}, p={})",
        argon2.memory_kib, argon2.iterations, argon2.parallelism
    );
    println!(
        "{:<8} {:<40} {:>12} {:>10}",
        "group", "case", "median", "vs first"
    );
    let mut worst: f64 = 0.0;
    let mut reference = None;
    let mut group = "";
    for c in &mut cases {
        let m = median(&mut c.samples);
        if c.group != group {
            group = c.group;
            reference = Some(m);
        }
        let base = reference.unwrap_or(m).as_secs_f64();
        let diff = (m.as_secs_f64() - base) / base * 100.0;
        worst = worst.max(diff.abs());
        println!(
            "{:<8} {:<40} {:>12} {:>+9.1}%",
            c.group,
            c.name,
            fmt(m),
            diff
        );
    }
    println!("largest difference within a group: {worst:.1}% (target < 10%)");
    running.shutdown().await;
}

async fn connect(url: &str) -> Ldap {
    let (conn, ldap) = LdapConnAsync::with_settings(LdapConnSettings::new(), url)
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap
}

/// One bind, timed; it must fail with 49.
async fn bind(ldap: &mut Ldap, dn: &str, password: &str) -> Duration {
    let start = Instant::now();
    let res = ldap.simple_bind(dn, password).await.expect("bind");
    let took = start.elapsed();
    assert_eq!(res.rc, 49, "{dn}: {}", res.text);
    took
}

async fn add(ldap: &mut Ldap, dn: &str, attrs: &[(&str, &str)]) {
    let attrs = attrs
        .iter()
        .map(|(a, v)| (*a, HashSet::from([*v])))
        .collect();
    ldap.add(dn, attrs).await.unwrap().success().unwrap();
}

/// A token for `account`, minted with the generate extended operation.
async fn generate(ldap: &mut Ldap, account: &str) -> String {
    let mut body = ber::write(0x80, account.as_bytes());
    body.extend(ber::write(0x81, b"timing"));
    let req = Exop {
        name: Some(GENERATE.into()),
        val: Some(ber::write(0x30, &body)),
    };
    let ldap3::result::ExopResult(exop, res) = ldap.extended(req).await.unwrap();
    assert_eq!(res.rc, 0, "{}", res.text);
    let value = exop.val.expect("a response value");
    let items = ber::sequence(&value).expect("a SEQUENCE");
    let token = items.iter().find(|i| i.tag == 0x81).expect("the token");
    String::from_utf8(token.content.to_vec()).expect("ASCII")
}

/// `body` with the checksum a real token carries (the format of `identity::token`), so the
/// case gets past the parser to the lookup.
fn with_checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let mut out = body.to_string();
    for _ in 0..6 {
        out.push(char::from(BASE62[(n % 62) as usize]));
        n /= 62;
    }
    out
}

/// Fisher-Yates with xorshift64: enough to vary the order, no dependency.
fn shuffle(items: &mut [usize], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = (*seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
