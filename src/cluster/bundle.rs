//! The join bundle: the cluster's CA certificate and key in one owner-only JSON file,
//! written on a member (`tessera cluster bundle`) and taken into a new node's data
//! directory (`tessera cluster join`) before its first start. Every member keeps the CA
//! key, so any of them can issue its own node certificate and make a bundle for the next
//! node, and the cluster outlives the node it was formed on. Files only; no server.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::server::ca::Generated;

#[derive(Serialize, Deserialize)]
struct Bundle {
    ca_cert: String,
    ca_key: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bundle { ca_key: <redacted> }")
    }
}

/// Write the bundle of `config`'s data directory to the new file `file` (mode 0600).
pub fn write(config: &Config, file: &Path) -> Result<(), String> {
    let generated = Generated::new(&config.data_dir.join("tls"));
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            format!(
                "{}: {e} (run this on a cluster member, with its --config)",
                p.display()
            )
        })
    };
    let bundle = Bundle {
        ca_cert: read(&generated.ca())?,
        ca_key: read(&generated.ca_key())?,
    };
    let text = serde_json::to_vec_pretty(&bundle).map_err(|e| e.to_string())?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    out.write_all(&text)
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Take the bundle `file` into `config`'s data directory (`tls/ca.pem`, `tls/ca.key`),
/// for a node that has not started yet or has no CA of its own. A different CA already
/// there is refused: its clients trust it.
pub fn join(config: &Config, file: &Path) -> Result<String, String> {
    if config.cluster.is_none() {
        return Err(format!(
            "{}: the configuration has no [cluster] table (node_id, listen); add it first",
            config.data_dir.display()
        ));
    }
    let text = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let bundle: Bundle = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a join bundle ({e})", file.display()))?;
    if !bundle.ca_cert.contains("BEGIN CERTIFICATE") || !bundle.ca_key.contains("PRIVATE KEY") {
        return Err(format!(
            "{}: not a join bundle (no CA certificate and key)",
            file.display()
        ));
    }
    let dir = config.data_dir.join("tls");
    let generated = Generated::new(&dir);
    if let Ok(existing) = std::fs::read_to_string(generated.ca()) {
        if existing == bundle.ca_cert {
            return Ok(format!("{} already holds the cluster's CA", dir.display()));
        }
        if config.db_path().exists() {
            return Err(format!(
                "{} holds another CA, which this node's clients may trust; move {} away first to join with the cluster's",
                generated.ca().display(),
                dir.display()
            ));
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    // A server certificate from another CA would not verify against the new ca.pem.
    for old in [generated.cert(), generated.key()] {
        let _ = std::fs::remove_file(old);
    }
    write_file(&generated.ca_key(), bundle.ca_key.as_bytes(), 0o600)?;
    write_file(&generated.ca(), bundle.ca_cert.as_bytes(), 0o644)?;
    Ok(format!(
        "{} now holds the cluster's CA; start the server, then on a member run `tessera cluster add-replica <id> <address>`",
        dir.display()
    ))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)
}
