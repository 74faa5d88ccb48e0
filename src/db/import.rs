//! `db import`: load an LDIF file (a Tessera export, or a `slapcat` dump of an OpenLDAP
//! directory) into the database, in one write transaction, through the rules LDAP Add
//! applies: the same steps of `dit::write::check_new`, taken in bulk.
//!
//! - Reading, preparing and hashing run on their own thread, a batch ahead of the store:
//!   the entry is finished there (`memberUid` derived, classes expanded, stamped), and the
//!   rules that need only the entry (`dit::entry::check_finished`: service accounts, roles,
//!   the schema) are checked there, once per class list for the schema's part.
//! - The writer allocates POSIX numbers (`dit::posix`), re-checking an entry they complete,
//!   and adds it.
//! - References (`dit::references`) are checked once the whole file is in, since a group
//!   may come before its members.
//!
//! Server attributes the file carries (entryUUID, timestamps, creators) are kept, so an
//! export re-imports to the same directory; OpenLDAP's own operational attributes
//! (`entryCSN`, `contextCSN`, ...) are dropped and counted. The suffix, containers and
//! built-in roles made on first start are merged with the file's version of them. A group of
//! RFC 2307's `nis.schema` (Debian's slapd default), a structural `posixGroup` alone, becomes
//! `groupOfNames` + `posixGroup` as groups are here (rfc2307bis), its `memberUid` values
//! written as `member`. With
//! `keep_going` (`--continue`), an entry that breaks a rule is skipped and reported instead
//! of failing the import, and a reference to a missing entry is dropped and reported.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use crate::config::Config;
use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::directory::schema::{ClassKind, Schema};
use crate::directory::time::generalized;
use crate::dit::entry::{self, ClassRules};
use crate::dit::{DitError, names, posix, references, tree};
use crate::identity::password::{self, StoredPassword};
use crate::store::{DirectoryRead, Prepared, Store, StoreError, Writer, open_configured};

use super::DbError;
use super::ldif::{ChangeKind, LdifError, LdifReader, LdifRecord, ParseProblem};

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Show a progress bar.
    pub progress: bool,
    /// Skip (and report) what breaks a rule instead of failing the import.
    pub keep_going: bool,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries added.
    pub imported: u64,
    /// Entries of the file merged into the ones the directory starts with.
    pub merged: u64,
    /// What was left out, and why, in file order.
    pub skipped: Vec<Skipped>,
    /// Values of operational attributes OpenLDAP keeps for itself, dropped, by attribute.
    pub dropped: BTreeMap<String, u64>,
    /// Groups of RFC 2307's nis.schema (a `posixGroup` with no structural class) given
    /// `groupOfNames`.
    pub nis_groups: u64,
    /// Accounts whose password hash no scheme this server verifies can check: they cannot
    /// bind until their password is set again.
    pub unverifiable: Vec<String>,
}

