//! Distinguished names (RFC 4514): parsing, normalisation and tree relations.
//!
//! A `Dn` keeps the form the client wrote (for display) and a normalised form used for
//! every comparison and as the store key. Attribute types fold to lower case; values are
//! unescaped, trimmed, inner whitespace collapsed and case folded, which is what
//! `caseIgnoreMatch` does for every naming attribute Tessera uses (uid, cn, ou, dc, tokenId).
//! No schema and no I/O here.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DnError {
    #[error("invalid DN: {0}")]
    Syntax(&'static str),
}

/// One attribute-value assertion of an RDN, already unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdn {
    pub avas: Vec<Ava>,
}

/// Cheap to clone: DNs are copied into every caller, policy and scan.
#[derive(Clone)]
pub struct Dn(Arc<Inner>);

struct Inner {
    rdns: Vec<Rdn>,
    display: String,
    norm: String,
}

impl Dn {
    pub fn root() -> Dn {
        Dn(Arc::new(Inner {
            rdns: Vec::new(),
            display: String::new(),
            norm: String::new(),
        }))
    }

    pub fn parse(input: &str) -> Result<Dn, DnError> {
        let rdns = parse_rdns(input)?;
        Ok(Dn::from_rdns(rdns))
    }

    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        // Built in place: DNs are made for every entry read and every member value checked.
        let size: usize = rdns
            .iter()
            .flat_map(|r| &r.avas)
            .map(|a| a.attr.len() + a.value.len() + 2)
            .sum();
        let mut display = String::with_capacity(size);
        let mut norm = String::with_capacity(size);
        for (i, rdn) in rdns.iter().enumerate() {
            if i > 0 {
                display.push(',');
                norm.push(',');
            }
            write_display_rdn(rdn, &mut display);
            write_norm_rdn(rdn, &mut norm);
        }
        Dn(Arc::new(Inner {
            rdns,
            display,
            norm,
        }))
    }

    /// The form the client wrote (what `Display` shows), without a copy.
    pub fn as_str(&self) -> &str {
        &self.0.display
    }

    /// The normalised form: equal DNs have equal `norm()`.
    pub fn norm(&self) -> &str {
        &self.0.norm
    }

    pub fn is_root(&self) -> bool {
        self.0.rdns.is_empty()
    }

    pub fn rdns(&self) -> &[Rdn] {
        &self.0.rdns
    }

    pub fn rdn(&self) -> Option<&Rdn> {
        self.0.rdns.first()
    }

    pub fn parent(&self) -> Option<Dn> {
        if self.0.rdns.is_empty() {
            return None;
        }
        Some(Dn::from_rdns(self.0.rdns[1..].to_vec()))
    }

    /// The normal form of [`Dn::parent`], without building the parent: what follows the
    /// first RDN's separator (commas inside values are escaped). None for the root.
    pub fn parent_norm(&self) -> Option<&str> {
        if self.0.rdns.is_empty() {
            return None;
        }
        let norm = self.0.norm.as_bytes();
        let mut i = 0;
        while i < norm.len() {
            match norm[i] {
                b'\\' => i += 2,
                b',' => return Some(&self.0.norm[i + 1..]),
                _ => i += 1,
            }
        }
        Some("")
    }

    /// A child of `self` named by `rdn`.
    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = Vec::with_capacity(self.0.rdns.len() + 1);
        rdns.push(rdn);
        rdns.extend(self.0.rdns.iter().cloned());
        Dn::from_rdns(rdns)
    }

    /// True if `self` is `other` or lies below it.
    ///
    /// Decided on the normalised forms, without building any string: `norm` is the RDNs'
    /// normal forms joined by `,`, and a `,` inside a value is always escaped, so a comma
    /// preceded by an even number of backslashes separates RDNs.
    pub fn is_within(&self, other: &Dn) -> bool {
        if other.0.rdns.is_empty() {
            return true;
        }
        if other.0.rdns.len() > self.0.rdns.len() || !self.0.norm.ends_with(&other.0.norm) {
            return false;
        }
        let head = &self.0.norm.as_bytes()[..self.0.norm.len() - other.0.norm.len()];
        let Some((&last, before)) = head.split_last() else {
            return true;
        };
        let backslashes = before.iter().rev().take_while(|&&b| b == b'\\').count();
        last == b',' && backslashes % 2 == 0
    }

    /// The value of the first RDN's `attr` (case-insensitive type), if present.
    pub fn rdn_value(&self, attr: &str) -> Option<&str> {
        self.rdn()?
            .avas
            .iter()
            .find(|a| a.attr.eq_ignore_ascii_case(attr))
            .map(|a| a.value.as_str())
    }

    pub fn depth(&self) -> usize {
        self.0.rdns.len()
    }
}

