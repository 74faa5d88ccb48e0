//! LDIF (RFC 2849): a streaming reader of content and change records, and a writer of
//! entries, for `tessera db import` / `tessera db export` and for tests.
//!
//! This module owns the text format only: line folding, comments, base64 values, the
//! shape of content and change records, and error messages that name the line. It knows
//! nothing of DN syntax, schema or the store: DNs and attribute names come out as the
//! strings written, values as raw bytes, and callers validate them. It does no I/O beyond
//! the `BufRead` or `Write` it is handed; in particular it never follows `attr:< URL`
//! values (they are an error), so an imported file cannot make the server read other files.
//!
//! The reader holds one record at a time, so a file of any size streams in bounded memory
//! (bounded by its largest record, as no line length limit is imposed).

use std::io::{self, BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use thiserror::Error;

/// Lines the writer emits are at most this many bytes, continuation lines included.
pub const FOLD_WIDTH: usize = 76;

/// A content record: one entry and its attribute values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifEntry {
    pub dn: String,
    /// Attribute descriptions as written (no case folding, options such as `;binary`
    /// kept), one pair per value line, in file order.
    pub attrs: Vec<(String, Vec<u8>)>,
}

/// One record of an LDIF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdifRecord {
    Entry(LdifEntry),
    Change(LdifChange),
}

/// A change record (`changetype:`), with the controls written before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifChange {
    pub dn: String,
    pub controls: Vec<LdifControl>,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Attribute descriptions as written, one pair per value line, in file order.
    Add(Vec<(String, Vec<u8>)>),
    Delete,
    Modify(Vec<Modification>),
    /// `changetype: modrdn` and `changetype: moddn`, which RFC 2849 treats as one.
    ModDn {
        new_rdn: String,
        delete_old_rdn: bool,
        new_superior: Option<String>,
    },
}

/// One `add:` / `delete:` / `replace:` / `increment:` block of a modify record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modification {
    pub op: ModOp,
    /// The attribute description as written after the operation keyword.
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
    /// RFC 4525 Modify-Increment.
    Increment,
}

/// A `control:` line of a change record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifControl {
    pub oid: String,
    pub critical: bool,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Error)]
pub enum LdifError {
    #[error("line {line}: {problem}")]
    Parse { line: usize, problem: ParseProblem },
    #[error("reading LDIF at line {line}: {source}")]
    Io { line: usize, source: io::Error },
}

impl LdifError {
    /// The (1-based) line the error was found on; for a folded line, its first line.
    pub fn line(&self) -> usize {
        match self {
            LdifError::Parse { line, .. } | LdifError::Io { line, .. } => *line,
        }
    }
}

/// What is wrong with a line. Texts quoted from the input are shortened and escaped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseProblem {
    #[error("continuation line (starting with a space) has no line to continue")]
    OrphanContinuation,
    #[error("unsupported LDIF version '{0}' (only version 1 exists)")]
    UnsupportedVersion(String),
    #[error("record does not start with a 'dn:' line (found '{0}')")]
    MissingDn(String),
    #[error("no ':' between attribute name and value in '{0}'")]
    MissingColon(String),
    #[error(
        "invalid attribute name '{0}' (only letters, digits, '-', '.', '_' and ';' are allowed)"
    )]
    InvalidAttrName(String),
    #[error("invalid base64 in value of '{0}'")]
    InvalidBase64(String),
    #[error("value of '{0}' is a URL (':<'); URL values are not supported, inline the value")]
    UrlValue(String),
    #[error("value of '{0}' is not valid UTF-8")]
    NotUtf8(String),
    #[error("unknown changetype '{0}' (expected add, delete, modify, modrdn or moddn)")]
    UnknownChangeType(String),
    #[error("'changetype: add' record has no attributes")]
    EmptyAdd,
    #[error("unexpected '{found}' line in a '{changetype}' record")]
    UnexpectedLine {
        found: String,
        changetype: &'static str,
    },
    #[error(
        "expected 'add:', 'delete:', 'replace:' or 'increment:' in a modify record, found '{0}'"
    )]
    ExpectedModOp(String),
    #[error("value of '{found}' inside the modification of '{expected}' (missing '-' line?)")]
    ModAttrMismatch { expected: String, found: String },
    #[error("'-' line outside a modification")]
    StraySeparator,
    #[error("modrdn record has no '{0}:' line")]
    MissingField(&'static str),
    #[error("'{0}:' appears twice")]
    DuplicateField(&'static str),
    #[error("deleteoldrdn must be 0 or 1, found '{0}'")]
    InvalidDeleteOldRdn(String),
    #[error("invalid control: {0}")]
    InvalidControl(&'static str),
}

/// Streams records out of LDIF text. Give it a `BufReader` with a large buffer (64 KiB)
/// for bulk loads.
///
/// After a parse error the rest of the offending record is skipped, so a caller may go on
/// to report further errors; after an I/O error the iterator ends.
pub struct LdifReader<R: BufRead> {
    inner: R,
    /// The current logical line: unfolded, without its line terminator.
    line_buf: Vec<u8>,
    /// One physical line of lookahead, needed to see whether the next line continues.
    ahead: Vec<u8>,
    ahead_state: Ahead,
    /// Physical lines read so far, the lookahead included.
    lines: usize,
    bytes: u64,
    /// The physical line `line_buf` started on.
    line_no: usize,
    state: State,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(inner: R) -> Self {
        LdifReader {
            inner,
            line_buf: Vec::with_capacity(256),
            ahead: Vec::with_capacity(256),
            ahead_state: Ahead::Empty,
            lines: 0,
            bytes: 0,
            line_no: 0,
            state: State::Start,
        }
    }

    /// The number of the last line consumed (1-based; 0 before reading).
    pub fn line(&self) -> usize {
        match self.ahead_state {
            Ahead::Line => self.lines.saturating_sub(1),
            Ahead::Empty | Ahead::Eof => self.lines,
        }
    }

    /// Bytes taken from the underlying reader so far (may run one line ahead).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<LdifRecord, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_record().transpose()
    }
}

// Once `next` has returned `None` the input is exhausted (or failed) for good.
impl<R: BufRead> std::iter::FusedIterator for LdifReader<R> {}

/// Writes `version: 1` and a blank line; call it once, before the first entry.
pub fn write_version<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"version: 1\n\n")
}

