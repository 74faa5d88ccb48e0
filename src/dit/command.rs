//! Every write as data. A [`Command`] names who writes, at what policy time, and what,
//! with everything that is not a function of the store decided beforehand: a new entry's
//! `entryUUID`, a new token's id and the hash of its secret. [`apply`] runs the
//! directory's rules on it in one write transaction, the same way wherever it runs: a
//! single server applies it at once, a cluster commits it to its Raft log and every node
//! applies it in log order (`cluster`), so every node's store comes out the same.
//!
//! Must not: read the clock, draw random numbers, or carry a secret. A token's secret
//! stays with the front end that returns it (only its hash is here); passwords arrive
//! hashed; `Debug` names the operation and its target, never values.

use std::time::Duration;

use ldap3_proto::proto::LdapResultCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{self, Event, Kind, Origin};
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::dit::caller::{self, Caller, Policy, Principal};
use crate::dit::credentials::{self, Intent};
use crate::dit::error::DitError;
use crate::dit::token::{self, Fresh, Issued, Rotated};
use crate::dit::write::{self, Change, ChangeKind, Rename};
use crate::dit::{password, tree};
use crate::store::{DirectoryRead, Writer};

/// One write: who, when (policy time), what.
#[derive(Clone, Serialize, Deserialize)]
pub struct Command {
    pub by: Who,
    /// Policy time as Unix nanoseconds (token expiry, timestamps the write sets).
    at: i128,
    pub op: Op,
    /// A cluster's proposer's fingerprint of the rules' settings (suffix, schema,
    /// `[posix]`, `[tokens]`, anonymous access, indexes): a node whose own differs applies
    /// by other rules and says so (see `cluster`). Empty on a single server.
    #[serde(default)]
    pub rules: String,
    /// Where the request came from, for the audit trail.
    #[serde(default)]
    pub origin: Origin,
}

/// Who a command runs as: the principal of the request, or the server itself (recording
/// token use, marking an exposed token, upgrading a legacy hash, the starting tree).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Who {
    Anonymous,
    Local { dn: String, admin: bool },
    Entry(String),
    Token { account: String, token_id: String },
    Proxied { target: String, read_only: bool },
    Server,
}

/// What a command does. DNs travel as text and are parsed again where it is applied.
#[derive(Clone, Serialize, Deserialize)]
pub enum Op {
    /// LDAP Add: the entry from `write::new_entry`, passwords hashed, encoded.
    Add {
        #[serde(with = "b64")]
        entry: Vec<u8>,
        uuid: String,
    },
    Modify {
        dn: String,
        changes: Vec<ChangeData>,
    },
    Delete {
        dn: String,
    },
    Rename {
        dn: String,
        new_rdn: String,
        new_superior: Option<String>,
        delete_old_rdn: bool,
    },
    /// Password Modify: the new password, hashed.
    SetPassword {
        dn: String,
        hashed: String,
    },
    GenerateToken {
        request: TokenRequest,
        fresh: Fresh,
    },
    RotateToken {
        account: String,
        token_id: String,
        overlap_secs: u64,
        fresh: Fresh,
    },
    /// Token uses gathered on a node: (token id, Unix nanoseconds), merged with max().
    RecordUses {
        uses: Vec<(String, i128)>,
    },
    /// A valid token sent in cleartext (checked where it was presented).
    MarkExposed {
        token_id: String,
        revoke: bool,
    },
    /// An imported legacy hash replaced by argon2id after a successful bind.
    Rehash {
        dn: String,
        hashed: String,
    },
    /// Create what is missing of the starting tree (`dit::tree`).
    Bootstrap {
        uuids: Vec<String>,
    },
    /// Several writes in one transaction, in order: all of them or none (an API request
    /// that adds an entry and puts it in groups, or deletes an account with its tokens).
    /// The outcome is the last one's.
    Batch {
        ops: Vec<Op>,
    },
}

/// One change of a Modify, as data.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChangeData {
    pub kind: ChangeKindData,
    pub name: String,
    #[serde(with = "b64_list")]
    pub values: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKindData {
    Add,
    Delete,
    Replace,
    Increment,
}

/// A token generation request, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub account: String,
    pub label: String,
    pub read_write: bool,
    pub expires: Option<String>,
    pub intent: String,
    pub extend_on_use: Option<u64>,
}

