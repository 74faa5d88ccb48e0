//! The directory schema: attribute types and object classes, name/OID lookup, and the
//! description strings published in `cn=Subschema`. Reading `.schema` files into one is
//! `load`'s.
//!
//! It must not check entries against the schema, decide access, or know the protocol or
//! the store.

mod load;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;

use crate::directory::matching::{MatchingRule, Syntax};

/// The OID of `top`, the one object class without a superclass.
const TOP_OID: &str = "2.5.6.0";

/// Lowercased names and OIDs to positions. Looked up for every attribute of every entry a
/// search returns, so hashed with FNV-1a: the keys are short and fixed when the schema is
/// loaded, and SipHash's resistance to chosen keys buys nothing for lookups alone.
type NameIndex = HashMap<String, usize, BuildHasherDefault<Fnv>>;

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A loaded, fully resolved schema. Cheap to query; build it once at startup.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    attributes: Vec<AttributeType>,
    classes: Vec<ObjectClass>,
    /// Lowercased names and OIDs to indexes into `attributes` / `classes`.
    attribute_index: NameIndex,
    class_index: NameIndex,
    /// Every OID defined so far, and what defined it, for redefinition errors.
    defined_oids: HashMap<String, String>,
    /// `objectidentifier` macros: lowercased name to numeric OID.
    macros: HashMap<String, String>,
}

/// Why a schema could not be loaded. Every variant names the file; all but I/O the line.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Text that is not a well-formed schema statement.
    #[error("{file}:{line}: {problem}")]
    Malformed {
        file: String,
        line: usize,
        problem: String,
    },
    /// A well-formed definition that cannot be accepted: an unknown reference, a
    /// redefinition, a rule used in the wrong place...
    #[error("{file}:{line}: {subject}: {problem}")]
    Invalid {
        file: String,
        line: usize,
        subject: String,
        problem: String,
    },
    /// A drop-in directory or file that could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An attribute type (RFC 4512 4.1.2) with matching rules and syntax already inherited
/// from its superior type, and references canonicalized to the referenced type's
/// primary name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeType {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub sup: Option<String>,
    pub equality: Option<MatchingRule>,
    pub ordering: Option<MatchingRule>,
    pub substr: Option<MatchingRule>,
    pub syntax: Syntax,
    /// The `{len}` bound after the syntax OID, if any: a hint, not enforced here.
    pub syntax_len: Option<u64>,
    pub single_value: bool,
    pub collective: bool,
    pub no_user_modification: bool,
    pub usage: Usage,
    pub obsolete: bool,
    /// `X-` extensions as written, e.g. `("X-ORIGIN", ["RFC 4519"])`.
    pub extensions: Vec<(String, Vec<String>)>,
}

/// RFC 4512 attribute usage: user data, or one of the operational kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Usage {
    #[default]
    UserApplications,
    DirectoryOperation,
    DistributedOperation,
    DsaOperation,
}

/// An object class (RFC 4512 4.1.1), references canonicalized to primary names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectClass {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    /// Superclasses; a class other than `top` written without `SUP` gets `top`.
    pub sup: Vec<String>,
    pub kind: ClassKind,
    pub must: Vec<String>,
    pub may: Vec<String>,
    pub obsolete: bool,
    pub extensions: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClassKind {
    Abstract,
    #[default]
    Structural,
    Auxiliary,
}

impl Schema {
    /// The attribute type with this name (case-insensitive) or OID. Options such as
    /// `;lang-en` must be stripped by the caller.
    pub fn attribute(&self, name_or_oid: &str) -> Option<&AttributeType> {
        let index = with_lowercase(name_or_oid, |key| self.attribute_index.get(key).copied())?;
        self.attributes.get(index)
    }

    /// The object class with this name (case-insensitive) or OID.
    pub fn object_class(&self, name_or_oid: &str) -> Option<&ObjectClass> {
        let index = with_lowercase(name_or_oid, |key| self.class_index.get(key).copied())?;
        self.classes.get(index)
    }

    /// All attribute types, in load order.
    pub fn attributes(&self) -> impl Iterator<Item = &AttributeType> {
        self.attributes.iter()
    }

    /// All object classes, in load order.
    pub fn object_classes(&self) -> impl Iterator<Item = &ObjectClass> {
        self.classes.iter()
    }