/// Writes one entry followed by a blank line. Values that are not plain printable ASCII
/// (or that start with a space, ':' or '<', or end with a space) are base64-encoded, and
/// lines are folded at [`FOLD_WIDTH`] bytes. Each entry is written with one `write_all`;
/// still, wrap stdout or a file in a `BufWriter`.
///
/// Fails with `InvalidInput`, writing nothing, on an attribute name that LDIF cannot carry
/// or that would make the entry read back as a change record (`changetype` first).
pub fn write_entry<W: Write>(w: &mut W, dn: &str, attrs: &[(&str, &[u8])]) -> io::Result<()> {
    write_entry_iter(w, dn, attrs.iter().copied())
}

/// [`write_entry`] for attributes from an iterator, e.g. straight out of the store.
pub fn write_entry_iter<'a, W, I>(w: &mut W, dn: &str, attrs: I) -> io::Result<()>
where
    W: Write,
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut out = Vec::with_capacity(512);
    let mut line = String::with_capacity(128);
    push_attr_line(&mut out, &mut line, "dn", dn.as_bytes());
    // Only `control` lines may precede `changetype`, so past the first other name a
    // `changetype` attribute is harmless.
    let mut leading = true;
    for (name, value) in attrs {
        if attr_name(name.as_bytes()).is_none() {
            return Err(invalid_input(format!(
                "attribute name '{}' cannot be written to LDIF",
                snippet(name.as_bytes())
            )));
        }
        if leading && !name.eq_ignore_ascii_case("control") {
            if name.eq_ignore_ascii_case("changetype") {
                return Err(invalid_input(format!(
                    "entry '{}' would read back as a change record: its first attribute is '{name}'",
                    snippet(dn.as_bytes())
                )));
            }
            leading = false;
        }
        push_attr_line(&mut out, &mut line, name, value);
    }
    out.push(b'\n');
    w.write_all(&out)
}

// ---------------------------------------------------------------------------------------
// Reading

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ahead {
    /// Nothing read ahead.
    Empty,
    /// `ahead` holds the next physical line.
    Line,
    /// The input is exhausted.
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but comments and blank lines seen: a `version:` line may come.
    Start,
    /// Between records.
    Between,
    /// Inside a record; after an error, the rest of it is skipped.
    InRecord,
    /// An I/O error ended the input.
    Done,
}

enum Logical {
    /// `line_buf` holds a non-comment line.
    Content,
    Blank,
    Eof,
}

enum RecordLine {
    /// A blank line or the end of input.
    End,
    /// A `-` line.
    Sep,
    Attr(String, Vec<u8>),
}