/// What a command did, for the front end's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Issued(Issued),
    Rotated(Rotated),
    /// Whether an exposed token was still there to mark.
    Marked(bool),
    /// Entries created (the starting tree) or tokens whose use was written.
    Count(usize),
}

/// A refusal, as data: a `DitError` that crossed from the node that applied the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: i64,
    pub matched_dn: String,
    pub message: String,
    /// For a refusal by the control rule: its reason, structured (front ends word it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<Box<crate::dit::error::Refusal>>,
}

/// What applying a command gives: its outcome, or why the rules refused it.
pub type Applied = Result<Outcome, Refusal>;

impl Command {
    /// A command run as `principal` at policy time `now`.
    pub fn new(principal: &Principal, now: OffsetDateTime, op: Op) -> Command {
        Command {
            by: Who::from(principal),
            at: now.unix_timestamp_nanos(),
            op,
            rules: String::new(),
            origin: Origin::internal(),
        }
    }

    /// A command the server runs on its own behalf.
    pub fn server(now: OffsetDateTime, op: Op) -> Command {
        Command {
            by: Who::Server,
            at: now.unix_timestamp_nanos(),
            op,
            rules: String::new(),
            origin: Origin::internal(),
        }
    }

    /// The same command, recorded as coming from `origin`.
    pub fn from(mut self, origin: &Origin) -> Command {
        self.origin = origin.clone();
        self
    }

    /// The policy time it runs at.
    pub fn at(&self) -> OffsetDateTime {
        to_time(self.at)
    }

    /// Does it take away access (a revocation, a deletion, a changed password or
    /// entry)? A cluster acknowledges such a write only once every node that may still
    /// answer binds has applied it (see `cluster`), so a revoked token or an old password
    /// stops working everywhere at once.
    pub fn restricts(&self) -> bool {
        self.op.restricts()
    }

    /// The operation's name, for logs.
    pub fn name(&self) -> &'static str {
        self.op.name()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("by", &self.by)
            .field("at", &self.at)
            .field("op", &self.op)
            .finish()
    }
}

impl std::fmt::Debug for Op {
    /// The operation and its target; never values (hashes, attribute values).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match self {
            Op::Add { entry, .. } => Entry::decode_dn(entry)
                .map(|dn| dn.to_string())
                .unwrap_or_default(),
            Op::Modify { dn, .. }
            | Op::Delete { dn }
            | Op::Rename { dn, .. }
            | Op::SetPassword { dn, .. }
            | Op::Rehash { dn, .. } => dn.clone(),
            Op::GenerateToken { request, .. } => request.account.clone(),
            Op::RotateToken { account, .. } => account.clone(),
            Op::MarkExposed { token_id, .. } => token_id.clone(),
            Op::RecordUses { uses } => format!("{} tokens", uses.len()),
            Op::Bootstrap { .. } => String::new(),
            Op::Batch { ops } => {
                let parts: Vec<String> = ops.iter().map(|op| format!("{op:?}")).collect();
                parts.join(", ")
            }
        };
        write!(f, "{}({target})", self.name())
    }
}

impl Op {
    fn restricts(&self) -> bool {
        match self {
            Op::Batch { ops } => ops.iter().any(Op::restricts),
            Op::Add { .. }
            | Op::GenerateToken { .. }
            | Op::RecordUses { .. }
            | Op::Rehash { .. }
            | Op::Bootstrap { .. } => false,
            _ => true,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Modify { .. } => "modify",
            Op::Delete { .. } => "delete",
            Op::Rename { .. } => "rename",
            Op::SetPassword { .. } => "set-password",
            Op::GenerateToken { .. } => "generate-token",
            Op::RotateToken { .. } => "rotate-token",
            Op::RecordUses { .. } => "record-token-uses",
            Op::MarkExposed { .. } => "mark-token-exposed",
            Op::Rehash { .. } => "rehash-password",
            Op::Bootstrap { .. } => "bootstrap",
            Op::Batch { .. } => "batch",
        }
    }

    /// An Add of `entry` (finished by `write::new_entry`, passwords hashed), with a new
    /// `entryUUID`.
    pub fn add(entry: &Entry) -> Op {
        Op::Add {
            entry: entry.encode(),
            uuid: crate::dit::entry::new_uuid(),
        }
    }