/// An entry (or one value of it) left out by `--continue`.
#[derive(Debug)]
pub struct Skipped {
    /// Empty for a record that could not be read as LDIF.
    pub dn: String,
    pub line: usize,
    pub reason: String,
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

/// What `slapcat` writes of OpenLDAP's own bookkeeping (replication state, password policy
/// state, the numbering of subordinates): meaningless here, dropped and counted.
const OPENLDAP_OPERATIONAL: &[&str] = &[
    "entryCSN",
    "contextCSN",
    "numSubordinates",
    "pwdChangedTime",
    "pwdHistory",
    "pwdFailureTime",
    "pwdAccountLockedTime",
    "pwdGraceUseTime",
    "pwdReset",
    "pwdPolicySubentry",
    "pwdLastSuccess",
    "authTimestamp",
    "syncreplCookie",
    "hasSubordinates",
    "subschemaSubentry",
    "entryDN",
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

/// Import `file` into the directory `config` names.
pub fn import(config: &Config, file: &Path, options: &Options) -> Result<Report, DbError> {
    let (schema, store) = open_configured(config)?;
    // A cluster member's store is written through the Raft log only: an import here would
    // make it differ from the others' for good.
    if store.replicated()?.applied.is_some() {
        return Err(StoreError::Refused(format!(
            "{} belongs to a cluster member: import into a single server's directory, then              form the cluster from it (`tessera cluster init`), or add the entries over LDAP",
            config.db_path().display()
        ))
        .into());
    }
    tree::bootstrap(&store, &schema, &config.suffix)?;
    let handle = std::fs::File::open(file).map_err(|source| DbError::Read {
        path: file.display().to_string(),
        source,
    })?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if options.progress {
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
    // One write transaction takes the whole file: a failed import leaves the store as it
    // was, and the data is made durable once, at the end.
    let report = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // Added entries go back to the reading thread to be freed there: freeing memory
        // another thread allocated contends for that thread's malloc arena, and at 100k
        // entries that contention cost more than the freeing.
        let (spent_tx, spent_rx) = std::sync::mpsc::channel();
        let (schema, bar) = (&schema, &bar);
        let store = &store;
        let keep_going = options.keep_going;
        scope.spawn(move || {
            read_batches(config, schema, store, reader, bar, keep_going, tx, spent_rx)
        });
        store.write_blocking(|w| {
            let mut writer = ImportWriter::new(config, schema, keep_going);
            // Ends when the reader is done; an error, or leaving early, drops `rx`, which
            // stops the reader.
            for mut batch in rx {
                writer.report.skipped.append(&mut batch.skipped);
                for (name, n) in std::mem::take(&mut batch.dropped) {
                    *writer.report.dropped.entry(name).or_default() += n;
                }
                writer.report.nis_groups += batch.nis_groups;
                writer.add_batch(w, &mut batch.pending)?;
                // What stopped the reader, after the entries it read before it.
                if let Some(e) = batch.failed.take() {
                    return Err(e);
                }
                // The reader may have finished; then the batch is freed here.
                let _ = spent_tx.send(batch.pending);
                bar.set_message(format!("{} entries", writer.report.imported));
            }
            writer.check_references(w)?;
            // Left out by the reader or the writer, or dropped at the end: in file order.
            writer.report.skipped.sort_by_key(|s| s.line);
            Ok::<_, DbError>(writer.report)
        })
    })?;
    bar.finish_and_clear();
    Ok(report)
}

/// One batch of the file, prepared on the reading thread.
struct Batch {
    pending: Vec<Pending>,
    /// Entries the reader already left out (`--continue`).
    skipped: Vec<Skipped>,
    /// Operational attribute values dropped, by attribute.
    dropped: BTreeMap<String, u64>,
    /// nis.schema groups given `groupOfNames`.
    nis_groups: u64,
    /// What stopped the reading after `pending` (without `--continue`, an entry it could
    /// not read or prepare): the import's error once those before it are added, so an
    /// import stops at the first problem in file order.
    failed: Option<DbError>,
}

/// An entry read from the file, waiting for its batch to be added.
struct Pending {
    entry: Entry,
    /// Where it ends in the file, for error messages.
    line: usize,
    /// Its size in the file, for the progress bar.
    bytes: u64,
    /// The verdict of the rules that need only the entry, as read.
    checked: Option<Result<(), DitError>>,
    /// Its encoding and index keys as read.
    prepared: Option<Prepared>,
    /// Why it cannot be added, found after it was read (a password that cannot be hashed):
    /// the writer refuses it in its turn.
    refused: Option<String>,
}

/// Send the file's entries, prepared and with their passwords hashed, in batches; a batch
/// that carries an error (`Batch::failed`) ends the stream.
#[allow(clippy::too_many_arguments)]
fn read_batches<R: BufRead>(
    config: &Config,
    schema: &Schema,
    store: &Store,
    mut reader: LdifReader<R>,
    bar: &indicatif::ProgressBar,
    keep_going: bool,
    tx: SyncSender<Batch>,
    spent: Receiver<Vec<Pending>>,
) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now = generalized(time::OffsetDateTime::now_utc());
    let mut read_to = 0;
    let mut rules = ClassRulesCache::default();
    let mut classes = ClassCache::default();
    loop {
        spent.try_iter().for_each(drop);
        let mut done = false;
        let mut reading = Reading {
            config,
            schema,
            classes: &mut classes,
            now: &now,
            keep_going,
            batch: Batch {
                pending: Vec::with_capacity(BATCH),
                skipped: Vec::new(),
                dropped: BTreeMap::new(),
                nis_groups: 0,
                failed: None,
            },
        };
        let failed = reading
            .read_batch(&mut reader, &mut read_to, &mut done)
            .err();
        let mut batch = reading.batch;
        hash_passwords(config, &mut batch.pending, workers, bar);
        // The entry's own rules, the encoding and the index keys need nothing the writer
        // holds: worked out here, off its thread. The writer redoes them for an entry it
        // completed.
        for p in &mut batch.pending {
            // The check normalises every value: the index keys are taken from that.
            let mut keys = Vec::new();
            let mut keep = |attr: &str, values: Vec<Vec<u8>>| {
                if let Some(code) = store.index_code(attr) {
                    keys.extend(values.into_iter().map(|v| (code, v)));
                }
            };
            p.checked = Some(rules.check_keeping(schema, &config.suffix, &p.entry, &mut keep));
            p.prepared = Some(store.prepare_normalized(&p.entry, keys));
        }
        let last = failed.is_some() || done;
        batch.failed = failed;
        bar.set_position(reader.bytes_read());
        if tx.send(batch).is_err() || last {
            return;
        }
    }
}

