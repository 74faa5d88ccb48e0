//! Offline data commands on the database file: import LDIF, export LDIF, verify, backup.
//!
//! They open the redb file directly (`store::open_configured`), so they refuse to run while
//! a server holds it (the store reports that plainly), except `backup`, which the CLI asks
//! a running server to make. Import puts every entry through the rules LDAP Add applies
//! (`dit::write`'s steps), in bulk; an export re-imports to the same directory.

pub mod import;
pub mod ldif;

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use crate::store::{
    DirectoryRead, OpenError, Store, StoreError, VerifyReport, open_configured as open_store,
};

pub use import::{Options as ImportOptions, Report as ImportReport, import};

#[derive(Debug, Error)]
pub enum DbError {
    #[error("{0}")]
    Open(#[from] OpenError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Ldif(#[from] ldif::LdifError),
    #[error("entry {dn} (ending at line {line}): {message}")]
    Entry {
        dn: String,
        line: usize,
        message: String,
    },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("verification found {0} problem(s)")]
    Verify(usize),
    #[error("{path} is damaged ({detail}); do not restore from it")]
    Unsound { path: String, detail: String },
    #[error("{path} is not a Tessera database: {why}")]
    Foreign { path: String, why: String },
}

pub fn export(config: &Config, out: &mut impl Write) -> Result<u64, DbError> {
    let (_, store) = open_store(config)?;
    ldif::write_version(out)?;
    // Parents before children, whatever order the ids are in after renames.
    let mut order: Vec<(usize, u64)> = Vec::new();
    store.read_blocking(|r| {
        r.for_each_entry(|id, e| {
            order.push((e.dn.depth(), id));
            Ok(())
        })
    })?;
    order.sort_unstable();
    let count = order.len() as u64;
    store.read_blocking(|r| {
        for (_, id) in &order {
            let Some(entry) = r.entry(*id)? else {
                continue;
            };
            let attrs = entry.attrs.iter().flat_map(|a| {
                a.values
                    .iter()
                    .map(move |v| (a.name.as_str(), v.as_slice()))
            });
            ldif::write_entry_iter(out, &entry.dn.to_string(), attrs).map_err(|source| {
                StoreError::File {
                    path: "output".into(),
                    source,
                }
            })?;
        }
        Ok::<_, StoreError>(())
    })?;
    out.flush()?;
    Ok(count)
}

/// A copy of the database file while no server holds it (see `Store::backup_to`).
pub fn backup(config: &Config, dest: &Path) -> Result<(std::path::PathBuf, u64), DbError> {
    let (_, store) = open_store(config)?;
    Ok(store.backup_to(dest)?)
}

/// `db verify`: the configured database file, opened as the server opens it.
pub fn verify(config: &Config) -> Result<(), DbError> {
    let path = config.db_path();
    let clean = Store::check_file(&path)?;
    let (_, store) = open_store(config)?;
    let integrity = if clean { "ok" } else { "repaired" };
    print_verified(&path, integrity, &store.verify()?)
}

/// `db verify --file`: a database file as it is (a backup, say), with no configuration:
/// redb's checksum over every page, then that the tables agree, against the index the file
/// records. redb's check needs to write, so it runs on a private copy: the file itself is
/// only read, and may sit on a read-only medium. A damaged file is an error that says not
/// to restore from it.
pub fn verify_file(path: &Path) -> Result<(), DbError> {
    let named = |source: std::io::Error| DbError::Read {
        path: path.display().to_string(),
        source,
    };
    let size = std::fs::metadata(path).map_err(named)?.len();
    if size == 0 {
        return Err(DbError::Foreign {
            path: path.display().to_string(),
            why: "it is empty".into(),
        });
    }
    let copy = PrivateCopy::of(path)?;
    let as_original = |e: StoreError| match e {
        StoreError::Damaged { detail, .. } => DbError::Unsound {
            path: path.display().to_string(),
            detail,
        },
        StoreError::Foreign(why) => DbError::Foreign {
            path: path.display().to_string(),
            why,
        },
        other => DbError::Store(other),
    };
    let clean = Store::check_file(&copy.path).map_err(as_original)?;
    let store = Store::open_as_is(&copy.path).map_err(as_original)?;
    let report = store.verify().map_err(as_original)?;
    let integrity = if clean {
        "ok"
    } else {
        "needed a repair (made on the copy; a server starting from the file makes it too)"
    };
    print_verified(path, integrity, &report)
}

/// An owner-only copy of a database file in the temporary directory (it holds password and
/// token hashes), removed when dropped.
struct PrivateCopy {
    path: PathBuf,
}

impl PrivateCopy {
    fn of(original: &Path) -> Result<PrivateCopy, DbError> {
        use std::os::unix::fs::OpenOptionsExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("tessera-verify-{}-{nanos}.redb", std::process::id());
        let path = std::env::temp_dir().join(name);
        let failed = |source| DbError::Read {
            path: format!(
                "{} (copying it to {} to check it there)",
                original.display(),
                path.display()
            ),
            source,
        };
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        let copy = PrivateCopy { path: path.clone() };
        let mut from = std::fs::File::open(original).map_err(failed)?;
        std::io::copy(&mut from, &mut to).map_err(failed)?;
        Ok(copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn print_verified(path: &Path, integrity: &str, report: &VerifyReport) -> Result<(), DbError> {
    println!(
        "{}: {} entries, file integrity {integrity}",
        path.display(),
        report.entries,
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
    if report.problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        Err(DbError::Verify(report.problems.len()))
    }
}