    pub fn modify(dn: &Dn, changes: Vec<Change>) -> Op {
        Op::Modify {
            dn: dn.to_string(),
            changes: changes.into_iter().map(ChangeData::from).collect(),
        }
    }

    pub fn generate_token(request: &token::Request, fresh: Fresh) -> Op {
        Op::GenerateToken {
            request: TokenRequest {
                account: request.account.to_string(),
                label: request.label.clone(),
                read_write: request.read_write,
                expires: request.expires.clone(),
                intent: request.intent.as_str().to_string(),
                extend_on_use: request.extend_on_use,
            },
            fresh,
        }
    }

    /// The starting tree, with new `entryUUID`s for whatever is missing of it.
    pub fn bootstrap() -> Op {
        Op::Bootstrap {
            uuids: (0..tree::wanted_count())
                .map(|_| crate::dit::entry::new_uuid())
                .collect(),
        }
    }
}

/// Run `command` through the directory's rules in the write transaction `w`, with the
/// node's `policy` at the command's time. Deterministic: the same command on the same
/// store gives the same store and the same outcome on every node.
pub fn apply(w: &mut Writer<'_>, policy: &Policy, command: &Command) -> Result<Outcome, DitError> {
    let mut policy = policy.clone().from(&command.origin);
    policy.now = command.at();
    run(w, &policy, command, &command.op)
}

fn run(
    w: &mut Writer<'_>,
    policy: &Policy,
    command: &Command,
    op: &Op,
) -> Result<Outcome, DitError> {
    match op {
        Op::Batch { ops } => {
            let mut outcome = Outcome::Done;
            for op in ops {
                outcome = run(w, policy, command, op)?;
            }
            Ok(outcome)
        }
        Op::Add { entry, uuid } => {
            let caller = command.caller(w, policy)?;
            let new = Entry::decode(entry)
                .map_err(|e| DitError::protocol(format!("the entry does not decode: {e}")))?;
            write::add(w, policy, &caller, new, uuid)?;
            Ok(Outcome::Done)
        }
        Op::Modify { dn, changes } => {
            let caller = command.caller(w, policy)?;
            let changes: Vec<Change> = changes.iter().cloned().map(Change::from).collect();
            write::modify(w, policy, &caller, &parse(dn)?, &changes)?;
            Ok(Outcome::Done)
        }
        Op::Delete { dn } => {
            let caller = command.caller(w, policy)?;
            write::delete(w, policy, &caller, &parse(dn)?)?;
            Ok(Outcome::Done)
        }
        Op::Rename {
            dn,
            new_rdn,
            new_superior,
            delete_old_rdn,
        } => {
            let caller = command.caller(w, policy)?;
            let rename = Rename {
                dn: parse(dn)?,
                new_rdn: Rdn::parse(new_rdn)?,
                new_superior: new_superior.as_deref().map(parse).transpose()?,
                delete_old_rdn: *delete_old_rdn,
            };
            write::rename(w, policy, &caller, &rename)?;
            Ok(Outcome::Done)
        }
        Op::SetPassword { dn, hashed } => {
            let caller = command.caller(w, policy)?;
            password::set(w, policy, &caller, &parse(dn)?, hashed.clone())?;
            Ok(Outcome::Done)
        }
        Op::GenerateToken { request, fresh } => {
            let caller = command.caller(w, policy)?;
            let request = request.to_request()?;
            let issued = token::generate(w, policy, &caller, &request, fresh)?;
            Ok(Outcome::Issued(issued))
        }
        Op::RotateToken {
            account,
            token_id,
            overlap_secs,
            fresh,
        } => {
            let caller = command.caller(w, policy)?;
            let overlap = Duration::from_secs(*overlap_secs);
            let rotated = token::rotate(
                w,
                policy,
                &caller,
                &parse(account)?,
                token_id,
                overlap,
                fresh,
            )?;
            Ok(Outcome::Rotated(rotated))
        }
        Op::RecordUses { uses } => {
            let uses: Vec<(String, OffsetDateTime)> = uses
                .iter()
                .map(|(id, at)| (id.clone(), to_time(*at)))
                .collect();
            let max = credentials::max_lifetime(&policy.config);
            Ok(Outcome::Count(credentials::record_uses(w, &uses, max)?))
        }
        Op::MarkExposed { token_id, revoke } => {
            let Some(account) = credentials::mark_exposed(w, token_id, policy.now, *revoke)? else {
                return Ok(Outcome::Marked(false));
            };
            let event = Event::new(Kind::TokenExposed)
                .target(&account)
                .token(token_id)
                .detail(if *revoke {
                    "revoked"
                } else {
                    "marked tokenExposed"
                });
            audit::write(w, policy.now, &policy.origin, event)?;
            Ok(Outcome::Marked(true))
        }
        Op::Rehash { dn, hashed } => {
            if let Some((id, old)) = w.entry_by_dn(&parse(dn)?)? {
                let mut entry = old.clone();
                entry.set("userPassword", vec![hashed.clone().into_bytes()]);
                w.replace(id, &old, &entry)?;
            }
            Ok(Outcome::Done)
        }
        Op::Bootstrap { uuids } => Ok(Outcome::Count(tree::create_missing(
            w,
            &policy.schema,
            &policy.suffix,
            policy.now,
            uuids,
        )?)),
    }
}