impl<R: BufRead> LdifReader<R> {
    fn read_record(&mut self) -> Result<Option<LdifRecord>, LdifError> {
        match self.state {
            State::Done => return Ok(None),
            State::InRecord => self.skip_record()?,
            State::Start | State::Between => {}
        }
        loop {
            match self.next_logical()? {
                Logical::Eof => return Ok(None),
                Logical::Blank => {}
                Logical::Content => {
                    let first = self.state == State::Start;
                    self.state = State::Between;
                    if first && starts_with_ci(&self.line_buf, b"version:") {
                        self.check_version()?;
                        continue;
                    }
                    break;
                }
            }
        }

        self.state = State::InRecord;
        if !starts_with_ci(&self.line_buf, b"dn:") {
            return Err(self.parse_err(ParseProblem::MissingDn(snippet(&self.line_buf))));
        }
        let (_, dn) = self.split_line()?;
        let dn = self.utf8(dn, "dn")?;

        // `control:` lines can only be told from attributes of that name once the line
        // after them shows whether this is a change record.
        let mut leading: Vec<(usize, String, Vec<u8>)> = Vec::new();
        loop {
            match self.next_in_record()? {
                RecordLine::End => {
                    let attrs = leading.into_iter().map(|(_, n, v)| (n, v)).collect();
                    return Ok(Some(LdifRecord::Entry(LdifEntry { dn, attrs })));
                }
                RecordLine::Sep => return Err(self.parse_err(missing_colon_sep())),
                RecordLine::Attr(name, value) if name.eq_ignore_ascii_case("control") => {
                    leading.push((self.line_no, name, value));
                }
                RecordLine::Attr(name, value) if name.eq_ignore_ascii_case("changetype") => {
                    let controls = leading
                        .iter()
                        .map(|(line, _, spec)| {
                            parse_control(spec).map_err(|problem| LdifError::Parse {
                                line: *line,
                                problem,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let kind = self.read_change(&value)?;
                    return Ok(Some(LdifRecord::Change(LdifChange { dn, controls, kind })));
                }
                RecordLine::Attr(name, value) => {
                    let mut attrs = Vec::with_capacity(leading.len() + 8);
                    attrs.extend(leading.into_iter().map(|(_, n, v)| (n, v)));
                    attrs.push((name, value));
                    self.read_entry_attrs(&mut attrs)?;
                    return Ok(Some(LdifRecord::Entry(LdifEntry { dn, attrs })));
                }
            }
        }
    }

    fn read_entry_attrs(&mut self, attrs: &mut Vec<(String, Vec<u8>)>) -> Result<(), LdifError> {
        loop {
            match self.next_in_record()? {
                RecordLine::End => return Ok(()),
                RecordLine::Sep => return Err(self.parse_err(missing_colon_sep())),
                RecordLine::Attr(name, value) => attrs.push((name, value)),
            }
        }
    }

    /// Reads the rest of a change record whose `changetype:` value is `changetype`.
    fn read_change(&mut self, changetype: &[u8]) -> Result<ChangeKind, LdifError> {
        let changetype_line = self.line_no;
        let changetype = trim_spaces(changetype);
        if changetype.eq_ignore_ascii_case(b"add") {
            let mut attrs = Vec::new();
            loop {
                match self.next_in_record()? {
                    RecordLine::End => break,
                    RecordLine::Sep => return Err(self.parse_err(ParseProblem::StraySeparator)),
                    RecordLine::Attr(name, value) => attrs.push((name, value)),
                }
            }
            if attrs.is_empty() {
                return Err(LdifError::Parse {
                    line: changetype_line,
                    problem: ParseProblem::EmptyAdd,
                });
            }
            Ok(ChangeKind::Add(attrs))
        } else if changetype.eq_ignore_ascii_case(b"delete") {
            match self.next_in_record()? {
                RecordLine::End => Ok(ChangeKind::Delete),
                RecordLine::Sep => Err(self.unexpected("-".to_owned(), "delete")),
                RecordLine::Attr(name, _) => Err(self.unexpected(name, "delete")),
            }
        } else if changetype.eq_ignore_ascii_case(b"modify") {
            self.read_modify()
        } else if changetype.eq_ignore_ascii_case(b"modrdn")
            || changetype.eq_ignore_ascii_case(b"moddn")
        {
            self.read_moddn(changetype_line)
        } else {
            Err(self.parse_err(ParseProblem::UnknownChangeType(snippet(changetype))))
        }
    }

    fn read_modify(&mut self) -> Result<ChangeKind, LdifError> {
        let mut mods = Vec::new();
        loop {
            let (keyword, attr) = match self.next_in_record()? {
                RecordLine::End => return Ok(ChangeKind::Modify(mods)),
                RecordLine::Sep => return Err(self.parse_err(ParseProblem::StraySeparator)),
                RecordLine::Attr(keyword, attr) => (keyword, attr),
            };
            let op = if keyword.eq_ignore_ascii_case("add") {
                ModOp::Add
            } else if keyword.eq_ignore_ascii_case("delete") {
                ModOp::Delete
            } else if keyword.eq_ignore_ascii_case("replace") {
                ModOp::Replace
            } else if keyword.eq_ignore_ascii_case("increment") {
                ModOp::Increment
            } else {
                return Err(self.parse_err(ParseProblem::ExpectedModOp(keyword)));
            };
            let attr = self.attr_name_value(attr, &keyword)?;
            let mut values = Vec::new();
            loop {
                match self.next_in_record()? {
                    // RFC 2849 wants a final '-', but its absence at the end of the record
                    // is unambiguous and common in hand-written files.
                    RecordLine::End => {
                        mods.push(Modification { op, attr, values });
                        return Ok(ChangeKind::Modify(mods));
                    }
                    RecordLine::Sep => break,
                    RecordLine::Attr(name, value) if name.eq_ignore_ascii_case(&attr) => {
                        values.push(value);
                    }
                    RecordLine::Attr(found, _) => {
                        return Err(self.parse_err(ParseProblem::ModAttrMismatch {
                            expected: attr,
                            found,
                        }));
                    }
                }
            }
            mods.push(Modification { op, attr, values });
        }
    }

    fn read_moddn(&mut self, changetype_line: usize) -> Result<ChangeKind, LdifError> {
        let mut new_rdn = None;
        let mut delete_old_rdn = None;
        let mut new_superior = None;
        loop {
            let (name, value) = match self.next_in_record()? {
                RecordLine::End => break,
                RecordLine::Sep => return Err(self.unexpected("-".to_owned(), "modrdn")),
                RecordLine::Attr(name, value) => (name, value),
            };
            if name.eq_ignore_ascii_case("newrdn") {
                if new_rdn.is_some() {
                    return Err(self.parse_err(ParseProblem::DuplicateField("newrdn")));
                }
                new_rdn = Some(self.utf8(value, "newrdn")?);
            } else if name.eq_ignore_ascii_case("deleteoldrdn") {
                if delete_old_rdn.is_some() {
                    return Err(self.parse_err(ParseProblem::DuplicateField("deleteoldrdn")));
                }
                delete_old_rdn = Some(match trim_spaces(&value) {
                    b"0" => false,
                    b"1" => true,
                    other => {
                        return Err(
                            self.parse_err(ParseProblem::InvalidDeleteOldRdn(snippet(other)))
                        );
                    }
                });
            } else if name.eq_ignore_ascii_case("newsuperior") {
                if new_superior.is_some() {
                    return Err(self.parse_err(ParseProblem::DuplicateField("newsuperior")));
                }
                new_superior = Some(self.utf8(value, "newsuperior")?);
            } else {
                return Err(self.unexpected(name, "modrdn"));
            }
        }
        let missing = |field| LdifError::Parse {
            line: changetype_line,
            problem: ParseProblem::MissingField(field),
        };
        Ok(ChangeKind::ModDn {
            new_rdn: new_rdn.ok_or_else(|| missing("newrdn"))?,
            delete_old_rdn: delete_old_rdn.ok_or_else(|| missing("deleteoldrdn"))?,
            new_superior,
        })
    }

    fn check_version(&self) -> Result<(), LdifError> {
        let (_, value) = self.split_line()?;
        if trim_spaces(&value) == b"1" {
            Ok(())
        } else {
            Err(self.parse_err(ParseProblem::UnsupportedVersion(snippet(&value))))
        }
    }

    fn skip_record(&mut self) -> Result<(), LdifError> {
        loop {
            match self.next_logical()? {
                Logical::Content => {}
                Logical::Blank | Logical::Eof => {
                    self.state = State::Between;
                    return Ok(());
                }
            }
        }
    }

    /// The next line of the current record, split into name and decoded value.
    fn next_in_record(&mut self) -> Result<RecordLine, LdifError> {
        match self.next_logical()? {
            Logical::Blank | Logical::Eof => {
                self.state = State::Between;
                Ok(RecordLine::End)
            }
            Logical::Content => {
                if trim_spaces(&self.line_buf) == b"-" {
                    return Ok(RecordLine::Sep);
                }
                let (name, value) = self.split_line()?;
                Ok(RecordLine::Attr(name.to_owned(), value))
            }
        }
    }

    /// Assembles the next logical line in `line_buf`, skipping comments.
    fn next_logical(&mut self) -> Result<Logical, LdifError> {
        loop {
            match self.ahead_state {
                Ahead::Eof => return Ok(Logical::Eof),
                Ahead::Line => {}
                Ahead::Empty => {
                    if !self.read_physical()? {
                        self.ahead_state = Ahead::Eof;
                        return Ok(Logical::Eof);
                    }
                }
            }
            std::mem::swap(&mut self.line_buf, &mut self.ahead);
            self.ahead_state = Ahead::Empty;
            self.line_no = self.lines;
            match self.line_buf.first() {
                // A blank line ends a record, so a space line after it continues nothing.
                None => return Ok(Logical::Blank),
                Some(b' ') => return Err(self.parse_err(ParseProblem::OrphanContinuation)),
                Some(_) => {}
            }
            self.absorb_continuations()?;
            // Comments may be folded too, hence the check after unfolding.
            if self.line_buf.first() != Some(&b'#') {
                return Ok(Logical::Content);
            }
        }
    }

    fn absorb_continuations(&mut self) -> Result<(), LdifError> {
        loop {
            if !self.read_physical()? {
                self.ahead_state = Ahead::Eof;
                return Ok(());
            }
            match self.ahead.split_first() {
                Some((b' ', rest)) => self.line_buf.extend_from_slice(rest),
                _ => {
                    self.ahead_state = Ahead::Line;
                    return Ok(());
                }
            }
        }
    }

    /// Reads one physical line into `ahead`, without its LF or CRLF. False at end of input.
    fn read_physical(&mut self) -> Result<bool, LdifError> {
        self.ahead.clear();
        let n = match self.inner.read_until(b'\n', &mut self.ahead) {
            Ok(n) => n,
            Err(source) => {
                self.state = State::Done;
                self.ahead_state = Ahead::Eof;
                return Err(LdifError::Io {
                    line: self.lines + 1,
                    source,
                });
            }
        };
        if n == 0 {
            return Ok(false);
        }
        self.lines += 1;
        self.bytes += n as u64;
        if self.ahead.last() == Some(&b'\n') {
            self.ahead.pop();
        }
        if self.ahead.last() == Some(&b'\r') {
            self.ahead.pop();
        }
        Ok(true)
    }

    fn split_line(&self) -> Result<(&str, Vec<u8>), LdifError> {
        parse_attr_line(&self.line_buf).map_err(|problem| self.parse_err(problem))
    }

    /// The value of an `add: cn`-style line, which is itself an attribute description.
    fn attr_name_value(&self, value: Vec<u8>, keyword: &str) -> Result<String, LdifError> {
        let name = self.utf8(value, keyword)?;
        let trimmed = name.trim_end_matches(' ');
        if attr_name(trimmed.as_bytes()).is_none() {
            return Err(self.parse_err(ParseProblem::InvalidAttrName(snippet(trimmed.as_bytes()))));
        }
        Ok(trimmed.to_owned())
    }

    fn utf8(&self, value: Vec<u8>, what: &str) -> Result<String, LdifError> {
        String::from_utf8(value).map_err(|_| self.parse_err(ParseProblem::NotUtf8(what.to_owned())))
    }

    fn unexpected(&self, found: String, changetype: &'static str) -> LdifError {
        self.parse_err(ParseProblem::UnexpectedLine { found, changetype })
    }

    fn parse_err(&self, problem: ParseProblem) -> LdifError {
        LdifError::Parse {
            line: self.line_no,
            problem,
        }
    }
}

/// Splits `name: value`, `name:: base64` or `name:< url` into the name and the value bytes.
fn parse_attr_line(line: &[u8]) -> Result<(&str, Vec<u8>), ParseProblem> {
    let mut parts = line.splitn(2, |&b| b == b':');
    let (Some(name), Some(rest)) = (parts.next(), parts.next()) else {
        return Err(ParseProblem::MissingColon(snippet(line)));
    };
    let Some(name) = attr_name(name) else {
        return Err(ParseProblem::InvalidAttrName(snippet(name)));
    };
    let value = parse_value_spec(rest, name)?;
    Ok((name, value))
}

/// Decodes what follows the first ':' of a line (`value`, `: base64` or `< url`).
fn parse_value_spec(rest: &[u8], name: &str) -> Result<Vec<u8>, ParseProblem> {
    match rest.split_first() {
        Some((b':', encoded)) => STANDARD_PAD_INDIFFERENT
            .decode(trim_spaces(encoded))
            .map_err(|_| ParseProblem::InvalidBase64(name.to_owned())),
        Some((b'<', _)) => Err(ParseProblem::UrlValue(name.to_owned())),
        // FILL: spaces after the colon are not part of the value.
        _ => Ok(skip_spaces(rest).to_vec()),
    }
}

/// `oid [true|false][value-spec]`, the value of a `control:` line (RFC 2849).
fn parse_control(spec: &[u8]) -> Result<LdifControl, ParseProblem> {
    let spec = trim_spaces(spec);
    let oid_len = spec
        .iter()
        .position(|&b| b == b' ' || b == b':')
        .unwrap_or(spec.len());
    let (oid, rest) = spec.split_at(oid_len);
    if oid.is_empty() || !oid.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return Err(ParseProblem::InvalidControl(
            "the control type must be a numeric OID",
        ));
    }
    let oid = String::from_utf8_lossy(oid).into_owned();
    let mut rest = skip_spaces(rest);
    let mut critical = false;
    for (word, flag) in [(&b"true"[..], true), (&b"false"[..], false)] {
        if starts_with_ci(rest, word) && matches!(rest.get(word.len()), None | Some(b' ' | b':')) {
            critical = flag;
            rest = skip_spaces(&rest[word.len()..]);
            break;
        }
    }
    let value = match rest.split_first() {
        None => None,
        Some((b':', value_spec)) => Some(parse_value_spec(value_spec, "control")?),
        Some(_) => {
            return Err(ParseProblem::InvalidControl(
                "expected 'true', 'false' or a ':' value after the OID",
            ));
        }
    };
    Ok(LdifControl {
        oid,
        critical,
        value,
    })
}

/// The attribute description if `name` is one LDIF can carry: an attribute type (name or
/// OID) with `;options`. `_` is tolerated because some deployed schemas use it.
fn attr_name(name: &[u8]) -> Option<&str> {
    let valid = !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b';'));
    if valid {
        std::str::from_utf8(name).ok()
    } else {
        None
    }
}

fn missing_colon_sep() -> ParseProblem {
    ParseProblem::MissingColon("-".to_owned())
}

fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let bytes = skip_spaces(bytes);
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Input text for an error message: at most 40 bytes, control characters escaped.
fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut out = String::with_capacity(text.len() + 3);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

// ---------------------------------------------------------------------------------------
// Writing

/// Appends `name: value` (or `name:: base64`, or `name:` when empty) to `out`, folded.
/// `line` is scratch space, reused across calls.
fn push_attr_line(out: &mut Vec<u8>, line: &mut String, name: &str, value: &[u8]) {
    line.clear();
    line.push_str(name);
    if value.is_empty() {
        line.push(':');
    } else if let Some(text) = safe_text(value) {
        line.push_str(": ");
        line.push_str(text);
    } else {
        line.push_str(":: ");
        STANDARD.encode_string(value, line);
    }
    push_folded(out, line.as_bytes());
}

/// `value` as text if it may be written plainly: printable ASCII (RFC 2849's SAFE-STRING
/// minus control characters, which survive editors and terminals better in base64), not
/// starting with a space, ':' or '<', and not ending with a space, which readers may trim.
fn safe_text(value: &[u8]) -> Option<&str> {
    let (first, last) = (value.first()?, value.last()?);
    if matches!(first, b' ' | b':' | b'<') || *last == b' ' {
        return None;
    }
    if !value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// Appends `line` and LF, folded so that no physical line exceeds [`FOLD_WIDTH`] bytes.
fn push_folded(out: &mut Vec<u8>, line: &[u8]) {
    let (first, mut rest) = line.split_at(line.len().min(FOLD_WIDTH));
    out.extend_from_slice(first);
    out.push(b'\n');
    while !rest.is_empty() {
        // The leading space of a continuation line counts towards the width.
        let (chunk, tail) = rest.split_at(rest.len().min(FOLD_WIDTH - 1));
        out.push(b' ');
        out.extend_from_slice(chunk);
        out.push(b'\n');
        rest = tail;
    }
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<Result<LdifRecord, LdifError>> {
        LdifReader::new(input).collect()
    }

    fn records(input: &[u8]) -> Vec<LdifRecord> {
        read_all(input)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("unexpected error: {e}")))
            .collect()
    }