/// The reading thread's state for one batch.
struct Reading<'a> {
    config: &'a Config,
    schema: &'a Schema,
    classes: &'a mut ClassCache,
    now: &'a str,
    keep_going: bool,
    batch: Batch,
}

impl Reading<'_> {
    /// Up to `BATCH` entries or `BATCH_BYTES` of the file, prepared for adding; `read_to`
    /// is where the last one ended, and `done` is set at the end of the file.
    fn read_batch<R: BufRead>(
        &mut self,
        reader: &mut LdifReader<R>,
        read_to: &mut u64,
        done: &mut bool,
    ) -> Result<(), DbError> {
        let started = *read_to;
        while self.batch.pending.len() < BATCH && *read_to - started < BATCH_BYTES {
            let Some(record) = reader.next() else {
                *done = true;
                break;
            };
            let line = reader.line();
            let bytes = reader.bytes_read().saturating_sub(*read_to);
            *read_to = reader.bytes_read();
            let record = match record {
                Ok(record) => record,
                // A record that cannot be read is skipped with --continue, as `slapadd -c`
                // does: the reader goes on at the next blank line. A file that cannot be
                // read at all (its version, an I/O error) still ends the import.
                Err(LdifError::Parse { line, problem })
                    if self.keep_going
                        && !matches!(problem, ParseProblem::UnsupportedVersion(_)) =>
                {
                    self.batch.skipped.push(Skipped {
                        dn: String::new(),
                        line,
                        reason: problem.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let (dn, attrs) = match record {
                LdifRecord::Entry(e) => (e.dn, e.attrs),
                LdifRecord::Change(c) => match c.kind {
                    ChangeKind::Add(attrs) => (c.dn, attrs),
                    _ => {
                        let message = "only entries and 'changetype: add' records can be imported";
                        self.refuse(&c.dn, line, message.into())?;
                        continue;
                    }
                },
            };
            match self.prepare(&dn, attrs) {
                Ok(entry) => self.batch.pending.push(Pending {
                    entry,
                    line,
                    bytes,
                    checked: None,
                    prepared: None,
                    refused: None,
                }),
                Err(message) => self.refuse(&dn, line, message)?,
            }
        }
        Ok(())
    }

    fn refuse(&mut self, dn: &str, line: usize, message: String) -> Result<(), DbError> {
        refuse(self.keep_going, &mut self.batch.skipped, dn, line, message)
    }

    /// The entry as LDAP Add would finish it before the store is involved.
    fn prepare(&mut self, dn: &str, attrs: Vec<(String, Vec<u8>)>) -> Result<Entry, String> {
        let (config, schema) = (self.config, self.schema);
        let parsed = Dn::parse(dn).map_err(|e| e.to_string())?;
        if !parsed.is_within(&config.suffix) {
            return Err(format!("is outside the suffix {}", config.suffix));
        }
        let mut new = Entry::new(parsed);
        let mut member_uids = Vec::new();
        // A file lists an attribute's values one after another: its name is looked up once.
        let mut last: Option<(String, Option<String>)> = None;
        for (description, value) in attrs {
            let name = match &last {
                Some((d, name)) if *d == description => name,
                _ => {
                    let name = match entry::attr_name(schema, &description) {
                        Ok(name) => Some(name),
                        Err(_) if is_openldap_operational(&description) => None,
                        Err(e) => return Err(e.message),
                    };
                    &last.insert((description, name)).1
                }
            };
            let Some(name) = name else {
                let base = last.as_ref().map_or("", |(d, _)| d.as_str());
                let base = base.split(';').next().unwrap_or(base);
                *self.batch.dropped.entry(base.to_string()).or_default() += 1;
                continue;
            };
            if COMPUTED_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                *self.batch.dropped.entry(name.clone()).or_default() += 1;
                continue;
            }
            // As in an LDAP Add: memberUid is derived from member, so it is written as member.
            if name.eq_ignore_ascii_case("memberUid") {
                member_uids.push(value);
                continue;
            }
            // Cleartext userPassword values are hashed for the whole batch at once.
            new.push_value(name, value);
        }
        if is_nis_group(schema, &new) {
            new.push_value("objectClass", b"groupOfNames".to_vec());
            self.batch.nis_groups += 1;
        }
        entry::add_member_uids(&config.suffix, &mut new, &member_uids);
        entry::ensure_rdn_values(schema, &mut new).map_err(|e| e.message)?;
        let structural = self.classes.expand(schema, &mut new);
        // What needs nothing from the store is done here, beside the writer: memberUid and
        // the server attributes, keeping those the file carries.
        let kept: Vec<(String, Vec<Vec<u8>>)> = KEPT_SERVER_ATTRS
            .iter()
            .filter_map(|a| new.get(a).map(|v| (a.to_string(), v.values.clone())))
            .collect();
        entry::derive_member_uid(&mut new);
        entry::stamp_new_as(
            &mut new,
            "",
            self.now,
            &entry::new_uuid(),
            structural.as_deref(),
        );
        for (name, values) in kept {
            new.set(&name, values);
        }
        Ok(new)
    }
}

/// A group as RFC 2307's nis.schema has it: `posixGroup` (structural there, auxiliary here)
/// and no structural class.
fn is_nis_group(schema: &Schema, e: &Entry) -> bool {
    let classes = e.values("objectClass");
    classes
        .iter()
        .any(|c| c.eq_ignore_ascii_case(b"posixGroup"))
        && !classes.iter().any(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|c| schema.object_class(c))
                .is_some_and(|oc| oc.kind == ClassKind::Structural)
        })
}

