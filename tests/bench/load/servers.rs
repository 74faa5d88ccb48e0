//! The two servers under test, each in its own directory on free loopback ports: Tessera
//! (the release binary of this checkout, with a config file) and a private slapd (Debian's
//! package, installed with apt-get when missing; slapd.conf, mdb, the same equality
//! indexes, the argon2 module with Tessera's default parameters). Both serve LDAPS with
//! one generated certificate. Import, start-up, RSS and stop live here.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, Mod, exop::Exop};

use crate::data::{DataSet, SUFFIX};

/// Tessera's default `[index] attributes` (src/config.rs) that slapd's schema knows;
/// `tokenId` and `entryManagedBy` are Tessera's own.
const SLAPD_INDEX: &str = "objectClass,uid,cn,mail,uidNumber,gidNumber,member,memberUid,entryUUID";
/// Tessera's default `[argon2]` (src/config.rs), for slapd's argon2 module.
const ARGON2_MODULE: &str = "argon2 m=19456 t=2 p=1";
const GENERATE_TOKEN: &str = "2.25.235497813471364094925541187040296631981.4.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Tessera,
    Slapd,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Tessera => "tessera",
            ServerKind::Slapd => "slapd",
        }
    }
}

/// One certificate for both servers, and a client config that trusts it. Session
/// resumption is off: every new connection is a full handshake, as from a new process.
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: Arc<rustls::ClientConfig>,
}

impl Tls {
    pub fn generate(dir: &Path) -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        // Tessera refuses keys other users can read; both servers run as this user.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("key mode");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(certified.cert.der().clone())
            .expect("trust anchor");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.resumption = rustls::client::Resumption::disabled();
        Tls {
            cert,
            key,
            client: Arc::new(client),
        }
    }
}

pub struct Server {
    pub kind: ServerKind,
    pub dir: PathBuf,
    pub ldaps_port: u16,
    /// Tessera's HTTPS API listener, when it is on.
    pub https_port: Option<u16>,
    config: PathBuf,
    ldif: PathBuf,
    tls_client: Arc<rustls::ClientConfig>,
    child: Option<Child>,
}

/// Who binds to Tessera in the scenarios: the token accounts `provision` made.
pub struct Principals {
    pub reader: crate::scenario::Principal,
    pub admin: crate::scenario::Principal,
    /// A read-write http-api token of the administrator's account, for the API's figures.
    pub api_token: String,
}

impl Server {
    /// `limits`: lines for Tessera's `[limits]` section (none for slapd); `https`: Tessera's
    /// HTTPS API listener on.
    pub fn prepare(
        kind: ServerKind,
        work: &Path,
        data: &DataSet,
        tls: &Tls,
        limits: &str,
        https: bool,
    ) -> Self {
        Server::prepare_in(kind, &work.join(kind.name()), data, tls, limits, https, "")
    }

    /// A Tessera server in `dir`, with `extra` (TOML tables, e.g. `[cluster]`) appended
    /// to its configuration.
    pub fn prepare_tessera(dir: &Path, data: &DataSet, tls: &Tls, extra: &str) -> Self {
        Server::prepare_in(ServerKind::Tessera, dir, data, tls, "", false, extra)
    }

