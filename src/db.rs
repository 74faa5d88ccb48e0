//! Offline data commands on the database file: import LDIF, export LDIF, verify.
//!
//! They open the redb file directly, so they refuse to run while a server holds it (the
//! store reports that plainly). Import applies the same schema checks as an LDAP Add and
//! keeps server attributes present in the file (entryUUID, timestamps), so an export
//! re-imports to the same directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use thiserror::Error;

use crate::config::Config;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::dit::{DitError, entry as write, names, posix, tree as bootstrap};
use crate::identity::password;
use crate::ldif::{self, ChangeKind, LdifReader, LdifRecord};
use crate::store::{DirectoryRead, Prepared, Store, StoreError, Writer};
use crate::store::{OpenError, open_configured as open_store};

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

/// Attributes a file may carry that the server would otherwise set itself.
const KEPT_SERVER_ATTRS: &[&str] = &[
    "entryUUID",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
];

/// Computed on read; dropped from imported files.
const COMPUTED_ATTRS: &[&str] = &[
    "entryDN",
    "hasSubordinates",
    "subschemaSubentry",
    "memberOf",
    "structuralObjectClass",
];

/// A batch ends at this many entries or this much of the file, whichever comes first: the
/// reader and the writer work on alternate batches, and groups with hundreds of members
/// each are many times a person's work, so a count alone left a tail where one thread waited.
/// Small batches keep the start (the writer waiting for the first) and the end (the reader
/// done, the writer on the last) short.
const BATCH: usize = 1000;
const BATCH_BYTES: u64 = 1 << 18;

pub fn import(config: &Config, file: &Path, progress: bool) -> Result<u64, DbError> {
    let (schema, store) = open_store(config)?;
    bootstrap::bootstrap(&store, &schema, &config.suffix)?;
    let handle = std::fs::File::open(file).map_err(|source| DbError::Read {
        path: file.display().to_string(),
        source,
    })?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg} ({elapsed}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let reader = LdifReader::new(BufReader::with_capacity(1 << 16, handle));
    // Reading, preparing and hashing run on their own thread, a batch ahead of the store.
    // One write transaction takes the whole file: a failed import leaves the store as it
    // was, and the data is made durable once, at the end.
    let imported = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // Added entries go back to the reading thread to be freed there: freeing memory
        // another thread allocated contends for that thread's malloc arena, and at 100k
        // entries that contention cost more than the freeing.
        let (spent_tx, spent_rx) = std::sync::mpsc::channel();
        let (schema, bar) = (&schema, &bar);
        let store = &store;
        scope.spawn(move || read_batches(config, schema, store, reader, bar, tx, spent_rx));
        store.write_blocking(|w| {
            let mut rules = ClassRulesCache::default();
            let bootstrapped = Bootstrapped::new(config);
            let mut imported = 0u64;
            // Ends when the reader is done; an error, or leaving early, drops `rx`, which
            // stops the reader.
            for batch in rx {
                let mut batch = batch?;
                imported += add_batch(config, schema, w, &mut batch, &mut rules, &bootstrapped)?;
                // The reader may have finished; then the batch is freed here.
                let _ = spent_tx.send(batch);
                bar.set_message(format!("{imported} entries"));
            }
            Ok::<_, DbError>(imported)
        })
    })?;
    bar.finish_and_clear();
    eprintln!(
        "imported {imported} entries into {}",
        config.db_path().display()
    );
    Ok(imported)
}