    fn entries(input: &[u8]) -> Vec<LdifEntry> {
        records(input)
            .into_iter()
            .map(|r| match r {
                LdifRecord::Entry(e) => e,
                LdifRecord::Change(c) => panic!("expected an entry, got {c:?}"),
            })
            .collect()
    }

    fn change(input: &[u8]) -> LdifChange {
        match records(input).as_slice() {
            [LdifRecord::Change(c)] => c.clone(),
            other => panic!("expected one change record, got {other:?}"),
        }
    }

    /// The first error the reader reports.
    fn first_error(input: &[u8]) -> LdifError {
        read_all(input)
            .into_iter()
            .find_map(Result::err)
            .expect("expected an error")
    }

    fn problem(input: &[u8]) -> (usize, ParseProblem) {
        match first_error(input) {
            LdifError::Parse { line, problem } => (line, problem),
            other => panic!("expected a parse error, got {other}"),
        }
    }

    fn entry(dn: &str, attrs: &[(&str, &[u8])]) -> LdifEntry {
        LdifEntry {
            dn: dn.to_owned(),
            attrs: attrs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
                .collect(),
        }
    }

    fn write(dn: &str, attrs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        write_entry(&mut out, dn, attrs).unwrap();
        out
    }

    // --- reading: structure -------------------------------------------------------------