    /// The class and all classes up its `SUP` chains, each once, the class first. Empty
    /// if the class is unknown.
    pub fn superclasses(&self, class: &str) -> Vec<&ObjectClass> {
        let mut out: Vec<&ObjectClass> = Vec::new();
        let mut seen = HashSet::new();
        let mut pending: Vec<&str> = vec![class];
        while let Some(name) = pending.pop() {
            let Some(found) = self.object_class(name) else {
                continue;
            };
            if !seen.insert(found.oid.as_str()) {
                continue;
            }
            out.push(found);
            pending.extend(found.sup.iter().rev().map(String::as_str));
        }
        out
    }

    /// The attribute type and every type derived from it through `SUP`, e.g. `name`
    /// gives `name`, `cn`, `sn`, ...: a filter on a supertype also matches its subtypes
    /// (RFC 4512 2.5.1). Empty if the type is unknown.
    pub fn subtypes(&self, name_or_oid: &str) -> Vec<&AttributeType> {
        let Some(root) = self.attribute(name_or_oid) else {
            return Vec::new();
        };
        self.attributes
            .iter()
            .filter(|candidate| {
                let mut current = Some(*candidate);
                // Load-time resolution rejects cycles, so every chain ends.
                while let Some(attribute) = current {
                    if attribute.oid == root.oid {
                        return true;
                    }
                    current = attribute.sup.as_deref().and_then(|sup| self.attribute(sup));
                }
                false
            })
            .collect()
    }

    /// The values of `cn=Subschema`'s description attributes (RFC 4512 4.2). Every
    /// attribute type, class, implemented matching rule and known syntax is listed;
    /// `matchingRuleUse` lists, per rule, the attribute types that name it.
    pub fn subschema_values(&self) -> Vec<(&'static str, Vec<String>)> {
        let attribute_types = self.attributes.iter().map(ToString::to_string).collect();
        let object_classes = self.classes.iter().map(ToString::to_string).collect();
        let syntaxes = Syntax::ALL.iter().map(Syntax::description).collect();
        let rules = MatchingRule::ALL
            .iter()
            .map(MatchingRule::description)
            .collect();
        let rule_uses = MatchingRule::ALL
            .iter()
            .filter_map(|rule| {
                let applies: Vec<&str> = self
                    .attributes
                    .iter()
                    .filter(|a| [a.equality, a.ordering, a.substr].contains(&Some(*rule)))
                    .map(AttributeType::name)
                    .collect();
                (!applies.is_empty()).then(|| {
                    format!(
                        "( {} NAME '{}' APPLIES {} )",
                        rule.oid(),
                        rule.name(),
                        oid_list(&applies)
                    )
                })
            })
            .collect();
        vec![
            ("attributeTypes", attribute_types),
            ("objectClasses", object_classes),
            ("ldapSyntaxes", syntaxes),
            ("matchingRules", rules),
            ("matchingRuleUse", rule_uses),
        ]
    }
}

impl AttributeType {
    /// The first name, or the OID for a type without names.
    pub fn name(&self) -> &str {
        self.names.first().map_or(self.oid.as_str(), String::as_str)
    }

    /// Operational types are returned only on request (`+` or by name).
    pub fn is_operational(&self) -> bool {
        self.usage != Usage::UserApplications
    }
}

impl ObjectClass {
    /// The first name, or the OID for a class without names.
    pub fn name(&self) -> &str {
        self.names.first().map_or(self.oid.as_str(), String::as_str)
    }
}

impl Usage {
    /// The RFC 4512 keyword.
    pub fn as_str(&self) -> &'static str {
        match self {
            Usage::UserApplications => "userApplications",
            Usage::DirectoryOperation => "directoryOperation",
            Usage::DistributedOperation => "distributedOperation",
            Usage::DsaOperation => "dSAOperation",
        }
    }

    fn from_keyword(word: &str) -> Option<Usage> {
        [
            Usage::UserApplications,
            Usage::DirectoryOperation,
            Usage::DistributedOperation,
            Usage::DsaOperation,
        ]
        .into_iter()
        .find(|usage| usage.as_str().eq_ignore_ascii_case(word))
    }
}

impl ClassKind {
    /// The RFC 4512 keyword.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClassKind::Abstract => "ABSTRACT",
            ClassKind::Structural => "STRUCTURAL",
            ClassKind::Auxiliary => "AUXILIARY",
        }
    }
}