/// Send the file's entries, prepared and with their passwords hashed, in batches; the
/// first error ends the stream.
fn read_batches<R: BufRead>(
    config: &Config,
    schema: &Schema,
    store: &Store,
    mut reader: LdifReader<R>,
    bar: &indicatif::ProgressBar,
    tx: SyncSender<Result<Vec<Pending>, DbError>>,
    spent: Receiver<Vec<Pending>>,
) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now = crate::directory::time::generalized(time::OffsetDateTime::now_utc());
    let mut read_to = 0;
    let mut rules = ClassRulesCache::default();
    let mut classes = ClassCache::default();
    loop {
        spent.try_iter().for_each(drop);
        let mut done = false;
        let batch = read_batch(
            config,
            schema,
            &mut classes,
            &mut reader,
            &mut read_to,
            &now,
            &mut done,
        )
        .and_then(|mut b| {
            hash_passwords(config, &mut b, workers, bar)?;
            // The schema check, the encoding and the index keys need nothing the writer
            // holds: worked out here, off its thread. The writer redoes them for an entry
            // it completed.
            for p in &mut b {
                // The check normalises every value: the index keys are taken from that.
                let mut keys = Vec::new();
                let mut keep = |attr: &str, values: Vec<Vec<u8>>| {
                    if let Some(code) = store.index_code(attr) {
                        keys.extend(values.into_iter().map(|v| (code, v)));
                    }
                };
                p.checked = Some(rules.check_keeping(schema, &p.entry, &mut keep));
                p.prepared = Some(store.prepare_normalized(&p.entry, keys));
            }
            Ok(b)
        });
        bar.set_position(reader.bytes_read());
        let last = match &batch {
            Ok(b) if b.is_empty() => return,
            Ok(_) => done,
            Err(_) => true,
        };
        if tx.send(batch).is_err() || last {
            return;
        }
    }
}

/// Up to `BATCH` entries or `BATCH_BYTES` of the file, prepared for adding; `read_to` is
/// where the last one ended, and `done` is set at the end of the file.
fn read_batch<R: BufRead>(
    config: &Config,
    schema: &Schema,
    classes: &mut ClassCache,
    reader: &mut LdifReader<R>,
    read_to: &mut u64,
    now: &str,
    done: &mut bool,
) -> Result<Vec<Pending>, DbError> {
    let mut batch = Vec::with_capacity(BATCH);
    let started = *read_to;
    while batch.len() < BATCH && *read_to - started < BATCH_BYTES {
        let Some(record) = reader.next() else {
            *done = true;
            break;
        };
        let line = reader.line();
        let bytes = reader.bytes_read().saturating_sub(*read_to);
        *read_to = reader.bytes_read();
        let entry = match record? {
            LdifRecord::Entry(e) => prepare(config, schema, classes, &e.dn, e.attrs, line, now)?,
            LdifRecord::Change(c) => match c.kind {
                ChangeKind::Add(attrs) => {
                    prepare(config, schema, classes, &c.dn, attrs, line, now)?
                }
                _ => {
                    return Err(DbError::Entry {
                        dn: c.dn,
                        line,
                        message: "only entries and 'changetype: add' records can be imported"
                            .into(),
                    });
                }
            },
        };
        batch.push(Pending {
            entry,
            line,
            bytes,
            checked: None,
            prepared: None,
        });
    }
    Ok(batch)
}

/// An entry read from the file, waiting for its batch to be added.
struct Pending {
    entry: Entry,
    /// Where it ends in the file, for error messages.
    line: usize,
    /// Its size in the file, for the progress bar.
    bytes: u64,
    /// The schema check's verdict on the entry as read.
    checked: Option<Result<(), DitError>>,
    /// Its encoding and index keys as read.
    prepared: Option<Prepared>,
}

/// Hash the batch's cleartext `userPassword` values, on every core: argon2 is meant to be
/// slow, so with passwords in the file it is nearly all of an import's time. Values stay
/// where they were; the progress bar moves as entries are done.
fn hash_passwords(
    config: &Config,
    batch: &mut [Pending],
    workers: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(), DbError> {
    let cleartext = |p: &Pending| {
        p.entry
            .values("userPassword")
            .iter()
            .any(|v| !password::is_hashed(v))
    };
    let (mut todo, done): (Vec<&mut Pending>, Vec<&mut Pending>) =
        batch.iter_mut().partition(|p| cleartext(p));
    bar.inc(done.iter().map(|p| p.bytes).sum());
    if todo.is_empty() {
        return Ok(());
    }
    let params = config.argon2;
    let per_worker = todo.len().div_ceil(workers.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks_mut(per_worker)
            .map(|chunk| {
                scope.spawn(move || {
                    for p in chunk.iter_mut() {
                        hash_entry(&params, p)?;
                        bar.inc(p.bytes);
                    }
                    Ok::<_, DbError>(())
                })
            })
            .collect();
        // The first failing chunk in file order reports; a panic in argon2 is a bug, so
        // it is passed on as one.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Result<Vec<()>, DbError>>()
            .map(|_| ())
    })
}