    #[test]
    fn reads_entries_with_version() {
        let input = b"version: 1\n\ndn: cn=a,dc=example\nobjectClass: person\ncn: a\nsn: A\n\n\
                      dn: cn=b,dc=example\ncn: b\n";
        assert_eq!(
            entries(input),
            vec![
                entry(
                    "cn=a,dc=example",
                    &[("objectClass", b"person"), ("cn", b"a"), ("sn", b"A")]
                ),
                entry("cn=b,dc=example", &[("cn", b"b")]),
            ]
        );
    }

    #[test]
    fn version_is_optional_and_may_share_the_first_record() {
        let expected = vec![entry("cn=a", &[("cn", b"a")])];
        assert_eq!(entries(b"dn: cn=a\ncn: a\n"), expected);
        assert_eq!(entries(b"version: 1\ndn: cn=a\ncn: a\n"), expected);
        assert_eq!(
            entries(b"# header\n\nVersion:  1\n\n\ndn: cn=a\ncn: a\n"),
            expected
        );
        assert!(records(b"version: 1\n").is_empty());
        assert!(records(b"").is_empty());
    }

    #[test]
    fn unsupported_version_is_an_error() {
        assert_eq!(
            problem(b"version: 2\n\ndn: cn=a\ncn: a\n"),
            (1, ParseProblem::UnsupportedVersion("2".to_owned()))
        );
    }

    #[test]
    fn version_after_the_first_record_is_not_special() {
        let (line, p) = problem(b"dn: cn=a\ncn: a\n\nversion: 1\n");
        assert_eq!(line, 4);
        assert!(matches!(p, ParseProblem::MissingDn(_)));
    }

    #[test]
    fn skips_comments_including_folded_ones() {
        let input = b"# a comment\n#  folded\n  comment that says dn: nothing\ndn: cn=a\n\
                      # inside a record\n continued\ncn: a\n#last\n";
        assert_eq!(entries(input), vec![entry("cn=a", &[("cn", b"a")])]);
    }

    #[test]
    fn unfolds_continuation_lines() {
        let input = b"dn: cn=a very long na\n me,dc=exam\n ple\ndescription: one\n  two\n\
                      cn:\n  spaced\n";
        assert_eq!(
            entries(input),
            vec![entry(
                "cn=a very long name,dc=example",
                &[("description", b"one two"), ("cn", b"spaced")]
            )]
        );
    }

    #[test]
    fn unfolds_inside_base64_and_utf8_sequences() {
        // "Zoë Ångström" base64-encoded and folded mid-quad, and as raw UTF-8 folded
        // between the two bytes of 'ë' (0xC3 0xAB).
        let encoded = STANDARD.encode("Zoë Ångström");
        let (head, tail) = encoded.split_at(5);
        let mut input = format!("dn: cn=z\ncn:: {head}\n {tail}\n").into_bytes();
        input.extend_from_slice(b"sn: Zo\xc3\n \xab\n");
        assert_eq!(
            entries(&input),
            vec![entry(
                "cn=z",
                &[("cn", "Zoë Ångström".as_bytes()), ("sn", "Zoë".as_bytes())]
            )]
        );
    }

    #[test]
    fn decodes_base64_values_and_dns() {
        let dn = STANDARD.encode("cn=Zoë,dc=example");
        let input =
            format!("dn:: {dn}\njpegPhoto:: AAEC/w==\nnoPad:: AAEC/w\nempty::\nblank:\ncn: a \n");
        assert_eq!(
            entries(input.as_bytes()),
            vec![entry(
                "cn=Zoë,dc=example",
                &[
                    ("jpegPhoto", &[0, 1, 2, 255]),
                    ("noPad", &[0, 1, 2, 255]),
                    ("empty", b""),
                    ("blank", b""),
                    // Trailing spaces of plain values are kept: they are what was written.
                    ("cn", b"a "),
                ]
            )]
        );
    }

    #[test]
    fn keeps_attribute_options_and_case() {
        let input = b"dn: cn=a\nuserCertificate;binary:: AAE=\nCN;lang-en: a\n";
        assert_eq!(
            entries(input),
            vec![entry(
                "cn=a",
                &[("userCertificate;binary", &[0, 1]), ("CN;lang-en", b"a")]
            )]
        );
    }

    #[test]
    fn accepts_crlf_line_endings() {
        let input = b"version: 1\r\n\r\ndn: cn=a\r\ncn: fo\r\n o\r\n\r\n\r\ndn: cn=b\r\ncn: b\r\n";
        assert_eq!(
            entries(input),
            vec![
                entry("cn=a", &[("cn", b"foo")]),
                entry("cn=b", &[("cn", b"b")]),
            ]
        );
    }

