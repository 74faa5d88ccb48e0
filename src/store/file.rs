//! The database file: opening it (naming it in every error, telling damage from other
//! failures, surviving redb's panics on some damaged files), its integrity check, and
//! copying one store's tables into another file.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use redb::{Database, ReadOnlyTable, ReadableTable, Table};

use super::StoreError;

/// redb's page cache for the whole-file integrity check.
pub(super) const CHECK_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Open the file with `how`, naming it in every error.
pub(super) fn open_database(
    path: &Path,
    how: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, StoreError> {
    match how(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(e) => Err(opening_failed(path, e)),
    }
}

/// A failure to open or check the file: damage, or another storage error, naming the file.
pub(super) fn opening_failed(path: &Path, e: redb::DatabaseError) -> StoreError {
    if is_damage(&e) {
        StoreError::Damaged {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    } else {
        StoreError::File {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        }
    }
}

/// redb's check of every page against its checksum: Ok(true) clean, Ok(false) repaired
/// (a crash had left it needing repair; the repair is logged).
pub(super) fn check_integrity(path: &Path, db: &mut Database) -> Result<bool, StoreError> {
    match db.check_integrity() {
        Ok(clean) => {
            if !clean {
                tracing::warn!(path = %path.display(), "database repaired after an unclean stop");
            }
            Ok(clean)
        }
        Err(e) => Err(opening_failed(path, e)),
    }
}

pub(super) fn is_damage(e: &redb::DatabaseError) -> bool {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
        // What redb reports for a file that is not a redb database (a damaged header).
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        _ => false,
    }
}

/// Run `f` on the file at `path`, turning a panic inside redb (it has them on some
/// damaged files) into a `Damaged` error.
pub(super) fn guarded<R>(
    path: &Path,
    f: impl FnOnce() -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Damaged {
                path: path.display().to_string(),
                detail: format!("the storage engine failed reading it: {what}"),
            })
        }
    }
}

/// Copy every row of `from` into `to`; the number of rows.
pub(super) fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadOnlyTable<K, V>,
    to: &mut Table<'_, K, V>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Make the database file's place ready: its directory created owner-only when missing, and
/// refused when other users may read it; the file created empty and owner-only when missing
/// (redb initialises an empty file), refused when others may read it, and refused when it
/// exists but is empty, which no store ever is: only a missing file means a new directory.
/// The file holds password and token hashes.
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
    let file_err = |path: &Path, source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| file_err(dir, e))?;
        let mode = std::fs::metadata(dir)
            .map_err(|e| file_err(dir, e))?
            .permissions()
            .mode();
        refuse_exposed(dir, mode, "0700")?;
    }
    match std::fs::metadata(path) {
        Ok(meta) => {
            refuse_exposed(path, meta.permissions().mode(), "0600")?;
            if meta.len() == 0 {
                return Err(StoreError::Refused(format!(
                    "{} is empty, which no Tessera database is; only a missing file starts a \
                     new directory. Restore a backup in its place, or remove it to start afresh",
                    path.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop)
            .map_err(|e| file_err(path, e)),
        Err(e) => Err(file_err(path, e)),
    }
}

/// Refuse `path` when users other than its owner (and group) may reach its contents.
fn refuse_exposed(path: &Path, mode: u32, fix: &str) -> Result<(), StoreError> {
    if mode & 0o007 == 0 {
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "{}: other users may read it (mode {:o}), and it holds password and token hashes; \
         run chmod {fix} {}",
        path.display(),
        mode & 0o777,
        path.display()
    )))
}