impl Rdn {
    pub fn parse(input: &str) -> Result<Rdn, DnError> {
        let mut rdns = parse_rdns(input)?;
        if rdns.len() != 1 {
            return Err(DnError::Syntax("expected a single RDN"));
        }
        Ok(rdns.remove(0))
    }

    pub fn single(attr: &str, value: &str) -> Rdn {
        Rdn {
            avas: vec![Ava {
                attr: attr.to_string(),
                value: value.to_string(),
            }],
        }
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.display)
    }
}

impl fmt::Debug for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dn({:?})", self.0.display)
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.0.norm == other.0.norm
    }
}

impl Eq for Dn {}

impl std::hash::Hash for Dn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.norm.hash(state);
    }
}

/// Normalise a DN string for `distinguishedNameMatch`; None when it does not parse.
pub fn normalize_dn(value: &str) -> Option<String> {
    // Member values are nearly all plain: no DN is built for them.
    if let Some(norm) = plain_norm(value) {
        return Some(norm.into_owned());
    }
    Dn::parse(value).ok().map(|dn| dn.norm().to_string())
}

/// The value of `attr` in the first RDN of the DN `value`, as [`Dn::rdn_value`] gives it;
/// None when the DN does not parse or that RDN has no `attr`.
pub fn rdn_value_of(value: &str, attr: &str) -> Option<String> {
    // Member values are nearly all plain: no DN is built for them.
    match plain_rdn_value(value, attr) {
        Some(found) => found.map(str::to_string),
        None => Dn::parse(value).ok()?.rdn_value(attr).map(str::to_string),
    }
}

/// The normal form of `value` without parsing it, when it is written plainly: RDNs of one
/// `attr=value` each, types of letters, digits and `-`, values of letters, digits and
/// `.`, `_`, `@`, `-`, no spaces, escapes or multi-valued RDNs. Such a DN's normal form is
/// its lower-case text; anything else gets None (parse it).
pub fn plain_norm(value: &str) -> Option<std::borrow::Cow<'_, str>> {
    Some(if is_plain(value)? {
        std::borrow::Cow::Owned(value.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(value)
    })
}

/// The value of `attr` in the first RDN of a DN written plainly (see [`plain_norm`]), as
/// written: what [`Dn::rdn_value`] gives, without parsing. None when the DN is not plain.
fn plain_rdn_value<'v>(value: &'v str, attr: &str) -> Option<Option<&'v str>> {
    is_plain(value)?;
    let first = value.split(',').next()?;
    let (name, v) = first.split_once('=')?;
    Some(name.eq_ignore_ascii_case(attr).then_some(v))
}

/// Whether `value` is a plain DN (see [`plain_norm`]): None when not, else whether it has
/// upper-case letters.
fn is_plain(value: &str) -> Option<bool> {
    // One pass over the bytes: groups list thousands of members, each checked this way.
    enum At {
        AttrStart,
        Attr,
        ValueStart,
        Value,
    }
    let mut at = At::AttrStart;
    let mut upper = false;
    for b in value.bytes() {
        upper |= b.is_ascii_uppercase();
        at = match at {
            At::AttrStart if b.is_ascii_alphanumeric() => At::Attr,
            At::Attr if b.is_ascii_alphanumeric() || b == b'-' => At::Attr,
            At::Attr if b == b'=' => At::ValueStart,
            At::ValueStart | At::Value if is_plain_value_byte(b) => At::Value,
            At::Value if b == b',' => At::AttrStart,
            _ => return None,
        };
    }
    matches!(at, At::Value).then_some(upper)
}

