//! Offline data commands on the database file: import LDIF, export LDIF, verify, backup.
//!
//! They open the redb file directly (`store::open_configured`), so they refuse to run while
//! a server holds it (the store reports that plainly), except `backup`, which the CLI asks
//! a running server to make. Import puts every entry through the rules LDAP Add applies
//! (`dit::write`'s steps), in bulk; an export re-imports to the same directory.

pub mod import;
pub mod ldif;

use std::io::Write;
use std::path::Path;

use thiserror::Error;

use crate::config::Config;
use crate::store::{DirectoryRead, OpenError, Store, StoreError, open_configured as open_store};

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

pub fn verify(config: &Config) -> Result<(), DbError> {
    let path = config.db_path();
    let repaired = Store::check_file(&path)?;
    let (_, store) = open_store(config)?;
    let report = store.verify()?;
    println!(
        "{}: {} entries, file integrity {}",
        path.display(),
        report.entries,
        if repaired { "ok" } else { "repaired" }
    );
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