impl Command {
    /// The caller, resolved inside the transaction as of the command's time.
    fn caller(&self, w: &Writer<'_>, policy: &Policy) -> Result<Caller, DitError> {
        let principal = self.by.principal()?;
        caller::caller(w, &principal, policy)
    }
}

impl Who {
    fn principal(&self) -> Result<Principal, DitError> {
        Ok(match self {
            Who::Anonymous | Who::Server => Principal::Anonymous,
            Who::Local { dn, admin } => Principal::Local {
                dn: parse(dn)?,
                admin: *admin,
            },
            Who::Entry(dn) => Principal::Entry(parse(dn)?),
            Who::Token { account, token_id } => Principal::Token {
                account: parse(account)?,
                token_id: token_id.clone(),
            },
            Who::Proxied { target, read_only } => Principal::Proxied {
                target: parse(target)?,
                read_only: *read_only,
            },
        })
    }
}

impl From<&Principal> for Who {
    fn from(p: &Principal) -> Who {
        match p {
            Principal::Anonymous => Who::Anonymous,
            Principal::Local { dn, admin } => Who::Local {
                dn: dn.to_string(),
                admin: *admin,
            },
            Principal::Entry(dn) => Who::Entry(dn.to_string()),
            Principal::Token { account, token_id } => Who::Token {
                account: account.to_string(),
                token_id: token_id.clone(),
            },
            Principal::Proxied { target, read_only } => Who::Proxied {
                target: target.to_string(),
                read_only: *read_only,
            },
        }
    }
}

impl TokenRequest {
    fn to_request(&self) -> Result<token::Request, DitError> {
        Ok(token::Request {
            account: parse(&self.account)?,
            label: self.label.clone(),
            read_write: self.read_write,
            expires: self.expires.clone(),
            intent: Intent::parse(&self.intent)
                .ok_or_else(|| DitError::protocol("unknown token intent"))?,
            extend_on_use: self.extend_on_use,
        })
    }
}

impl From<Change> for ChangeData {
    fn from(c: Change) -> ChangeData {
        ChangeData {
            kind: match c.kind {
                ChangeKind::Add => ChangeKindData::Add,
                ChangeKind::Delete => ChangeKindData::Delete,
                ChangeKind::Replace => ChangeKindData::Replace,
                ChangeKind::Increment => ChangeKindData::Increment,
            },
            name: c.name,
            values: c.values,
        }
    }
}

impl From<ChangeData> for Change {
    fn from(c: ChangeData) -> Change {
        Change {
            kind: match c.kind {
                ChangeKindData::Add => ChangeKind::Add,
                ChangeKindData::Delete => ChangeKind::Delete,
                ChangeKindData::Replace => ChangeKind::Replace,
                ChangeKindData::Increment => ChangeKind::Increment,
            },
            name: c.name,
            values: c.values,
        }
    }
}

impl From<DitError> for Refusal {
    fn from(e: DitError) -> Refusal {
        Refusal {
            code: e.code as i64,
            matched_dn: e.matched_dn,
            message: e.message,
            why: e.refusal,
        }
    }
}

impl From<Refusal> for DitError {
    fn from(r: Refusal) -> DitError {
        let code = LdapResultCode::try_from(r.code).unwrap_or(LdapResultCode::Other);
        DitError {
            code,
            matched_dn: r.matched_dn,
            message: r.message,
            refusal: r.why,
        }
    }
}