/// A byte an attribute value may hold without escaping, in a plain DN.
pub fn is_plain_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-')
}

/// Fold a naming value the way `caseIgnoreMatch` does.
pub fn fold_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Escape a value for the string form of a DN (RFC 4514 §2.4).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_into(value, &mut out);
    out
}

fn escape_into(value: &str, out: &mut String) {
    let mut chars = value.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let last = chars.peek().is_none();
        escape_char(c, first, last, out);
        first = false;
    }
}

fn escape_char(c: char, first: bool, last: bool, out: &mut String) {
    match c {
        ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
            out.push('\\');
            out.push(c);
        }
        '#' if first => out.push_str("\\#"),
        ' ' if first || last => out.push_str("\\ "),
        '\0' => out.push_str("\\00"),
        _ => out.push(c),
    }
}

fn write_display_rdn(rdn: &Rdn, out: &mut String) {
    for (i, a) in rdn.avas.iter().enumerate() {
        if i > 0 {
            out.push('+');
        }
        out.push_str(&a.attr);
        out.push('=');
        escape_into(&a.value, out);
    }
}

fn write_norm_rdn(rdn: &Rdn, out: &mut String) {
    if let [ava] = rdn.avas.as_slice() {
        write_norm_ava(ava, out);
        return;
    }
    let mut parts: Vec<String> = rdn
        .avas
        .iter()
        .map(|a| {
            let mut part = String::new();
            write_norm_ava(a, &mut part);
            part
        })
        .collect();
    // Multi-valued RDNs are unordered.
    parts.sort();
    out.push_str(&parts.join("+"));
}

/// `attr=value` folded and escaped: the same as `escape_value(&fold_value(value))`, in one
/// pass. A folded value has no leading or trailing space, so only `#` is positional.
fn write_norm_ava(ava: &Ava, out: &mut String) {
    out.extend(ava.attr.chars().map(|c| c.to_ascii_lowercase()));
    out.push('=');
    let mut first = true;
    for word in ava.value.split_whitespace() {
        if !first {
            out.push(' ');
        }
        if word.is_ascii() {
            for b in word.bytes() {
                escape_char(char::from(b.to_ascii_lowercase()), first, false, out);
                first = false;
            }
            continue;
        }
        for c in word.chars().flat_map(char::to_lowercase) {
            escape_char(c, first, false, out);
            first = false;
        }
    }
}

fn parse_rdns(input: &str) -> Result<Vec<Rdn>, DnError> {
    let bytes = input.as_bytes();
    let mut rdns = Vec::new();
    if input.trim().is_empty() {
        return Ok(rdns);
    }
    let mut pos = 0;
    let mut avas = Vec::new();
    loop {
        let (ava, next, sep) = parse_ava(bytes, pos)?;
        avas.push(ava);
        pos = next;
        match sep {
            Some(b'+') => continue,
            Some(_) => {
                rdns.push(Rdn {
                    avas: std::mem::take(&mut avas),
                });
            }
            None => {
                rdns.push(Rdn { avas });
                return Ok(rdns);
            }
        }
    }
}