    #[test]
    fn accepts_many_blank_lines_and_no_final_newline() {
        let input = b"\n\n\ndn: cn=a\ncn: a\n\n\n\n\ndn: cn=b\ncn: b";
        assert_eq!(
            entries(input),
            vec![
                entry("cn=a", &[("cn", b"a")]),
                entry("cn=b", &[("cn", b"b")]),
            ]
        );
        assert_eq!(
            entries(b"dn: cn=a\ncn: a\n b"),
            vec![entry("cn=a", &[("cn", b"ab")])]
        );
    }

    #[test]
    fn entry_may_have_no_attributes() {
        assert_eq!(entries(b"dn: cn=a\n\n"), vec![entry("cn=a", &[])]);
    }

    #[test]
    fn control_lines_without_changetype_are_attributes() {
        assert_eq!(
            entries(b"dn: cn=a\ncontrol: x\ncn: a\n"),
            vec![entry("cn=a", &[("control", b"x"), ("cn", b"a")])]
        );
    }

    // --- reading: change records --------------------------------------------------------

    #[test]
    fn reads_change_add_and_delete() {
        let input = b"dn: cn=a\nchangetype: add\ncn: a\nobjectClass: top\n\n\
                      dn: cn=b\nChangeType: Delete\n";
        assert_eq!(
            records(input),
            vec![
                LdifRecord::Change(LdifChange {
                    dn: "cn=a".to_owned(),
                    controls: vec![],
                    kind: ChangeKind::Add(vec![
                        ("cn".to_owned(), b"a".to_vec()),
                        ("objectClass".to_owned(), b"top".to_vec()),
                    ]),
                }),
                LdifRecord::Change(LdifChange {
                    dn: "cn=b".to_owned(),
                    controls: vec![],
                    kind: ChangeKind::Delete,
                }),
            ]
        );
    }

    #[test]
    fn reads_modify_blocks() {
        let input = b"dn: cn=a\nchangetype: modify\nadd: mail\nmail: a@x\nmail: b@x\n-\n\
                      delete: description\n-\nreplace: userCertificate;binary\n\
                      userCertificate;binary:: AAE=\n-\nincrement: uidNumber\nuidNumber: 1\n-\n\
                      replace: cn\ncn: b\n";
        let c = change(input);
        assert_eq!(
            c.kind,
            ChangeKind::Modify(vec![
                Modification {
                    op: ModOp::Add,
                    attr: "mail".to_owned(),
                    values: vec![b"a@x".to_vec(), b"b@x".to_vec()],
                },
                Modification {
                    op: ModOp::Delete,
                    attr: "description".to_owned(),
                    values: vec![],
                },
                Modification {
                    op: ModOp::Replace,
                    attr: "userCertificate;binary".to_owned(),
                    values: vec![vec![0, 1]],
                },
                Modification {
                    op: ModOp::Increment,
                    attr: "uidNumber".to_owned(),
                    values: vec![b"1".to_vec()],
                },
                // The final '-' is missing: accepted at the end of the record.
                Modification {
                    op: ModOp::Replace,
                    attr: "cn".to_owned(),
                    values: vec![b"b".to_vec()],
                },
            ])
        );
        assert_eq!(
            change(b"dn: cn=a\nchangetype: modify\n").kind,
            ChangeKind::Modify(vec![])
        );
    }

    #[test]
    fn reads_modrdn_and_moddn() {
        let c = change(b"dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n");
        assert_eq!(
            c.kind,
            ChangeKind::ModDn {
                new_rdn: "cn=b".to_owned(),
                delete_old_rdn: true,
                new_superior: None,
            }
        );
        let rdn = STANDARD.encode("cn=Zoë");
        let input = format!(
            "dn: cn=a,dc=x\nchangetype: moddn\nnewrdn:: {rdn}\ndeleteoldrdn: 0\n\
             newsuperior: ou=people,dc=x\n"
        );
        assert_eq!(
            change(input.as_bytes()).kind,
            ChangeKind::ModDn {
                new_rdn: "cn=Zoë".to_owned(),
                delete_old_rdn: false,
                new_superior: Some("ou=people,dc=x".to_owned()),
            }
        );
    }

    #[test]
    fn keeps_controls_of_change_records() {
        let input = b"dn: cn=a\ncontrol: 1.2.840.113556.1.4.805 true\n\
                      control: 1.2.3 false: plain\ncontrol: 1.2.4:: AAE=\ncontrol: 1.2.5\n\
                      changetype: delete\n";
        assert_eq!(
            change(input).controls,
            vec![
                LdifControl {
                    oid: "1.2.840.113556.1.4.805".to_owned(),
                    critical: true,
                    value: None,
                },
                LdifControl {
                    oid: "1.2.3".to_owned(),
                    critical: false,
                    value: Some(b"plain".to_vec()),
                },
                LdifControl {
                    oid: "1.2.4".to_owned(),
                    critical: false,
                    value: Some(vec![0, 1]),
                },
                LdifControl {
                    oid: "1.2.5".to_owned(),
                    critical: false,
                    value: None,
                },
            ]
        );
    }

    // --- reading: errors ----------------------------------------------------------------

    #[test]
    fn missing_dn_is_an_error() {
        assert_eq!(
            problem(b"dn: cn=a\ncn: a\n\ncn: b\nsn: b\n"),
            (4, ParseProblem::MissingDn("cn: b".to_owned()))
        );
    }

    #[test]
    fn line_without_colon_is_an_error() {
        assert_eq!(
            problem(b"dn: cn=a\ncn a\n"),
            (2, ParseProblem::MissingColon("cn a".to_owned()))
        );
        assert_eq!(
            problem(b"dn: cn=a\ncn: a\n-\n"),
            (3, ParseProblem::MissingColon("-".to_owned()))
        );
    }

    #[test]
    fn bad_base64_is_an_error_naming_line_and_attribute() {
        let err = first_error(b"dn: cn=a\ncn: a\njpegPhoto:: AA!=\n");
        assert_eq!(err.line(), 3);
        assert_eq!(
            err.to_string(),
            "line 3: invalid base64 in value of 'jpegPhoto'"
        );
        assert_eq!(
            problem(b"dn:: ***\n"),
            (1, ParseProblem::InvalidBase64("dn".to_owned()))
        );
    }