fn parse(dn: &str) -> Result<Dn, DitError> {
    Ok(Dn::parse(dn)?)
}

fn to_time(nanos: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Bytes as base64 text in the serialized command.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A list of byte strings as base64 texts.
mod b64_list {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|v| STANDARD.encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .into_iter()
            .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::testing::*;

    fn run(store: &crate::store::Store, policy: &Policy, command: &Command) -> Applied {
        store
            .write_blocking(|w| apply(w, policy, command))
            .map_err(Refusal::from)
    }

    #[test]
    fn bootstrap_creates_what_is_missing_of_the_tree_and_only_that() {
        let (store, policy) = directory();
        let services = crate::dit::names::services(&policy.suffix);
        store
            .write_blocking(|w| {
                let (id, old) = w.entry_by_dn(&services)?.unwrap();
                w.delete(id, &old)
            })
            .unwrap();
        let incomplete = |s: &crate::store::Store| {
            s.read_blocking(|r| tree::incomplete(r, &policy.suffix))
                .unwrap()
        };
        assert!(incomplete(&store));
        let command = Command::server(policy.now, Op::bootstrap());
        assert_eq!(run(&store, &policy, &command), Ok(Outcome::Count(1)));
        assert!(!incomplete(&store));
        assert_eq!(run(&store, &policy, &command), Ok(Outcome::Count(0)));
    }

    #[test]
    fn a_command_survives_serialization_and_applies_the_same_on_two_stores() {
        let (one, policy) = directory();
        let (two, _) = directory();
        // Both stores start from the same content: the second is a copy of the first.
        let admin = admin();
        let entry = |dn: Dn, attrs: &[(&str, &str)]| {
            let attrs = attrs
                .iter()
                .map(|(n, v)| (n.to_string(), vec![v.as_bytes().to_vec()]))
                .collect();
            write::new_entry(&policy.schema, &policy.suffix, dn, attrs).unwrap()
        };
        let ann = entry(
            person("ann"),
            &[
                ("objectClass", "inetOrgPerson"),
                ("cn", "ann"),
                ("sn", "ann"),
            ],
        );
        let svc_dn = service("svc");
        let svc = entry(
            svc_dn.clone(),
            &[("objectClass", "tesseraServiceAccount"), ("uid", "svc")],
        );
        let (fresh, _secret) = Fresh::generate().unwrap();
        let commands = vec![
            Command::new(&admin, policy.now, Op::add(&ann)),
            Command::new(&admin, policy.now, Op::add(&svc)),
            Command::new(
                &admin,
                policy.now,
                Op::generate_token(
                    &token::Request {
                        account: svc_dn.clone(),
                        label: "ci".into(),
                        read_write: false,
                        expires: Some("1h".into()),
                        intent: Intent::ApiToken,
                        extend_on_use: None,
                    },
                    fresh.clone(),
                ),
            ),
            // Refused on both: it exists already.
            Command::new(&admin, policy.now, Op::add(&ann)),
        ];
        for command in &commands {
            let text = serde_json::to_string(command).unwrap();
            assert!(!text.contains("_secret"), "no secret in the log");
            let back: Command = serde_json::from_str(&text).unwrap();
            let a = run(&one, &policy, command);
            let b = run(&two, &policy, &back);
            assert_eq!(a, b, "{command:?}");
        }
        let export = |s: &crate::store::Store| {
            s.read_blocking(|r| {
                let mut all = Vec::new();
                for id in r.subtree(1)? {
                    if let Some(e) = r.entry(id)? {
                        all.push(e.encode());
                    }
                }
                Ok::<_, crate::store::StoreError>(all)
            })
            .unwrap()
        };
        // The starting trees differ in their entryUUIDs: compare what the commands wrote.
        let one_all = export(&one);
        let two_all = export(&two);
        assert_eq!(one_all.len(), two_all.len());
        let written = |all: &[Vec<u8>]| {
            all.iter()
                .map(|e| Entry::decode(e).unwrap())
                .filter(|e| e.dn == person("ann") || e.dn.is_within(&svc_dn))
                .map(|e| e.encode())
                .collect::<Vec<_>>()
        };
        assert_eq!(written(&one_all), written(&two_all));
        assert_eq!(written(&one_all).len(), 3);
        let debug = format!("{:?}", commands[2]);
        assert!(!debug.contains(&fresh.hash), "{debug}");
    }
}