/// Parse `attr=value` from `pos`; returns the AVA, the position after the separator, and
/// the separator (`,`, `;`, `+`) or None at the end.
fn parse_ava(bytes: &[u8], mut pos: usize) -> Result<(Ava, usize, Option<u8>), DnError> {
    while pos < bytes.len() && bytes[pos] == b' ' {
        pos += 1;
    }
    let start = pos;
    while pos < bytes.len() && bytes[pos] != b'=' {
        let c = bytes[pos];
        if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b';') {
            if c == b' ' {
                break;
            }
            return Err(DnError::Syntax("bad character in attribute type"));
        }
        pos += 1;
    }
    let attr = std::str::from_utf8(&bytes[start..pos])
        .map_err(|_| DnError::Syntax("attribute type is not UTF-8"))?
        .to_string();
    while pos < bytes.len() && bytes[pos] == b' ' {
        pos += 1;
    }
    if attr.is_empty() {
        return Err(DnError::Syntax("missing attribute type"));
    }
    if !attr.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(DnError::Syntax(
            "attribute type must start with a letter or digit",
        ));
    }
    if pos >= bytes.len() || bytes[pos] != b'=' {
        return Err(DnError::Syntax("missing '=' in RDN"));
    }
    pos += 1;
    while pos < bytes.len() && bytes[pos] == b' ' {
        pos += 1;
    }
    let mut value: Vec<u8> = Vec::new();
    // Index in `value` after the last escaped byte: trailing spaces before it are kept.
    let mut keep = 0;
    if pos < bytes.len() && bytes[pos] == b'#' {
        // BER-encoded value: keep the hex string as written.
        while pos < bytes.len() && !matches!(bytes[pos], b',' | b';' | b'+') {
            value.push(bytes[pos]);
            pos += 1;
        }
        keep = value.len();
    } else {
        while pos < bytes.len() {
            let c = bytes[pos];
            match c {
                b',' | b';' | b'+' => break,
                b'\\' => {
                    pos += 1;
                    let Some(&n) = bytes.get(pos) else {
                        return Err(DnError::Syntax("dangling escape"));
                    };
                    if n.is_ascii_hexdigit() {
                        let Some(&m) = bytes.get(pos + 1) else {
                            return Err(DnError::Syntax("bad hex escape"));
                        };
                        let hex = [n, m];
                        let s = std::str::from_utf8(&hex)
                            .map_err(|_| DnError::Syntax("bad hex escape"))?;
                        let b = u8::from_str_radix(s, 16)
                            .map_err(|_| DnError::Syntax("bad hex escape"))?;
                        value.push(b);
                        pos += 2;
                    } else {
                        value.push(n);
                        pos += 1;
                    }
                    keep = value.len();
                }
                b'"' => return Err(DnError::Syntax("unescaped '\"' in value")),
                0 => return Err(DnError::Syntax("NUL in value")),
                _ => {
                    value.push(c);
                    pos += 1;
                }
            }
        }
    }
    while value.len() > keep && value.last() == Some(&b' ') {
        value.pop();
    }
    let value = String::from_utf8(value).map_err(|_| DnError::Syntax("value is not UTF-8"))?;
    let sep = bytes.get(pos).copied();
    if sep.is_some() {
        pos += 1;
        if pos >= bytes.len() {
            return Err(DnError::Syntax("trailing separator"));
        }
    }
    Ok((Ava { attr, value }, pos, sep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let dn = Dn::parse("UID=Alice , ou=People,DC=Example,dc=com").unwrap();
        assert_eq!(dn.norm(), "uid=alice,ou=people,dc=example,dc=com");
        assert_eq!(dn.rdn_value("uid"), Some("Alice"));
        assert_eq!(dn.depth(), 4);
        assert_eq!(dn.parent().unwrap().norm(), "ou=people,dc=example,dc=com");
    }

    #[test]
    fn parent_norm_is_the_parents_normal_form() {
        for text in [
            "uid=alice,ou=people,dc=example,dc=com",
            r"cn=Smith\, John\2B,dc=example,dc=com",
            r"cn=back\\,dc=example",
            r"cn=a\\\,b,o=x",
            "cn=a+sn=b,ou=x,dc=y",
            "cn=#04024869,o=x",
            r"cn=Émile\, Zola,o=x",
            "dc=com",
        ] {
            let dn = Dn::parse(text).unwrap();
            let parent = dn.parent().unwrap();
            assert_eq!(dn.parent_norm(), Some(parent.norm()), "{text}");
        }
        assert_eq!(Dn::root().parent_norm(), None);
    }

    #[test]
    fn escapes_round_trip() {
        let dn = Dn::parse(r"cn=Smith\, John\2B,dc=example,dc=com").unwrap();
        assert_eq!(dn.rdn_value("cn"), Some("Smith, John+"));
        let again = Dn::parse(&dn.to_string()).unwrap();
        assert_eq!(again, dn);
        let sp = Dn::parse(r"cn=\ lead\ ,dc=x").unwrap();
        assert_eq!(sp.rdn_value("cn"), Some(" lead "));
        assert_eq!(
            Dn::parse(&sp.to_string()).unwrap().rdn_value("cn"),
            Some(" lead ")
        );
    }

    #[test]
    fn plain_dns_are_their_own_normal_form() {
        for plain in [
            "uid=user1,ou=people,dc=example,dc=com",
            "UID=John.Smith@x,OU=People,DC=Example,DC=com",
            "cn=a-b_c,o=x",
        ] {
            let parsed = Dn::parse(plain).unwrap();
            assert_eq!(plain_norm(plain).as_deref(), Some(parsed.norm()), "{plain}");
            for attr in ["uid", "UID", "cn", "ou"] {
                assert_eq!(
                    plain_rdn_value(plain, attr),
                    Some(parsed.rdn_value(attr)),
                    "{plain} {attr}"
                );
            }
        }
        for other in [
            "",
            "uid=a b,dc=x",
            "uid=a, dc=x",
            "uid=a\\,b,dc=x",
            "uid=a+cn=b,dc=x",
            "uid=#41,dc=x",
            "uid=a=b,dc=x",
            "uid=,dc=x",
            "=a,dc=x",
            "-x=a,dc=x",
            "uid=a,,dc=x",
            "uid=a,",
            "uid",
            "uid=é,dc=x",
        ] {
            assert_eq!(plain_norm(other), None, "{other:?}");
            assert_eq!(plain_rdn_value(other, "uid"), None, "{other:?}");
        }
    }

    /// The escaping as first written, position by position.
    fn reference_escape(value: &str) -> String {
        let mut out = String::new();
        let last = value.chars().count().saturating_sub(1);
        for (i, c) in value.chars().enumerate() {
            match c {
                ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                    out.push('\\');
                    out.push(c);
                }
                '#' if i == 0 => out.push_str("\\#"),
                ' ' if i == 0 || i == last => out.push_str("\\ "),
                '\0' => out.push_str("\\00"),
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn normal_form_is_escape_of_fold() {
        let values = [
            "Alice",
            "  Two   Words  ",
            "#hash",
            "a#b",
            "x,y+z=\"q\"<>;\\",
            "\0nul",
            "ÄÖÜ straße İ",
            " ",
            "",
        ];
        for v in values {
            let ava = Ava {
                attr: "CN".to_string(),
                value: v.to_string(),
            };
            let mut norm = String::new();
            write_norm_ava(&ava, &mut norm);
            assert_eq!(
                norm,
                format!("cn={}", reference_escape(&fold_value(v))),
                "{v:?}"
            );
            let mut display = String::new();
            write_display_rdn(&Rdn { avas: vec![ava] }, &mut display);
            assert_eq!(display, format!("CN={}", reference_escape(v)), "{v:?}");
        }
    }

    #[test]
    fn multi_valued_rdn_is_unordered() {
        let a = Dn::parse("gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth").unwrap();
        let b = Dn::parse("uidNumber=0+gidNumber=0,cn=peercred,cn=external,cn=auth").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn within() {
        let base = Dn::parse("dc=example,dc=com").unwrap();
        let dn = Dn::parse("uid=a,ou=people,dc=example,dc=com").unwrap();
        assert!(dn.is_within(&base));
        assert!(base.is_within(&base));
        assert!(!base.is_within(&dn));
        assert!(dn.is_within(&Dn::root()));
        assert!(
            !Dn::parse("uid=a,ou=xpeople,dc=example,dc=com")
                .unwrap()
                .is_within(&Dn::parse("ou=people,dc=example,dc=com").unwrap())
        );
        // A comma inside a value (escaped) does not separate RDNs; after an escaped
        // backslash it does.
        let people = Dn::parse("ou=people,dc=example,dc=com").unwrap();
        let comma_in_value = Dn::parse(r"cn=x\,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(comma_in_value.depth(), 3);
        assert!(!comma_in_value.is_within(&people));
        assert!(comma_in_value.is_within(&base));
        let backslash_value = Dn::parse(r"cn=x\\,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(backslash_value.depth(), 4);
        assert!(backslash_value.is_within(&people));
        let both = Dn::parse(r"cn=x\\\,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(both.depth(), 3);
        assert!(!both.is_within(&people));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "uid",
            "=x",
            "uid=a,",
            "uid=a\\",
            "uid=a\\4",
            "u d=x",
            "uid=\"x\"",
            ",dc=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        assert!(Dn::parse("").unwrap().is_root());
    }
}