/// The RFC 4512 `attributeTypes` value.
impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "( {}", self.oid)?;
        write_names(f, &self.names)?;
        if let Some(desc) = &self.desc {
            write!(f, " DESC {}", qdstring(desc))?;
        }
        if self.obsolete {
            f.write_str(" OBSOLETE")?;
        }
        if let Some(sup) = &self.sup {
            write!(f, " SUP {sup}")?;
        }
        for (keyword, rule) in [
            ("EQUALITY", self.equality),
            ("ORDERING", self.ordering),
            ("SUBSTR", self.substr),
        ] {
            if let Some(rule) = rule {
                write!(f, " {keyword} {}", rule.name())?;
            }
        }
        write!(f, " SYNTAX {}", self.syntax.oid())?;
        if let Some(len) = self.syntax_len {
            write!(f, "{{{len}}}")?;
        }
        for (keyword, set) in [
            ("SINGLE-VALUE", self.single_value),
            ("COLLECTIVE", self.collective),
            ("NO-USER-MODIFICATION", self.no_user_modification),
        ] {
            if set {
                write!(f, " {keyword}")?;
            }
        }
        if self.usage != Usage::UserApplications {
            write!(f, " USAGE {}", self.usage.as_str())?;
        }
        write_extensions(f, &self.extensions)?;
        f.write_str(" )")
    }
}

/// The RFC 4512 `objectClasses` value.
impl fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "( {}", self.oid)?;
        write_names(f, &self.names)?;
        if let Some(desc) = &self.desc {
            write!(f, " DESC {}", qdstring(desc))?;
        }
        if self.obsolete {
            f.write_str(" OBSOLETE")?;
        }
        if !self.sup.is_empty() {
            write!(f, " SUP {}", oid_list(&self.sup))?;
        }
        write!(f, " {}", self.kind.as_str())?;
        if !self.must.is_empty() {
            write!(f, " MUST {}", oid_list(&self.must))?;
        }
        if !self.may.is_empty() {
            write!(f, " MAY {}", oid_list(&self.may))?;
        }
        write_extensions(f, &self.extensions)?;
        f.write_str(" )")
    }
}

fn write_names(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    match names {
        [] => Ok(()),
        [name] => write!(f, " NAME {}", qdstring(name)),
        _ => {
            let quoted: Vec<String> = names.iter().map(|name| qdstring(name)).collect();
            write!(f, " NAME ( {} )", quoted.join(" "))
        }
    }
}

fn write_extensions(
    f: &mut fmt::Formatter<'_>,
    extensions: &[(String, Vec<String>)],
) -> fmt::Result {
    for (name, values) in extensions {
        let quoted: Vec<String> = values.iter().map(|value| qdstring(value)).collect();
        match quoted.as_slice() {
            [single] => write!(f, " {name} {single}")?,
            _ => write!(f, " {name} ( {} )", quoted.join(" "))?,
        }
    }
    Ok(())
}

/// `oid` or `( oid $ oid ... )`.
fn oid_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [single] => single.as_ref().to_owned(),
        _ => {
            let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
            format!("( {} )", joined.join(" $ "))
        }
    }
}

/// A quoted RFC 4512 qdstring: `'` and `\` are the only characters that need escaping.
fn qdstring(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\5C").replace('\'', "\\27"))
}

// ---------------------------------------------------------------------------------------
// Loading: files are split into statements, tokenized, parsed into raw definitions, and
// resolved together once every file of the call is parsed, so definitions may refer
// forward (system.schema's classes use core.schema's `top` and `cn`).

/// Run `f` on the ASCII-lowercase form of `name`, on the stack when it is short: schema
/// lookups happen for every attribute of every entry a search returns.
pub(super) fn with_lowercase<T>(name: &str, f: impl FnOnce(&str) -> T) -> T {
    let mut buf = [0u8; 64];
    match buf.get_mut(..name.len()) {
        Some(slot) => {
            slot.copy_from_slice(name.as_bytes());
            slot.make_ascii_lowercase();
            // ASCII case folding keeps UTF-8 valid; the fallback is never taken.
            match std::str::from_utf8(slot) {
                Ok(key) => f(key),
                Err(_) => f(&name.to_ascii_lowercase()),
            }
        }
        None => f(&name.to_ascii_lowercase()),
    }
}