    fn prepare_in(
        kind: ServerKind,
        dir: &Path,
        data: &DataSet,
        tls: &Tls,
        limits: &str,
        https: bool,
        extra: &str,
    ) -> Self {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).expect("server dir");
        let ldaps_port = free_port();
        let https_port = (https && kind == ServerKind::Tessera).then(free_port);
        let (config, ldif) = match kind {
            ServerKind::Tessera => {
                let ldap_port = free_port();
                let config = dir.join("tessera.toml");
                let text = format!(
                    "data_dir = \"{data}\"\nsuffix = \"{SUFFIX}\"\n\n[listen]\n\
                     ldaps = \"127.0.0.1:{ldaps_port}\"\nldap = \"127.0.0.1:{ldap_port}\"\n\
                     ldapi = \"ldapi.sock\"\nhttps = \"{https}\"\n\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\n\
                     [limits]\n{limits}\n\n[log]\nlevel = \"warn\"\n{extra}\n",
                    data = dir.join("data").display(),
                    https = https_port.map_or(String::new(), |p| format!("127.0.0.1:{p}")),
                    cert = tls.cert.display(),
                    key = tls.key.display(),
                );
                std::fs::write(&config, text).expect("tessera config");
                (config, data.tessera_ldif.clone())
            }
            ServerKind::Slapd => {
                let db = dir.join("db");
                std::fs::create_dir_all(&db).expect("slapd db dir");
                let rfc2307bis = dir.join("rfc2307bis.schema");
                write_slapd_rfc2307bis(&rfc2307bis);
                let config = dir.join("slapd.conf");
                let text = format!(
                    "include /etc/ldap/schema/core.schema\n\
                     include /etc/ldap/schema/cosine.schema\n\
                     include /etc/ldap/schema/inetorgperson.schema\n\
                     include {rfc2307bis}\n\
                     pidfile {dir}/slapd.pid\nargsfile {dir}/slapd.args\n\
                     modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload {ARGON2_MODULE}\n\
                     TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n\
                     sizelimit unlimited\nloglevel 0\n\n\
                     database mdb\nmaxsize 4294967296\nsuffix \"{SUFFIX}\"\n\
                     rootdn \"cn=admin,{SUFFIX}\"\ndirectory {db}\n\
                     index {SLAPD_INDEX} eq\n\
                     access to attrs=userPassword by anonymous auth by self read by * none\n\
                     access to * by users read by * none\n",
                    rfc2307bis = rfc2307bis.display(),
                    dir = dir.display(),
                    cert = tls.cert.display(),
                    key = tls.key.display(),
                    db = db.display(),
                );
                std::fs::write(&config, text).expect("slapd config");
                (config, data.slapd_ldif.clone())
            }
        };
        Server {
            kind,
            dir,
            ldaps_port,
            https_port,
            config,
            ldif,
            tls_client: tls.client.clone(),
            child: None,
        }
    }

    /// Bulk-load the LDIF: `tessera db import`, or `slapadd -q` (its documented bulk mode).
    pub fn import(&mut self) -> Duration {
        let mut cmd = match self.kind {
            ServerKind::Tessera => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
                c.args(["db", "import", "--quiet", "--config"])
                    .arg(&self.config)
                    .arg(&self.ldif);
                c
            }
            ServerKind::Slapd => {
                let mut c = Command::new("slapadd");
                c.arg("-q")
                    .arg("-f")
                    .arg(&self.config)
                    .arg("-l")
                    .arg(&self.ldif);
                c
            }
        };
        let start = Instant::now();
        let out = cmd.output().expect("run import");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{} import failed: {}{}",
            self.kind.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// Start the server; the time until an LDAPS anonymous bind succeeds.
    pub async fn start(&mut self) -> Duration {
        let log = std::fs::File::create(self.dir.join("server.log")).expect("log file");
        let mut cmd = match self.kind {
            ServerKind::Tessera => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
                c.arg("serve").arg("--config").arg(&self.config);
                c
            }
            ServerKind::Slapd => {
                let mut c = Command::new("slapd");
                c.arg("-f")
                    .arg(&self.config)
                    .arg("-h")
                    .arg(format!("ldaps://127.0.0.1:{}/", self.ldaps_port))
                    .args(["-d", "0"]);
                c
            }
        };
        let start = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start server");
        self.child = Some(child);
        loop {
            if self.ready().await {
                return start.elapsed();
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("{} exited ({status}) on start:\n{log}", self.kind.name());
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} did not come up",
                self.kind.name()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn ready(&self) -> bool {
        let settings = LdapConnSettings::new()
            .set_config(self.tls_client.clone())
            .set_conn_timeout(Duration::from_secs(2));
        let Ok((conn, mut ldap)) = LdapConnAsync::with_settings(settings, &self.ldaps_url()).await
        else {
            return false;
        };
        ldap3::drive!(conn);
        // 52: a cluster node that has not joined its cluster yet is up all the same.
        let ok = matches!(ldap.simple_bind("", "").await.map(|r| r.rc), Ok(0 | 52));
        let _ = ldap.unbind().await;
        ok
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        self.tls_client.clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// VmRSS from /proc, in KiB (0 when not running).
    pub fn rss_kib(&self) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Tessera only: make svc-reader a directory reader and svc-admin a directory
    /// administrator (as the local administrator, over LDAPI), and mint a token for each
    /// with the generate extended operation.
    pub async fn provision(&self) -> Principals {
        assert_eq!(self.kind, ServerKind::Tessera);
        let sock = self.dir.join("data").join("ldapi.sock");
        let url = format!("ldapi://{}", sock.display().to_string().replace('/', "%2F"));
        let (conn, mut ldap) = LdapConnAsync::new(&url).await.expect("ldapi connect");
        ldap3::drive!(conn);
        ldap.sasl_external_bind()
            .await
            .and_then(|r| r.success())
            .expect("SASL EXTERNAL as the local administrator");
        let mut principals = Vec::new();
        for (account, role) in [
            ("svc-reader", "directory-readers"),
            ("svc-admin", "directory-admins"),
        ] {
            let dn = format!("uid={account},ou=services,{SUFFIX}");
            ldap.modify(
                &format!("cn={role},ou=roles,{SUFFIX}"),
                vec![Mod::Add("member", HashSet::from([dn.as_str()]))],
            )
            .await
            .and_then(|r| r.success())
            .expect("grant role");
            let request = ber_sequence(&[(0x80, dn.as_bytes()), (0x81, b"load benchmark")]);
            let (exop, _) = ldap
                .extended(Exop {
                    name: Some(GENERATE_TOKEN.into()),
                    val: Some(request),
                })
                .await
                .and_then(|r| r.success())
                .expect("generate token");
            let value = exop.val.expect("a response value");
            let token = ber_field(&value, 0x81).expect("token in the response");
            principals.push(crate::scenario::Principal {
                dn: "dn=token".into(),
                password: String::from_utf8(token).expect("token text"),
                role,
            });
        }
        let admin_dn = format!("uid=svc-admin,ou=services,{SUFFIX}");
        let request = ber_sequence(&[
            (0x80, admin_dn.as_bytes()),
            (0x81, b"load benchmark api"),
            (0x82, b"read-write"),
            (0x84, b"http-api"),
        ]);
        let (exop, _) = ldap
            .extended(Exop {
                name: Some(GENERATE_TOKEN.into()),
                val: Some(request),
            })
            .await
            .and_then(|r| r.success())
            .expect("generate an API token");
        let value = exop.val.expect("a response value");
        let api_token = String::from_utf8(ber_field(&value, 0x81).expect("token")).expect("text");
        let _ = ldap.unbind().await;
        let admin = principals.pop().expect("admin");
        let reader = principals.pop().expect("reader");
        Principals {
            reader,
            admin,
            api_token,
        }
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    /// SIGKILL the server, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: both servers shut down cleanly on it.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's slapd, installed when missing (the package's own service is not started here).
pub fn ensure_slapd() {
    if Path::new("/usr/sbin/slapd").exists() {
        return;
    }
    eprintln!("slapd missing: apt-get install slapd");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "slapd"]),
        "could not install slapd"
    );
}