fn hash_entry(params: &password::Argon2Params, p: &mut Pending) -> Result<(), DbError> {
    let Entry { dn, attrs } = &mut p.entry;
    let Some(attr) = attrs
        .iter_mut()
        .find(|a| a.name.eq_ignore_ascii_case("userPassword"))
    else {
        return Ok(());
    };
    for value in attr.values.iter_mut() {
        if password::is_hashed(value) {
            continue;
        }
        let hashed = password::hash(value, params).map_err(|e| DbError::Entry {
            dn: dn.to_string(),
            line: p.line,
            message: e.to_string(),
        })?;
        *value = hashed.into_bytes();
    }
    Ok(())
}

fn prepare(
    config: &Config,
    schema: &Schema,
    classes: &mut ClassCache,
    dn: &str,
    attrs: Vec<(String, Vec<u8>)>,
    line: usize,
    now: &str,
) -> Result<Entry, DbError> {
    let fail = |message: String| DbError::Entry {
        dn: dn.to_string(),
        line,
        message,
    };
    let parsed = Dn::parse(dn).map_err(|e| fail(e.to_string()))?;
    if !parsed.is_within(&config.suffix) {
        return Err(fail(format!("is outside the suffix {}", config.suffix)));
    }
    let mut entry = Entry::new(parsed);
    let mut member_uids = Vec::new();
    // A file lists an attribute's values one after another: its name is looked up once.
    let mut last: Option<(String, String)> = None;
    for (description, value) in attrs {
        let name = match &last {
            Some((d, name)) if *d == description => name,
            _ => {
                let name = write::attr_name(schema, &description).map_err(|e| fail(e.message))?;
                &last.insert((description, name)).1
            }
        };
        if COMPUTED_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            continue;
        }
        // As in an LDAP Add: memberUid is derived from member, so it is written as member.
        if name.eq_ignore_ascii_case("memberUid") {
            member_uids.push(value);
            continue;
        }
        // Cleartext userPassword values are hashed for the whole batch at once.
        entry.push_value(name, value);
    }
    write::add_member_uids(&config.suffix, &mut entry, &member_uids);
    write::ensure_rdn_values(schema, &mut entry).map_err(|e| fail(e.message))?;
    let structural = classes.expand(schema, &mut entry);
    // What needs nothing from the store is done here, beside the writer: memberUid and
    // the server attributes, keeping those the file carries.
    let kept: Vec<(String, Vec<Vec<u8>>)> = KEPT_SERVER_ATTRS
        .iter()
        .filter_map(|a| entry.get(a).map(|v| (a.to_string(), v.values.clone())))
        .collect();
    write::derive_member_uid(&mut entry);
    write::stamp_new_as(&mut entry, "", now, structural.as_deref());
    for (name, values) in kept {
        entry.set(&name, values);
    }
    Ok(entry)
}

/// What each distinct objectClass list, as given, expands to (superclasses added), with
/// its structural class: worked out once, not for every entry.
#[derive(Default)]
struct ClassCache(HashMap<Vec<Vec<u8>>, Expanded>);

struct Expanded {
    classes: Vec<Vec<u8>>,
    structural: Option<String>,
}

impl ClassCache {
    /// Expand the entry's classes; its structural class.
    fn expand(&mut self, schema: &Schema, entry: &mut Entry) -> Option<String> {
        if let Some(known) = self.0.get(entry.values("objectClass")) {
            entry.set("objectClass", known.classes.clone());
            return known.structural.clone();
        }
        let given = entry.values("objectClass").to_vec();
        write::expand_classes(schema, entry);
        let structural = write::structural_class(schema, entry);
        let classes = entry.values("objectClass").to_vec();
        self.0.insert(
            given,
            Expanded {
                classes,
                structural: structural.clone(),
            },
        );
        structural
    }
}

/// The schema rules of each distinct objectClass list seen, worked out once.
#[derive(Default)]
struct ClassRulesCache(HashMap<Vec<Vec<u8>>, write::ClassRules>);