    #[test]
    fn url_values_are_refused() {
        let err = first_error(b"dn: cn=a\njpegPhoto:< file:///etc/passwd\n");
        assert_eq!(err.line(), 2);
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn unknown_changetype_is_an_error() {
        assert_eq!(
            problem(b"dn: cn=a\nchangetype: rename\n"),
            (2, ParseProblem::UnknownChangeType("rename".to_owned()))
        );
    }

    #[test]
    fn continuation_without_a_line_is_an_error() {
        assert_eq!(
            problem(b" dn: cn=a\ncn: a\n"),
            (1, ParseProblem::OrphanContinuation)
        );
        assert_eq!(
            problem(b"dn: cn=a\ncn: a\n\n more\n"),
            (4, ParseProblem::OrphanContinuation)
        );
    }

    #[test]
    fn non_utf8_dn_or_attribute_name_is_an_error() {
        assert_eq!(
            problem(b"dn: cn=\xff\ncn: a\n"),
            (1, ParseProblem::NotUtf8("dn".to_owned()))
        );
        let dn = STANDARD.encode(b"cn=\xc3");
        assert_eq!(
            problem(format!("dn:: {dn}\n").as_bytes()),
            (1, ParseProblem::NotUtf8("dn".to_owned()))
        );
        let (line, p) = problem(b"dn: cn=a\nc\xffn: a\n");
        assert_eq!(line, 2);
        assert!(matches!(p, ParseProblem::InvalidAttrName(_)), "{p:?}");
        let (line, p) = problem(b"dn: cn=a\ncn : a\n");
        assert_eq!(line, 2);
        assert!(matches!(p, ParseProblem::InvalidAttrName(_)), "{p:?}");
    }

    #[test]
    fn malformed_change_records_are_errors() {
        let cases: &[(&[u8], usize, ParseProblem)] = &[
            (b"dn: a\nchangetype: add\n", 2, ParseProblem::EmptyAdd),
            (
                b"dn: a\nchangetype: delete\ncn: a\n",
                3,
                ParseProblem::UnexpectedLine {
                    found: "cn".to_owned(),
                    changetype: "delete",
                },
            ),
            (
                b"dn: a\nchangetype: modify\ncn: a\n",
                3,
                ParseProblem::ExpectedModOp("cn".to_owned()),
            ),
            (
                b"dn: a\nchangetype: modify\nadd: cn\ncn: a\nsn: b\n",
                5,
                ParseProblem::ModAttrMismatch {
                    expected: "cn".to_owned(),
                    found: "sn".to_owned(),
                },
            ),
            (
                b"dn: a\nchangetype: modify\n-\n",
                3,
                ParseProblem::StraySeparator,
            ),
            (
                b"dn: a\nchangetype: modify\nadd: c n\n",
                3,
                ParseProblem::InvalidAttrName("c n".to_owned()),
            ),
            (
                b"dn: a\nchangetype: modrdn\nnewrdn: cn=b\n",
                2,
                ParseProblem::MissingField("deleteoldrdn"),
            ),
            (
                b"dn: a\nchangetype: modrdn\ndeleteoldrdn: 1\n",
                2,
                ParseProblem::MissingField("newrdn"),
            ),
            (
                b"dn: a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: yes\n",
                4,
                ParseProblem::InvalidDeleteOldRdn("yes".to_owned()),
            ),
            (
                b"dn: a\nchangetype: modrdn\nnewrdn: cn=b\nnewrdn: cn=c\n",
                4,
                ParseProblem::DuplicateField("newrdn"),
            ),
            (
                b"dn: a\ncontrol: true\nchangetype: delete\n",
                2,
                ParseProblem::InvalidControl("the control type must be a numeric OID"),
            ),
        ];
        for (input, line, expected) in cases {
            assert_eq!(
                problem(input),
                (*line, expected.clone()),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn resumes_at_the_next_record_after_an_error() {
        let input = b"dn: cn=a\ncn: a\nbad line\ncn: more\n\ndn: cn=b\ncn: b\n\n\
                      dn: cn=c\nchangetype: add\n\ndn: cn=d\ncn: d\n";
        let results = read_all(input);
        assert_eq!(results.len(), 4);
        assert_eq!(results[0].as_ref().map_err(LdifError::line).err(), Some(3));
        assert_eq!(
            results[1].as_ref().ok(),
            Some(&LdifRecord::Entry(entry("cn=b", &[("cn", b"b")])))
        );
        assert_eq!(results[2].as_ref().map_err(LdifError::line).err(), Some(10));
        assert_eq!(
            results[3].as_ref().ok(),
            Some(&LdifRecord::Entry(entry("cn=d", &[("cn", b"d")])))
        );
    }

    #[test]
    fn io_error_is_its_own_variant_and_ends_the_stream() {
        struct Failing {
            served: bool,
        }
        impl io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.served {
                    return Err(io::Error::other("disk on fire"));
                }
                self.served = true;
                let data = b"dn: cn=a\ncn: a\n\ndn: cn=b\n";
                buf[..data.len()].copy_from_slice(data);
                Ok(data.len())
            }
        }
        let reader = io::BufReader::new(Failing { served: false });
        let results: Vec<_> = LdifReader::new(reader).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        match &results[1] {
            Err(LdifError::Io { line, source }) => {
                assert_eq!(*line, 5);
                assert_eq!(source.to_string(), "disk on fire");
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn reports_progress() {
        let input = b"dn: cn=a\ncn: a\n\ndn: cn=b\ncn: b\n";
        let mut reader = LdifReader::new(&input[..]);
        assert_eq!((reader.line(), reader.bytes_read()), (0, 0));
        assert!(reader.next().is_some());
        assert_eq!(reader.line(), 3);
        assert!(reader.next().is_some());
        assert!(reader.next().is_none());
        assert_eq!(reader.line(), 5);
        assert_eq!(reader.bytes_read(), input.len() as u64);
        assert!(reader.next().is_none());
    }

    // --- writing ------------------------------------------------------------------------

    #[test]
    fn writes_plain_and_base64_values() {
        let out = write(
            "cn=a,dc=example",
            &[
                ("cn", b"a"),
                ("empty", b""),
                ("lead", b" x"),
                ("colon", b":x"),
                ("lt", b"<x"),
                ("trail", b"x "),
                ("utf8", "é".as_bytes()),
                ("ctrl", b"a\tb"),
                ("nul", b"a\0"),
                ("cr", b"a\rb"),
                ("lf", b"a\nb"),
                ("del", b"a\x7f"),
                ("inner", b"a :<b"),
            ],
        );
        let expected = "dn: cn=a,dc=example\ncn: a\nempty:\nlead:: IHg=\ncolon:: Ong=\n\
                        lt:: PHg=\ntrail:: eCA=\nutf8:: w6k=\nctrl:: YQli\nnul:: YQA=\n\
                        cr:: YQ1i\nlf:: YQpi\ndel:: YX8=\ninner: a :<b\n\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn writes_dn_in_base64_when_needed() {
        assert!(write("cn=Zoë", &[]).starts_with(b"dn:: Y249Wm/Dqw==\n"));
        assert!(write(" cn=a", &[]).starts_with(b"dn:: "));
        assert_eq!(write("", &[]), b"dn:\n\n");
        let mut out = Vec::new();
        write_version(&mut out).unwrap();
        assert_eq!(out, b"version: 1\n\n");
    }

    #[test]
    fn folds_at_exactly_76_columns() {
        // "description: " is 13 bytes, so a 63-byte value fills 76 columns exactly.
        let fits = "x".repeat(63);
        let out = write("cn=a", &[("description", fits.as_bytes())]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("dn: cn=a\ndescription: {fits}\n\n")
        );

        let over = "x".repeat(64);
        let out = write("cn=a", &[("description", over.as_bytes())]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("dn: cn=a\ndescription: {}\n x\n\n", "x".repeat(63))
        );

        let long: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let out = write("cn=a", &[("jpegPhoto", &long)]);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        assert!(lines.iter().all(|l| l.len() <= FOLD_WIDTH));
        // Every full line is exactly 76 bytes, continuation lines included.
        let full = lines.iter().filter(|l| l.len() == FOLD_WIDTH).count();
        assert!(full > 80, "{full}");
        assert_eq!(entries(&out), vec![entry("cn=a", &[("jpegPhoto", &long)])]);
    }

    #[test]
    fn writer_refuses_names_ldif_cannot_carry() {
        let mut out = Vec::new();
        for name in ["", "c n", "cn:", "cn\n", "é"] {
            let err = write_entry(&mut out, "cn=a", &[(name, b"x")]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let err = write_entry(
            &mut out,
            "cn=a",
            &[("control", b"1.2.3"), ("changeType", b"delete")],
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
        write_entry(&mut out, "cn=a", &[("cn", b"a"), ("changetype", b"x")]).unwrap();
    }

    #[test]
    fn round_trips_awkward_values() {
        let binary: Vec<u8> = (0..=255u8).collect();
        let long_text = "word ".repeat(40);
        let long_text = long_text.trim_end();
        let attrs: Vec<(&str, &[u8])> = vec![
            ("objectClass", b"top"),
            ("cn", b"plain"),
            ("cn", b""),
            ("description", b" leading space"),
            ("description", b"trailing space "),
            ("description", b":colon"),
            ("description", b"<less"),
            ("description", b"#hash"),
            ("description", b"-"),
            ("description", "Zoë Ångström 日本".as_bytes()),
            ("description", b"tab\there"),
            ("description", b"nul\0byte"),
            ("description", b"cr\rlf\ncrlf\r\n"),
            ("description", b"\n"),
            ("description", b" "),
            ("description", long_text.as_bytes()),
            ("jpegPhoto", &binary),
            ("userCertificate;binary", &[0xff, 0xfe, 0x00]),
        ];
        let dns = ["cn=plain,dc=example", "cn=Zoë,dc=example", " cn=x ", ""];
        let mut out = Vec::new();
        write_version(&mut out).unwrap();
        for dn in dns {
            write_entry(&mut out, dn, &attrs).unwrap();
        }
        let expected: Vec<LdifEntry> = dns.iter().map(|dn| entry(dn, &attrs)).collect();
        assert_eq!(entries(&out), expected);
    }

    // --- randomised -----------------------------------------------------------------------

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            const INTERESTING: &[u8] = b"  ::<<#-\n\r\0\t\x7f\x80\xc3\xa9\xffaZ09=+/";
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| match self.below(3) {
                    0 => *self.pick(INTERESTING),
                    _ => self.next() as u8,
                })
                .collect()
        }
    }

    #[test]
    fn random_entries_round_trip() {
        let names = [
            "cn",
            "objectClass",
            "jpegPhoto",
            "userCertificate;binary",
            "control",
            "changetype",
            "dn",
            "x-1.2_3",
            "2.5.4.3",
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for _ in 0..300 {
            let dn = String::from_utf8_lossy(&rng.bytes(90)).into_owned();
            let attrs: Vec<(String, Vec<u8>)> = (0..rng.below(8))
                .map(|_| ((*rng.pick(&names)).to_owned(), rng.bytes(200)))
                .collect();
            let borrowed: Vec<(&str, &[u8])> = attrs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let mut out = Vec::new();
            match write_entry(&mut out, &dn, &borrowed) {
                Ok(()) => {
                    assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= FOLD_WIDTH));
                    let expected = LdifEntry {
                        dn: dn.clone(),
                        attrs: attrs.clone(),
                    };
                    assert_eq!(entries(&out), vec![expected]);
                }
                // Only a leading `changetype` is refused.
                Err(_) => assert!(
                    attrs
                        .iter()
                        .find(|(n, _)| n != "control")
                        .is_some_and(|(n, _)| n == "changetype")
                ),
            }
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let seeds: &[&[u8]] = &[
            b"version: 1\n\ndn: cn=a\ncn:: AAE=\ncn: x\n y\n# c\n\n",
            b"dn: cn=a\ncontrol: 1.2.3 true:: AAE=\nchangetype: modify\nadd: cn\ncn: a\n-\n\
              delete: sn\n-\nreplace: x\n\n",
            b"dn:: Y249YQ==\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n\
              newsuperior: dc=x\n\ndn: cn=b\nchangetype: delete\n",
            b"dn: cn=a\r\nchangetype: add\r\ncn: a\r\n\r\n",
        ];
        let mut rng = Rng(0x0dd_ba11_cafe_f00d);
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for seed in seeds {
            for cut in 0..=seed.len() {
                inputs.push(seed[..cut].to_vec());
            }
            for _ in 0..500 {
                let mut mutated = seed.to_vec();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(mutated.len());
                    match rng.below(3) {
                        0 => mutated[at] = rng.next() as u8,
                        1 => {
                            mutated.remove(at);
                        }
                        _ => mutated.insert(at, *rng.pick(b" :\n-#<")),
                    }
                }
                inputs.push(mutated);
            }
        }
        for _ in 0..2000 {
            inputs.push(rng.bytes(300));
        }
        assert!(inputs.len() > 3000);
        for input in &inputs {
            let mut reader = LdifReader::new(input.as_slice());
            let mut records = 0;
            while let Some(result) = reader.next() {
                if let Err(LdifError::Parse { line, .. }) = &result {
                    assert!(*line >= 1 && *line <= reader.line().max(1));
                }
                records += 1;
                // Each record or error consumes at least one line.
                assert!(records <= input.len() + 1);
            }
        }
    }
}