/// Tessera's rfc2307bis.schema less uidNumber and gidNumber, which slapd defines itself,
/// and netgroups, whose triple syntax slapd does not know (the benchmark has none).
fn write_slapd_rfc2307bis(path: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/rfc2307bis.schema");
    let text = std::fs::read_to_string(source).expect("read rfc2307bis.schema");
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            skipping = [
                "attributetype ( 1.3.6.1.1.1.1.0 ",
                "attributetype ( 1.3.6.1.1.1.1.1 ",
                "attributetype ( 1.3.6.1.1.1.1.14 ",
                "objectclass ( 1.3.6.1.1.1.2.8 ",
            ]
            .iter()
            .any(|p| line.starts_with(p));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(path, out).expect("write slapd schema");
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A SEQUENCE of context-tagged OCTET STRINGs (short values only: < 128 bytes each).
pub fn ber_sequence(fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut inner = Vec::new();
    for (tag, value) in fields {
        assert!(value.len() < 128);
        inner.push(*tag);
        inner.push(value.len() as u8);
        inner.extend_from_slice(value);
    }
    assert!(inner.len() < 128);
    let mut out = vec![0x30, inner.len() as u8];
    out.extend(inner);
    out
}

/// The value of the field tagged `tag` in a SEQUENCE of short context-tagged strings.
pub fn ber_field(seq: &[u8], tag: u8) -> Option<Vec<u8>> {
    let (&first, rest) = seq.split_first()?;
    if first != 0x30 {
        return None;
    }
    let (len, mut body) = ber_len(rest)?;
    body = body.get(..len)?;
    while !body.is_empty() {
        let t = body[0];
        let (len, value) = ber_len(&body[1..])?;
        if t == tag {
            return value.get(..len).map(<[u8]>::to_vec);
        }
        body = value.get(len..)?;
    }
    None
}

fn ber_len(b: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = b.split_first()?;
    if first < 0x80 {
        return Some((first as usize, rest));
    }
    let n = (first & 0x7f) as usize;
    let bytes = rest.get(..n)?;
    let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Some((len, &rest[n..]))
}

/// utime + stime of `pid` in seconds. The fields after the command name (which may hold
/// spaces and parentheses) are counted from its closing parenthesis.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); field 3 is the first after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks() as f64)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}