impl ClassRulesCache {
    fn check(&mut self, schema: &Schema, entry: &Entry) -> Result<(), DitError> {
        self.check_keeping(schema, entry, &mut |_, _| {})
    }

    /// [`ClassRulesCache::check`], as [`write::check_entry_keeping`].
    fn check_keeping(
        &mut self,
        schema: &Schema,
        entry: &Entry,
        keep: &mut dyn FnMut(&str, Vec<Vec<u8>>),
    ) -> Result<(), DitError> {
        let classes = entry.values("objectClass");
        let rules = match self.0.get(classes) {
            Some(rules) => rules,
            None => {
                let rules = write::ClassRules::of(schema, classes)?;
                self.0.entry(classes.to_vec()).or_insert(rules)
            }
        };
        write::check_entry_keeping(schema, entry, rules, keep)
    }
}

/// Add a batch of prepared entries in the import's transaction.
fn add_batch(
    config: &Config,
    schema: &Schema,
    w: &mut Writer<'_>,
    batch: &mut [Pending],
    rules: &mut ClassRulesCache,
    bootstrapped: &Bootstrapped<'_>,
) -> Result<u64, DbError> {
    let mut n = 0;
    for Pending {
        entry,
        line,
        checked,
        prepared,
        ..
    } in batch
    {
        let line = *line;
        let fail = |e: DitError, dn: &Dn| DbError::Entry {
            dn: dn.to_string(),
            line,
            message: e.message,
        };
        let already = |dn: &Dn| {
            let code = ldap3_proto::proto::LdapResultCode::EntryAlreadyExists;
            fail(DitError::new(code, "already exists"), dn)
        };
        // The suffix and containers made on first start may be in the file too.
        if bootstrapped.holds(&entry.dn) && w.id_of(&entry.dn)?.is_some() {
            continue;
        }
        // Whether the DN is taken is known when it is added; an entry given twice may fail
        // a check before that (its uidNumber is taken too), and is then reported as such.
        let refused = |w: &Writer<'_>, e: DitError, dn: &Dn| match w.id_of(dn) {
            Ok(Some(_)) => already(dn),
            Ok(None) => fail(e, dn),
            Err(e) => e.into(),
        };
        let completed = match posix::posix_ids(w, &config.posix, entry, None) {
            Ok(completed) => completed,
            Err(e) => return Err(refused(w, e, &entry.dn)),
        };
        // An entry as read keeps the verdict, encoding and keys worked out on the reading
        // thread.
        let as_read = !completed;
        let checked = match checked.take() {
            Some(checked) if as_read => checked,
            _ => rules.check(schema, entry),
        };
        if let Err(e) = checked {
            return Err(refused(w, e, &entry.dn));
        }
        // The keys go back to the reading thread with the entry, to be freed there.
        let added = match prepared {
            Some(prepared) if as_read => w.add_prepared(entry, prepared),
            _ => w.add(entry),
        };
        added.map_err(|e| match e {
            StoreError::AlreadyExists => already(&entry.dn),
            StoreError::NoParent => DbError::Entry {
                dn: entry.dn.to_string(),
                line,
                message: "its parent entry does not exist (parents must come first)".into(),
            },
            other => other.into(),
        })?;
        n += 1;
    }
    Ok(n)
}

/// The entries made on first start: the suffix, its containers and the built-in roles.
struct Bootstrapped<'c> {
    suffix: &'c Dn,
    roles: Vec<Dn>,
}

impl<'c> Bootstrapped<'c> {
    fn new(config: &'c Config) -> Self {
        Bootstrapped {
            suffix: &config.suffix,
            roles: bootstrap::built_in_role_dns(&config.suffix),
        }
    }

    /// Is `dn` one of them? Asked of every imported entry, so no DN is built.
    fn holds(&self, dn: &Dn) -> bool {
        if dn == self.suffix || self.roles.contains(dn) {
            return true;
        }
        dn.parent_norm() == Some(self.suffix.norm())
            && names::CONTAINERS.iter().any(|c| {
                dn.rdn_value("ou")
                    .is_some_and(|v| v.eq_ignore_ascii_case(c))
            })
    }
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