fn is_openldap_operational(description: &str) -> bool {
    let base = description.split(';').next().unwrap_or(description);
    OPENLDAP_OPERATIONAL
        .iter()
        .any(|a| a.eq_ignore_ascii_case(base))
}

/// Hash the batch's cleartext `userPassword` values, on every core: argon2 is meant to be
/// slow, so with passwords in the file it is nearly all of an import's time. Values stay
/// where they were; the progress bar moves as entries are done. A value with a `{SCHEME}`
/// prefix is a hash, whether this server verifies its scheme or not: kept as it is (and
/// reported when it cannot be verified), never taken for a password. An entry with a
/// password that cannot be hashed (too long) is marked refused.
fn hash_passwords(
    config: &Config,
    batch: &mut [Pending],
    workers: usize,
    bar: &indicatif::ProgressBar,
) {
    let cleartext = |p: &Pending| {
        p.entry
            .values("userPassword")
            .iter()
            .any(|v| !password::has_scheme_prefix(v))
    };
    let (mut todo, done): (Vec<&mut Pending>, Vec<&mut Pending>) =
        batch.iter_mut().partition(|p| cleartext(p));
    bar.inc(done.iter().map(|p| p.bytes).sum());
    if todo.is_empty() {
        return;
    }
    let params = config.argon2;
    let per_worker = todo.len().div_ceil(workers.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks_mut(per_worker)
            .map(|chunk| {
                scope.spawn(move || {
                    for p in chunk.iter_mut() {
                        if let Err(e) = hash_entry(&params, &mut p.entry) {
                            p.refused = Some(format!("userPassword: {e}"));
                        }
                        bar.inc(p.bytes);
                    }
                })
            })
            .collect();
        // A panic in argon2 is a bug: passed on as one.
        for h in handles {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
}

fn hash_entry(
    params: &password::Argon2Params,
    e: &mut Entry,
) -> Result<(), password::PasswordError> {
    let Some(attr) = e
        .attrs
        .iter_mut()
        .find(|a| a.name.eq_ignore_ascii_case("userPassword"))
    else {
        return Ok(());
    };
    for value in attr.values.iter_mut() {
        if password::has_scheme_prefix(value) {
            continue;
        }
        *value = password::hash(value, params)?.into_bytes();
    }
    Ok(())
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
    fn expand(&mut self, schema: &Schema, e: &mut Entry) -> Option<String> {
        if let Some(known) = self.0.get(e.values("objectClass")) {
            e.set("objectClass", known.classes.clone());
            return known.structural.clone();
        }
        let given = e.values("objectClass").to_vec();
        entry::expand_classes(schema, e);
        let structural = entry::structural_class(schema, e);
        let classes = e.values("objectClass").to_vec();
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
struct ClassRulesCache(HashMap<Vec<Vec<u8>>, ClassRules>);

impl ClassRulesCache {
    fn check(&mut self, schema: &Schema, suffix: &Dn, e: &Entry) -> Result<(), DitError> {
        self.check_keeping(schema, suffix, e, &mut |_, _| {})
    }

    /// `dit::entry::check_finished`, with the class rules from the cache.
    fn check_keeping(
        &mut self,
        schema: &Schema,
        suffix: &Dn,
        e: &Entry,
        keep: &mut dyn FnMut(&str, Vec<Vec<u8>>),
    ) -> Result<(), DitError> {
        let classes = e.values("objectClass");
        let rules = match self.0.get(classes) {
            Some(rules) => rules,
            None => {
                let rules = ClassRules::of(schema, classes)?;
                self.0.entry(classes.to_vec()).or_insert(rules)
            }
        };
        entry::check_finished(schema, suffix, e, None, rules, keep)
    }
}

/// The writer's side of an import.
struct ImportWriter<'c> {
    config: &'c Config,
    schema: &'c Schema,
    keep_going: bool,
    rules: ClassRulesCache,
    bootstrapped: Bootstrapped<'c>,
    /// Entries added with references to check once the whole file is in: their DN and
    /// line.
    referring: Vec<(Dn, usize)>,
    report: Report,
}

impl<'c> ImportWriter<'c> {
    fn new(config: &'c Config, schema: &'c Schema, keep_going: bool) -> Self {
        ImportWriter {
            config,
            schema,
            keep_going,
            rules: ClassRulesCache::default(),
            bootstrapped: Bootstrapped::new(config),
            referring: Vec::new(),
            report: Report::default(),
        }
    }

    /// Add a batch of prepared entries in the import's transaction.
    fn add_batch(&mut self, w: &mut Writer<'_>, batch: &mut [Pending]) -> Result<(), DbError> {
        for p in batch {
            match self.add_one(w, p) {
                Ok(()) => {}
                Err(Refusal::Entry(message)) => self.refuse(&p.entry.dn, p.line, message)?,
                Err(Refusal::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn add_one(&mut self, w: &mut Writer<'_>, p: &mut Pending) -> Result<(), Refusal> {
        let Pending {
            entry: new,
            checked,
            prepared,
            line,
            refused,
            ..
        } = p;
        if let Some(why) = refused.take() {
            return Err(Refusal::Entry(why));
        }
        // The suffix, containers and built-in roles exist already: the file's version is
        // merged into them.
        if self.bootstrapped.holds(&new.dn)
            && let Some((id, existing)) = w.entry_by_dn(&new.dn)?
        {
            return self.merge(w, id, &existing, new, *line);
        }
        // Whether the DN is taken is known when it is added; an entry given twice may fail
        // a check before that (its uidNumber is taken too), and is then reported as such.
        let refused = |w: &Writer<'_>, e: DitError, dn: &Dn| match w.id_of(dn) {
            Ok(Some(_)) => Refusal::Entry("already exists".into()),
            Ok(None) => Refusal::Entry(e.message),
            Err(e) => Refusal::Store(e),
        };
        let completed = match posix::posix_ids(w, &self.config.posix, new, None) {
            Ok(completed) => completed,
            Err(e) => return Err(refused(w, e, &new.dn)),
        };
        // An entry as read keeps the verdict, encoding and keys worked out on the reading
        // thread.
        let as_read = !completed;
        let checked = match checked.take() {
            Some(checked) if as_read => checked,
            _ => self.rules.check(self.schema, &self.config.suffix, new),
        };
        if let Err(e) = checked {
            return Err(refused(w, e, &new.dn));
        }
        // The keys go back to the reading thread with the entry, to be freed there.
        let added = match prepared {
            Some(prepared) if as_read => w.add_prepared(new, prepared),
            _ => w.add(new),
        };
        added.map_err(|e| match e {
            StoreError::AlreadyExists => Refusal::Entry("already exists".into()),
            StoreError::NoParent => {
                Refusal::Entry("its parent entry does not exist (parents must come first)".into())
            }
            other => Refusal::Store(other),
        })?;
        self.note_added(new, *line);
        Ok(())
    }

    /// What the report and the reference check need of an added entry.
    fn note_added(&mut self, e: &Entry, line: usize) {
        self.report.imported += 1;
        if references::CONFERRING.iter().any(|a| e.get(a).is_some()) {
            self.referring.push((e.dn.clone(), line));
        }
        let unverifiable = e
            .values("userPassword")
            .iter()
            .any(|v| StoredPassword::parse(v).is_none());
        if unverifiable {
            self.report.unverifiable.push(e.dn.to_string());
        }
    }

    /// Merge the file's `given` into the entry the directory started with: each attribute
    /// the file gives replaces the entry's (objectClass takes both), the server attributes
    /// the file carries are kept, and the result is checked as any entry is.
    fn merge(
        &mut self,
        w: &mut Writer<'_>,
        id: u64,
        existing: &Entry,
        given: &Entry,
        line: usize,
    ) -> Result<(), Refusal> {
        let mut merged = existing.clone();
        for attr in &given.attrs {
            if attr.name.eq_ignore_ascii_case("objectClass") {
                let mut classes = merged.values("objectClass").to_vec();
                for c in &attr.values {
                    if !classes.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                        classes.push(c.clone());
                    }
                }
                merged.set("objectClass", classes);
            } else if !attr.name.eq_ignore_ascii_case("structuralObjectClass") {
                merged.set(&attr.name, attr.values.clone());
            }
        }
        entry::expand_classes(self.schema, &mut merged);
        entry::derive_member_uid(&mut merged);
        self.rules
            .check(self.schema, &self.config.suffix, &merged)
            .map_err(|e| Refusal::Entry(e.message))?;
        w.replace(id, existing, &merged)?;
        self.report.merged += 1;
        if references::CONFERRING
            .iter()
            .any(|a| merged.get(a).is_some())
        {
            self.referring.push((merged.dn.clone(), line));
        }
        Ok(())
    }

    fn refuse(&mut self, dn: &Dn, line: usize, message: String) -> Result<(), DbError> {
        let dn = dn.to_string();
        refuse(
            self.keep_going,
            &mut self.report.skipped,
            &dn,
            line,
            message,
        )
    }

    /// Every reference an added entry makes must name an entry now that the whole file is
    /// in (`dit::references::check`). With `--continue` a reference to nothing is dropped,
    /// and an entry that is no longer valid without it is taken out again.
    fn check_references(&mut self, w: &mut Writer<'_>) -> Result<(), DbError> {
        for (dn, line) in std::mem::take(&mut self.referring) {
            let Some((id, e)) = w.entry_by_dn(&dn)? else {
                continue;
            };
            let Err(refusal) = references::check(w, &self.config.suffix, None, &e) else {
                continue;
            };
            if !self.keep_going {
                return Err(DbError::Entry {
                    dn: dn.to_string(),
                    line,
                    message: refusal.message,
                });
            }
            let mut kept = e.clone();
            for attr in references::CONFERRING {
                let mut values = Vec::new();
                for (v, target) in e.values(attr).iter().zip(references::dns(e.values(attr))) {
                    let kept = target == dn
                        || !target.is_within(&self.config.suffix)
                        || w.id_of(&target)?.is_some();
                    if kept {
                        values.push(v.clone());
                    } else {
                        self.report.skipped.push(Skipped {
                            dn: dn.to_string(),
                            line,
                            reason: format!("{attr}: {target} does not exist; value dropped"),
                        });
                    }
                }
                kept.set(attr, values);
            }
            entry::derive_member_uid(&mut kept);
            match self.rules.check(self.schema, &self.config.suffix, &kept) {
                Ok(()) => w.replace(id, &e, &kept)?,
                Err(why) if !w.has_children(id)? => {
                    w.delete(id, &e)?;
                    references::refint(w, &dn, None)?;
                    self.report.imported -= 1;
                    self.report.skipped.push(Skipped {
                        dn: dn.to_string(),
                        line,
                        reason: format!("without those values: {}", why.message),
                    });
                }
                Err(why) => {
                    return Err(DbError::Entry {
                        dn: dn.to_string(),
                        line,
                        message: format!(
                            "without its references to missing entries: {}",
                            why.message
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// An entry that breaks a rule: the import's error, or with `--continue`, a line of the
/// report.
fn refuse(
    keep_going: bool,
    skipped: &mut Vec<Skipped>,
    dn: &str,
    line: usize,
    message: String,
) -> Result<(), DbError> {
    if !keep_going {
        return Err(DbError::Entry {
            dn: dn.to_string(),
            line,
            message,
        });
    }
    skipped.push(Skipped {
        dn: dn.to_string(),
        line,
        reason: message,
    });
    Ok(())
}

/// Why one entry was not added.
enum Refusal {
    /// It breaks a rule: skipped with `--continue`.
    Entry(String),
    /// The store failed: the import fails.
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
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
            roles: tree::built_in_role_dns(&config.suffix),
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
