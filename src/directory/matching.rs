//! LDAP matching rules and attribute syntaxes.
//!
//! Owns the closed set of matching rules (RFC 4517, RFC 4530 and the IA5 substrings rule
//! that RFC 2307 borrows from OpenLDAP) and syntaxes that Tessera implements: their names
//! and OIDs, how a value is prepared (RFC 4518, a practical subset), compared and matched
//! against substrings, and the `ldapSyntaxes` / `matchingRules` description strings.
//!
//! It must not know attribute types, entries or storage, and does no I/O: the schema maps
//! attributes to rules, and callers decide what an invalid value means (Undefined in a
//! filter, a rejected add or modify).

use std::cmp::Ordering;

use crate::directory::dn::normalize_dn;
use crate::directory::time::GeneralizedTime;

/// A matching rule Tessera implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchingRule {
    ObjectIdentifierMatch,
    DistinguishedNameMatch,
    CaseIgnoreMatch,
    CaseIgnoreOrderingMatch,
    CaseIgnoreSubstringsMatch,
    CaseExactMatch,
    CaseExactOrderingMatch,
    CaseExactSubstringsMatch,
    NumericStringMatch,
    NumericStringOrderingMatch,
    NumericStringSubstringsMatch,
    CaseIgnoreListMatch,
    CaseIgnoreListSubstringsMatch,
    BooleanMatch,
    IntegerMatch,
    IntegerOrderingMatch,
    BitStringMatch,
    OctetStringMatch,
    OctetStringOrderingMatch,
    TelephoneNumberMatch,
    TelephoneNumberSubstringsMatch,
    UniqueMemberMatch,
    GeneralizedTimeMatch,
    GeneralizedTimeOrderingMatch,
    IntegerFirstComponentMatch,
    ObjectIdentifierFirstComponentMatch,
    CaseExactIa5Match,
    CaseIgnoreIa5Match,
    CaseIgnoreIa5SubstringsMatch,
    CaseExactIa5SubstringsMatch,
    UuidMatch,
    UuidOrderingMatch,
}

/// Which assertion a rule serves; RFC 4512 lets an attribute type name one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Equality,
    Ordering,
    Substrings,
}

/// An attribute syntax Tessera knows (RFC 4517, RFC 4523, RFC 4530, RFC 2307).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Syntax {
    AttributeTypeDescription,
    Audio,
    Binary,
    BitString,
    Boolean,
    Certificate,
    CertificateList,
    CertificatePair,
    CountryString,
    Dn,
    DeliveryMethod,
    DirectoryString,
    DitContentRuleDescription,
    DitStructureRuleDescription,
    EnhancedGuide,
    FacsimileTelephoneNumber,
    Fax,
    GeneralizedTime,
    Guide,
    Ia5String,
    Integer,
    Jpeg,
    MatchingRuleDescription,
    MatchingRuleUseDescription,
    NameAndOptionalUid,
    NameFormDescription,
    NumericString,
    ObjectClassDescription,
    Oid,
    OtherMailbox,
    OctetString,
    PostalAddress,
    PrintableString,
    SubtreeSpecification,
    SupportedAlgorithm,
    TelephoneNumber,
    TeletexTerminalIdentifier,
    TelexNumber,
    LdapSyntaxDescription,
    SubstringAssertion,
    Uuid,
    NisNetgroupTriple,
}

impl MatchingRule {
    /// Every implemented rule, in the order `matchingRules` publishes them.
    pub const ALL: &'static [MatchingRule] = &[
        MatchingRule::ObjectIdentifierMatch,
        MatchingRule::DistinguishedNameMatch,
        MatchingRule::CaseIgnoreMatch,
        MatchingRule::CaseIgnoreOrderingMatch,
        MatchingRule::CaseIgnoreSubstringsMatch,
        MatchingRule::CaseExactMatch,
        MatchingRule::CaseExactOrderingMatch,
        MatchingRule::CaseExactSubstringsMatch,
        MatchingRule::NumericStringMatch,
        MatchingRule::NumericStringOrderingMatch,
        MatchingRule::NumericStringSubstringsMatch,
        MatchingRule::CaseIgnoreListMatch,
        MatchingRule::CaseIgnoreListSubstringsMatch,
        MatchingRule::BooleanMatch,
        MatchingRule::IntegerMatch,
        MatchingRule::IntegerOrderingMatch,
        MatchingRule::BitStringMatch,
        MatchingRule::OctetStringMatch,
        MatchingRule::OctetStringOrderingMatch,
        MatchingRule::TelephoneNumberMatch,
        MatchingRule::TelephoneNumberSubstringsMatch,
        MatchingRule::UniqueMemberMatch,
        MatchingRule::GeneralizedTimeMatch,
        MatchingRule::GeneralizedTimeOrderingMatch,
        MatchingRule::IntegerFirstComponentMatch,
        MatchingRule::ObjectIdentifierFirstComponentMatch,
        MatchingRule::CaseExactIa5Match,
        MatchingRule::CaseIgnoreIa5Match,
        MatchingRule::CaseIgnoreIa5SubstringsMatch,
        MatchingRule::CaseExactIa5SubstringsMatch,
        MatchingRule::UuidMatch,
        MatchingRule::UuidOrderingMatch,
    ];

    /// The rule with this name (case-insensitive) or numeric OID.
    pub fn from_name(name_or_oid: &str) -> Option<MatchingRule> {
        let wanted = name_or_oid.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|rule| rule.name().eq_ignore_ascii_case(wanted) || rule.oid() == wanted)
    }

    /// The rule's RFC name, e.g. `caseIgnoreMatch`.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    pub fn oid(&self) -> &'static str {
        self.info().oid
    }

    /// The syntax of the rule's assertion value.
    pub fn syntax(&self) -> Syntax {
        self.info().syntax
    }

    pub fn syntax_oid(&self) -> &'static str {
        self.syntax().oid()
    }

    pub fn kind(&self) -> RuleKind {
        self.info().kind
    }

    /// The RFC 4512 `matchingRules` value for this rule.
    pub fn description(&self) -> String {
        format!(
            "( {} NAME '{}' SYNTAX {} )",
            self.oid(),
            self.name(),
            self.syntax_oid()
        )
    }

    /// The canonical form of `value` under this rule's equality: two values are equal iff
    /// their normalized forms are byte-equal. `None` means the value is not valid for the
    /// rule, so an assertion on it is Undefined. Ordering and substrings rules normalize as
    /// the equality rule of their family does (useful for index keys).
    pub fn normalize(&self, value: &[u8]) -> Option<Vec<u8>> {
        self.info().family.normalize(value)
    }

    /// Whether two values are equal under this rule; `None` if either is invalid.
    pub fn matches(&self, a: &[u8], b: &[u8]) -> Option<bool> {
        Some(self.normalize(a)? == self.normalize(b)?)
    }

    /// A key whose byte order is this ordering rule's order, for range indexes. `None` for
    /// rules that are not ordering rules, and for invalid values.
    pub fn ordering_key(&self, value: &[u8]) -> Option<Vec<u8>> {
        if self.kind() != RuleKind::Ordering {
            return None;
        }
        self.info().family.ordering_key(value)
    }

    /// Compares two raw values under this ordering rule (integers numerically, times by
    /// instant). `None` for rules that are not ordering rules, or if either side is invalid.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Option<Ordering> {
        Some(self.ordering_key(a)?.cmp(&self.ordering_key(b)?))
    }

    /// Whether this rule can be applied to an attribute with `syntax` and `rules` (its
    /// equality, ordering and substrings rules), approximating RFC 4512's matchingRuleUse:
    /// the attribute uses a rule of the same family, or has the syntax that the family's
    /// equality rule asserts (so `caseExactMatch` applies to `uid`, not to `mail`).
    pub fn applies_to(&self, syntax: Syntax, rules: &[Option<MatchingRule>]) -> bool {
        let family = self.info().family;
        if rules.iter().flatten().any(|r| r.info().family == family) {
            return true;
        }
        Self::ALL.iter().any(|r| {
            r.kind() == RuleKind::Equality && r.info().family == family && r.syntax() == syntax
        })
    }

    /// Evaluates a substrings assertion (`initial*any*...*final`) against `value`. `None` for
    /// rules that are not substrings rules, or if the value or a component is invalid.
    pub fn substrings(
        &self,
        value: &[u8],
        initial: Option<&str>,
        any: &[String],
        final_: Option<&str>,
    ) -> Option<bool> {
        if self.kind() != RuleKind::Substrings {
            return None;
        }
        let family = self.info().family;
        let subject = family.substrings_subject(value)?;
        let initial = match initial {
            Some(part) => Some(family.substrings_component(part)?.trim_start().to_owned()),
            None => None,
        };
        let final_ = match final_ {
            Some(part) => Some(family.substrings_component(part)?.trim_end().to_owned()),
            None => None,
        };
        let any = any
            .iter()
            .map(|part| family.substrings_component(part))
            .collect::<Option<Vec<String>>>()?;
        Some(match_substrings(
            &subject,
            initial.as_deref(),
            &any,
            final_.as_deref(),
        ))
    }

    fn info(&self) -> RuleInfo {
        use Family as F;
        use MatchingRule as M;
        use RuleKind::{Equality as Eq, Ordering as Ord, Substrings as Sub};
        use Syntax as S;
        let (name, oid, syntax, kind, family) = match self {
            M::ObjectIdentifierMatch => ("objectIdentifierMatch", "2.5.13.0", S::Oid, Eq, F::Oid),
            M::DistinguishedNameMatch => ("distinguishedNameMatch", "2.5.13.1", S::Dn, Eq, F::Dn),
            M::CaseIgnoreMatch => (
                "caseIgnoreMatch",
                "2.5.13.2",
                S::DirectoryString,
                Eq,
                F::CaseIgnore,
            ),
            M::CaseIgnoreOrderingMatch => (
                "caseIgnoreOrderingMatch",
                "2.5.13.3",
                S::DirectoryString,
                Ord,
                F::CaseIgnore,
            ),
            M::CaseIgnoreSubstringsMatch => (
                "caseIgnoreSubstringsMatch",
                "2.5.13.4",
                S::SubstringAssertion,
                Sub,
                F::CaseIgnore,
            ),
            M::CaseExactMatch => (
                "caseExactMatch",
                "2.5.13.5",
                S::DirectoryString,
                Eq,
                F::CaseExact,
            ),
            M::CaseExactOrderingMatch => (
                "caseExactOrderingMatch",
                "2.5.13.6",
                S::DirectoryString,
                Ord,
                F::CaseExact,
            ),
            M::CaseExactSubstringsMatch => (
                "caseExactSubstringsMatch",
                "2.5.13.7",
                S::SubstringAssertion,
                Sub,
                F::CaseExact,
            ),
            M::NumericStringMatch => (
                "numericStringMatch",
                "2.5.13.8",
                S::NumericString,
                Eq,
                F::Numeric,
            ),
            M::NumericStringOrderingMatch => (
                "numericStringOrderingMatch",
                "2.5.13.9",
                S::NumericString,
                Ord,
                F::Numeric,
            ),
            M::NumericStringSubstringsMatch => (
                "numericStringSubstringsMatch",
                "2.5.13.10",
                S::SubstringAssertion,
                Sub,
                F::Numeric,
            ),
            M::CaseIgnoreListMatch => (
                "caseIgnoreListMatch",
                "2.5.13.11",
                S::PostalAddress,
                Eq,
                F::CaseIgnoreList,
            ),
            M::CaseIgnoreListSubstringsMatch => (
                "caseIgnoreListSubstringsMatch",
                "2.5.13.12",
                S::SubstringAssertion,
                Sub,
                F::CaseIgnoreList,
            ),
            M::BooleanMatch => ("booleanMatch", "2.5.13.13", S::Boolean, Eq, F::Boolean),
            M::IntegerMatch => ("integerMatch", "2.5.13.14", S::Integer, Eq, F::Integer),
            M::IntegerOrderingMatch => (
                "integerOrderingMatch",
                "2.5.13.15",
                S::Integer,
                Ord,
                F::Integer,
            ),
            M::BitStringMatch => (
                "bitStringMatch",
                "2.5.13.16",
                S::BitString,
                Eq,
                F::BitString,
            ),
            M::OctetStringMatch => (
                "octetStringMatch",
                "2.5.13.17",
                S::OctetString,
                Eq,
                F::Octet,
            ),
            M::OctetStringOrderingMatch => (
                "octetStringOrderingMatch",
                "2.5.13.18",
                S::OctetString,
                Ord,
                F::Octet,
            ),
            M::TelephoneNumberMatch => (
                "telephoneNumberMatch",
                "2.5.13.20",
                S::TelephoneNumber,
                Eq,
                F::Telephone,
            ),
            M::TelephoneNumberSubstringsMatch => (
                "telephoneNumberSubstringsMatch",
                "2.5.13.21",
                S::SubstringAssertion,
                Sub,
                F::Telephone,
            ),
            M::UniqueMemberMatch => (
                "uniqueMemberMatch",
                "2.5.13.23",
                S::NameAndOptionalUid,
                Eq,
                F::UniqueMember,
            ),
            M::GeneralizedTimeMatch => (
                "generalizedTimeMatch",
                "2.5.13.27",
                S::GeneralizedTime,
                Eq,
                F::GeneralizedTime,
            ),
            M::GeneralizedTimeOrderingMatch => (
                "generalizedTimeOrderingMatch",
                "2.5.13.28",
                S::GeneralizedTime,
                Ord,
                F::GeneralizedTime,
            ),
            M::IntegerFirstComponentMatch => (
                "integerFirstComponentMatch",
                "2.5.13.29",
                S::Integer,
                Eq,
                F::IntegerFirstComponent,
            ),
            M::ObjectIdentifierFirstComponentMatch => (
                "objectIdentifierFirstComponentMatch",
                "2.5.13.30",
                S::Oid,
                Eq,
                F::OidFirstComponent,
            ),
            M::CaseExactIa5Match => (
                "caseExactIA5Match",
                "1.3.6.1.4.1.1466.109.114.1",
                S::Ia5String,
                Eq,
                F::CaseExactIa5,
            ),
            M::CaseIgnoreIa5Match => (
                "caseIgnoreIA5Match",
                "1.3.6.1.4.1.1466.109.114.2",
                S::Ia5String,
                Eq,
                F::CaseIgnoreIa5,
            ),
            M::CaseIgnoreIa5SubstringsMatch => (
                "caseIgnoreIA5SubstringsMatch",
                "1.3.6.1.4.1.1466.109.114.3",
                S::SubstringAssertion,
                Sub,
                F::CaseIgnoreIa5,
            ),
            // OpenLDAP's OID; RFC 2307 uses the rule without assigning one.
            M::CaseExactIa5SubstringsMatch => (
                "caseExactIA5SubstringsMatch",
                "1.3.6.1.4.1.4203.1.2.1",
                S::SubstringAssertion,
                Sub,
                F::CaseExactIa5,
            ),
            M::UuidMatch => ("UUIDMatch", "1.3.6.1.1.16.2", S::Uuid, Eq, F::Uuid),
            M::UuidOrderingMatch => ("UUIDOrderingMatch", "1.3.6.1.1.16.3", S::Uuid, Ord, F::Uuid),
        };
        RuleInfo {
            name,
            oid,
            syntax,
            kind,
            family,
        }
    }
}

impl Syntax {
    /// Every known syntax, in the order `ldapSyntaxes` publishes them.
    pub const ALL: &'static [Syntax] = &[
        Syntax::AttributeTypeDescription,
        Syntax::Audio,
        Syntax::Binary,
        Syntax::BitString,
        Syntax::Boolean,
        Syntax::Certificate,
        Syntax::CertificateList,
        Syntax::CertificatePair,
        Syntax::CountryString,
        Syntax::Dn,
        Syntax::DeliveryMethod,
        Syntax::DirectoryString,
        Syntax::DitContentRuleDescription,
        Syntax::DitStructureRuleDescription,
        Syntax::EnhancedGuide,
        Syntax::FacsimileTelephoneNumber,
        Syntax::Fax,
        Syntax::GeneralizedTime,
        Syntax::Guide,
        Syntax::Ia5String,
        Syntax::Integer,
        Syntax::Jpeg,
        Syntax::MatchingRuleDescription,
        Syntax::MatchingRuleUseDescription,
        Syntax::NameAndOptionalUid,
        Syntax::NameFormDescription,
        Syntax::NumericString,
        Syntax::ObjectClassDescription,
        Syntax::Oid,
        Syntax::OtherMailbox,
        Syntax::OctetString,
        Syntax::PostalAddress,
        Syntax::PrintableString,
        Syntax::SubtreeSpecification,
        Syntax::SupportedAlgorithm,
        Syntax::TelephoneNumber,
        Syntax::TeletexTerminalIdentifier,
        Syntax::TelexNumber,
        Syntax::LdapSyntaxDescription,
        Syntax::SubstringAssertion,
        Syntax::Uuid,
        Syntax::NisNetgroupTriple,
    ];

    /// The syntax with this numeric OID (a `{len}` bound must already be stripped).
    pub fn from_oid(oid: &str) -> Option<Syntax> {
        let wanted = oid.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|syntax| syntax.oid() == wanted)
    }

    pub fn oid(&self) -> &'static str {
        self.info().0
    }

    /// The syntax's RFC name, published as its `DESC`.
    pub fn desc(&self) -> &'static str {
        self.info().1
    }

    /// False for binary syntaxes, which `ldapSyntaxes` marks `X-NOT-HUMAN-READABLE`.
    pub fn is_human_readable(&self) -> bool {
        self.info().2
    }

    /// The RFC 4512 `ldapSyntaxes` value for this syntax.
    pub fn description(&self) -> String {
        let binary = if self.is_human_readable() {
            ""
        } else {
            " X-NOT-HUMAN-READABLE 'TRUE'"
        };
        format!("( {} DESC '{}'{binary} )", self.oid(), self.desc())
    }

    /// Whether `value` is a valid value of this syntax. Strict where RFC 4517 is precise
    /// and clients depend on it (INTEGER, Boolean, Generalized Time, UUID, DN, OID,
    /// Printable String...); the rarely used structured syntaxes (guides, telex, subtree
    /// specifications...) only need non-empty UTF-8, and binary ones accept any bytes.
    pub fn validate(&self, value: &[u8]) -> bool {
        use Syntax as S;
        match self {
            S::DirectoryString => !value.is_empty() && std::str::from_utf8(value).is_ok(),
            S::Ia5String | S::NisNetgroupTriple => value.is_ascii(),
            S::PrintableString | S::TelephoneNumber => {
                !value.is_empty() && value.iter().all(|&b| is_printable(b))
            }
            S::CountryString => value.len() == 2 && value.iter().all(|&b| is_printable(b)),
            S::NumericString => {
                !value.is_empty() && value.iter().all(|&b| b.is_ascii_digit() || b == b' ')
            }
            // RFC 4517 integers have no leading zeros and no "-0": the canonical form.
            S::Integer => Family::Integer.normalize(value).as_deref() == Some(value),
            S::Boolean => value == b"TRUE" || value == b"FALSE",
            S::BitString => std::str::from_utf8(value).is_ok_and(is_bit_string),
            S::Dn => Family::Dn.normalize(value).is_some(),
            S::NameAndOptionalUid => Family::UniqueMember.normalize(value).is_some(),
            S::Oid => std::str::from_utf8(value).is_ok_and(|s| is_numeric_oid(s) || is_descr(s)),
            S::GeneralizedTime => GeneralizedTime::parse(value).is_some(),
            S::Uuid => uuid(value).is_some(),
            S::PostalAddress => Family::CaseIgnoreList.normalize(value).is_some(),
            S::Audio
            | S::Binary
            | S::Certificate
            | S::CertificateList
            | S::CertificatePair
            | S::Fax
            | S::Jpeg
            | S::OctetString
            | S::SupportedAlgorithm => true,
            S::AttributeTypeDescription
            | S::DeliveryMethod
            | S::DitContentRuleDescription
            | S::DitStructureRuleDescription
            | S::EnhancedGuide
            | S::FacsimileTelephoneNumber
            | S::Guide
            | S::MatchingRuleDescription
            | S::MatchingRuleUseDescription
            | S::NameFormDescription
            | S::ObjectClassDescription
            | S::OtherMailbox
            | S::SubtreeSpecification
            | S::TeletexTerminalIdentifier
            | S::TelexNumber
            | S::LdapSyntaxDescription
            | S::SubstringAssertion => !value.is_empty() && std::str::from_utf8(value).is_ok(),
        }
    }

    fn info(&self) -> (&'static str, &'static str, bool) {
        use Syntax as S;
        match self {
            S::AttributeTypeDescription => (
                "1.3.6.1.4.1.1466.115.121.1.3",
                "Attribute Type Description",
                true,
            ),
            S::Audio => ("1.3.6.1.4.1.1466.115.121.1.4", "Audio", false),
            S::Binary => ("1.3.6.1.4.1.1466.115.121.1.5", "Binary", false),
            S::BitString => ("1.3.6.1.4.1.1466.115.121.1.6", "Bit String", true),
            S::Boolean => ("1.3.6.1.4.1.1466.115.121.1.7", "Boolean", true),
            S::Certificate => ("1.3.6.1.4.1.1466.115.121.1.8", "X.509 Certificate", false),
            S::CertificateList => (
                "1.3.6.1.4.1.1466.115.121.1.9",
                "X.509 Certificate List",
                false,
            ),
            S::CertificatePair => (
                "1.3.6.1.4.1.1466.115.121.1.10",
                "X.509 Certificate Pair",
                false,
            ),
            S::CountryString => ("1.3.6.1.4.1.1466.115.121.1.11", "Country String", true),
            S::Dn => ("1.3.6.1.4.1.1466.115.121.1.12", "DN", true),
            S::DeliveryMethod => ("1.3.6.1.4.1.1466.115.121.1.14", "Delivery Method", true),
            S::DirectoryString => ("1.3.6.1.4.1.1466.115.121.1.15", "Directory String", true),
            S::DitContentRuleDescription => (
                "1.3.6.1.4.1.1466.115.121.1.16",
                "DIT Content Rule Description",
                true,
            ),
            S::DitStructureRuleDescription => (
                "1.3.6.1.4.1.1466.115.121.1.17",
                "DIT Structure Rule Description",
                true,
            ),
            S::EnhancedGuide => ("1.3.6.1.4.1.1466.115.121.1.21", "Enhanced Guide", true),
            S::FacsimileTelephoneNumber => (
                "1.3.6.1.4.1.1466.115.121.1.22",
                "Facsimile Telephone Number",
                true,
            ),
            S::Fax => ("1.3.6.1.4.1.1466.115.121.1.23", "Fax", false),
            S::GeneralizedTime => ("1.3.6.1.4.1.1466.115.121.1.24", "Generalized Time", true),
            S::Guide => ("1.3.6.1.4.1.1466.115.121.1.25", "Guide", true),
            S::Ia5String => ("1.3.6.1.4.1.1466.115.121.1.26", "IA5 String", true),
            S::Integer => ("1.3.6.1.4.1.1466.115.121.1.27", "INTEGER", true),
            S::Jpeg => ("1.3.6.1.4.1.1466.115.121.1.28", "JPEG", false),
            S::MatchingRuleDescription => (
                "1.3.6.1.4.1.1466.115.121.1.30",
                "Matching Rule Description",
                true,
            ),
            S::MatchingRuleUseDescription => (
                "1.3.6.1.4.1.1466.115.121.1.31",
                "Matching Rule Use Description",
                true,
            ),
            S::NameAndOptionalUid => (
                "1.3.6.1.4.1.1466.115.121.1.34",
                "Name And Optional UID",
                true,
            ),
            S::NameFormDescription => (
                "1.3.6.1.4.1.1466.115.121.1.35",
                "Name Form Description",
                true,
            ),
            S::NumericString => ("1.3.6.1.4.1.1466.115.121.1.36", "Numeric String", true),
            S::ObjectClassDescription => (
                "1.3.6.1.4.1.1466.115.121.1.37",
                "Object Class Description",
                true,
            ),
            S::Oid => ("1.3.6.1.4.1.1466.115.121.1.38", "OID", true),
            S::OtherMailbox => ("1.3.6.1.4.1.1466.115.121.1.39", "Other Mailbox", true),
            S::OctetString => ("1.3.6.1.4.1.1466.115.121.1.40", "Octet String", true),
            S::PostalAddress => ("1.3.6.1.4.1.1466.115.121.1.41", "Postal Address", true),
            S::PrintableString => ("1.3.6.1.4.1.1466.115.121.1.44", "Printable String", true),
            S::SubtreeSpecification => (
                "1.3.6.1.4.1.1466.115.121.1.45",
                "Subtree Specification",
                true,
            ),
            S::SupportedAlgorithm => (
                "1.3.6.1.4.1.1466.115.121.1.49",
                "X.509 Supported Algorithm",
                false,
            ),
            S::TelephoneNumber => ("1.3.6.1.4.1.1466.115.121.1.50", "Telephone Number", true),
            S::TeletexTerminalIdentifier => (
                "1.3.6.1.4.1.1466.115.121.1.51",
                "Teletex Terminal Identifier",
                true,
            ),
            S::TelexNumber => ("1.3.6.1.4.1.1466.115.121.1.52", "Telex Number", true),
            S::LdapSyntaxDescription => (
                "1.3.6.1.4.1.1466.115.121.1.54",
                "LDAP Syntax Description",
                true,
            ),
            S::SubstringAssertion => ("1.3.6.1.4.1.1466.115.121.1.58", "Substring Assertion", true),
            S::Uuid => ("1.3.6.1.1.16.1", "UUID", true),
            S::NisNetgroupTriple => ("1.3.6.1.1.1.0.0", "RFC2307 NIS Netgroup Triple", true),
        }
    }
}

/// Whether `s` is an RFC 4512 numericoid: two or more arcs, no leading zeros.
pub fn is_numeric_oid(s: &str) -> bool {
    let mut arcs = 0;
    for arc in s.split('.') {
        let canonical = arc == "0" || (!arc.starts_with('0') && !arc.is_empty());
        if !canonical || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

/// Whether `s` is an RFC 4512 descr: a letter, then letters, digits and hyphens.
pub fn is_descr(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

struct RuleInfo {
    name: &'static str,
    oid: &'static str,
    syntax: Syntax,
    kind: RuleKind,
    family: Family,
}

/// Rules of one family share a value preparation; they differ in what they assert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    CaseIgnore,
    CaseExact,
    CaseIgnoreIa5,
    CaseExactIa5,
    CaseIgnoreList,
    Numeric,
    Telephone,
    Integer,
    Boolean,
    BitString,
    Octet,
    Oid,
    OidFirstComponent,
    IntegerFirstComponent,
    Dn,
    UniqueMember,
    GeneralizedTime,
    Uuid,
}

impl Family {
    fn normalize(self, value: &[u8]) -> Option<Vec<u8>> {
        match self {
            Family::CaseIgnore => directory_string(value, Case::Fold).map(String::into_bytes),
            Family::CaseExact => directory_string(value, Case::Keep).map(String::into_bytes),
            Family::CaseIgnoreIa5 => ia5_string(value, Case::Fold).map(String::into_bytes),
            Family::CaseExactIa5 => ia5_string(value, Case::Keep).map(String::into_bytes),
            Family::CaseIgnoreList => {
                let lines = postal_lines(value)?;
                let escaped: Vec<String> = lines
                    .iter()
                    .map(|line| line.replace('\\', "\\5c").replace('$', "\\24"))
                    .collect();
                Some(escaped.join("$").into_bytes())
            }
            Family::Numeric => numeric_string(value).map(String::into_bytes),
            Family::Telephone => telephone_number(value).map(String::into_bytes),
            Family::Integer => integer(value).map(|(negative, digits)| {
                let mut out = Vec::with_capacity(digits.len() + 1);
                if negative {
                    out.push(b'-');
                }
                if digits.is_empty() {
                    out.push(b'0');
                }
                out.extend_from_slice(digits);
                out
            }),
            Family::Boolean => {
                if value.eq_ignore_ascii_case(b"TRUE") {
                    Some(b"TRUE".to_vec())
                } else if value.eq_ignore_ascii_case(b"FALSE") {
                    Some(b"FALSE".to_vec())
                } else {
                    None
                }
            }
            Family::BitString => {
                let text = std::str::from_utf8(value).ok()?;
                is_bit_string(text).then(|| value.to_vec())
            }
            Family::Octet => Some(value.to_vec()),
            Family::Oid => oid(value),
            Family::OidFirstComponent => oid(first_component(value)?),
            Family::IntegerFirstComponent => Family::Integer.normalize(first_component(value)?),
            Family::Dn => normalize_dn(std::str::from_utf8(value).ok()?).map(String::into_bytes),
            Family::UniqueMember => unique_member(value).map(String::into_bytes),
            Family::GeneralizedTime => GeneralizedTime::parse(value).map(|time| time.normalized()),
            Family::Uuid => uuid(value),
        }
    }

    fn ordering_key(self, value: &[u8]) -> Option<Vec<u8>> {
        match self {
            Family::Integer => {
                integer(value).map(|(negative, digits)| integer_key(negative, digits))
            }
            Family::GeneralizedTime => GeneralizedTime::parse(value).map(|time| time.key()),
            // Every other ordering family orders its normalized form bytewise: UTF-8 byte
            // order is code point order, and lowercase hex orders UUIDs as their octets.
            _ => self.normalize(value),
        }
    }

    /// The string a substrings assertion is matched against.
    fn substrings_subject(self, value: &[u8]) -> Option<String> {
        match self {
            Family::CaseIgnore => directory_string(value, Case::Fold),
            Family::CaseExact => directory_string(value, Case::Keep),
            Family::CaseIgnoreIa5 => ia5_string(value, Case::Fold),
            Family::CaseExactIa5 => ia5_string(value, Case::Keep),
            // A component must not match across lines (RFC 4517 4.2.12): NUL cannot occur
            // in a prepared line, so it keeps components from spanning two.
            Family::CaseIgnoreList => Some(postal_lines(value)?.join("\0")),
            Family::Numeric => numeric_string(value),
            Family::Telephone => telephone_number(value),
            _ => None,
        }
    }

    /// One assertion component, prepared like the value but keeping one edge space, so
    /// `(cn=John *)` matches "John Smith" and not "Johnny".
    fn substrings_component(self, part: &str) -> Option<String> {
        match self {
            Family::CaseIgnore | Family::CaseIgnoreList => {
                Some(prepare_component(part, Case::Fold))
            }
            Family::CaseExact => Some(prepare_component(part, Case::Keep)),
            Family::CaseIgnoreIa5 => part.is_ascii().then(|| prepare_component(part, Case::Fold)),
            Family::CaseExactIa5 => part.is_ascii().then(|| prepare_component(part, Case::Keep)),
            Family::Numeric => part
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b' ')
                .then(|| part.replace(' ', "")),
            Family::Telephone => Some(strip_telephone(&prepare(part, Case::Fold))),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Fold,
    Keep,
}

fn match_substrings(
    subject: &str,
    initial: Option<&str>,
    any: &[String],
    final_: Option<&str>,
) -> bool {
    let mut rest = subject;
    if let Some(initial) = initial {
        let Some(after) = rest.strip_prefix(initial) else {
            return false;
        };
        rest = after;
    }
    for part in any.iter().filter(|part| !part.is_empty()) {
        let Some((_, after)) = rest.split_once(part.as_str()) else {
            return false;
        };
        rest = after;
    }
    final_.is_none_or(|final_| rest.ends_with(final_))
}

/// RFC 4518 preparation, practical subset: drop the characters it maps to nothing, map
/// whitespace to SPACE, trim, collapse inner runs to one SPACE, optionally lowercase.
/// No NFKC normalization (it would need Unicode tables we do not carry).
fn prepare(s: &str, case: Case) -> String {
    if s.is_ascii() {
        prepare_ascii(s, case)
    } else {
        prepare_chars(s, case)
    }
}

fn prepare_chars(s: &str, case: Case) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if maps_to_nothing(c) {
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        match case {
            Case::Fold => out.extend(c.to_lowercase()),
            Case::Keep => out.push(c),
        }
    }
    out
}

/// [`prepare`] for ASCII text, byte by byte: nearly every value an import or a search
/// normalises is ASCII, and the general path's per-char lower-casing dominated them.
fn prepare_ascii(s: &str, case: Case) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut space = false;
    for b in s.bytes() {
        // The ASCII members of maps_to_nothing and of char::is_whitespace.
        if matches!(b, 0..=8 | 0x0E..=0x1F | 0x7F) {
            continue;
        }
        if matches!(b, b'\t'..=b'\r' | b' ') {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(b' ');
        }
        space = false;
        out.push(match case {
            Case::Fold => b.to_ascii_lowercase(),
            Case::Keep => b,
        });
    }
    // Only ASCII bytes were pushed.
    String::from_utf8(out).unwrap_or_default()
}

fn prepare_component(part: &str, case: Case) -> String {
    let core = prepare(part, case);
    let visible = |c: &char| !maps_to_nothing(*c);
    let lead = part.chars().find(visible).is_some_and(char::is_whitespace);
    let trail = part
        .chars()
        .rev()
        .find(visible)
        .is_some_and(char::is_whitespace);
    if core.is_empty() {
        return if lead { " ".to_owned() } else { String::new() };
    }
    let mut out = String::with_capacity(core.len() + 2);
    if lead {
        out.push(' ');
    }
    out.push_str(&core);
    if trail {
        out.push(' ');
    }
    out
}

fn maps_to_nothing(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{84}' | '\u{86}'..='\u{9F}'
        | '\u{AD}' | '\u{34F}' | '\u{1806}' | '\u{180B}'..='\u{180D}' | '\u{200B}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FFFC}')
}

/// A Directory String prepared for matching; it must be non-empty UTF-8. A value of only
/// spaces prepares to one space, so it still differs from no value at all.
fn directory_string(value: &[u8], case: Case) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let prepared = prepare(std::str::from_utf8(value).ok()?, case);
    Some(if prepared.is_empty() {
        " ".to_owned()
    } else {
        prepared
    })
}

/// An IA5 String prepared for matching; unlike a Directory String it may be empty.
fn ia5_string(value: &[u8], case: Case) -> Option<String> {
    if !value.is_ascii() {
        return None;
    }
    let prepared = prepare(std::str::from_utf8(value).ok()?, case);
    Some(if prepared.is_empty() && !value.is_empty() {
        " ".to_owned()
    } else {
        prepared
    })
}

/// The lines of a Postal Address (`line $ line`, with `\24` and `\5C` escapes), prepared
/// case-insensitively.
fn postal_lines(value: &[u8]) -> Option<Vec<String>> {
    if value.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    Some(
        text.split('$')
            .map(|line| prepare(&unescape_postal(line), Case::Fold))
            .collect(),
    )
}

fn unescape_postal(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some((before, after)) = rest.split_once('\\') {
        out.push_str(before);
        if let Some(tail) = after.strip_prefix("24") {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after
            .strip_prefix("5C")
            .or_else(|| after.strip_prefix("5c"))
        {
            out.push('\\');
            rest = tail;
        } else {
            // Not an escape RFC 4517 defines: keep the backslash as written.
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn numeric_string(value: &[u8]) -> Option<String> {
    if value.is_empty() || !value.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
        return None;
    }
    Some(
        value
            .iter()
            .filter(|&&b| b != b' ')
            .map(|&b| char::from(b))
            .collect(),
    )
}

/// RFC 4518 telephone number handling: case-insensitive, spaces and hyphens insignificant.
fn telephone_number(value: &[u8]) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    Some(strip_telephone(&prepare(
        std::str::from_utf8(value).ok()?,
        Case::Fold,
    )))
}

fn strip_telephone(prepared: &str) -> String {
    prepared
        .chars()
        .filter(|&c| {
            !matches!(
                c,
                ' ' | '-' | '\u{58A}' | '\u{2010}'
                    ..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}'
            )
        })
        .collect()
}

/// Sign and magnitude digits without leading zeros (empty for zero, which is never
/// negative). Leading zeros are accepted here so "010" matches "10"; the INTEGER syntax
/// check is the strict one.
fn integer(value: &[u8]) -> Option<(bool, &[u8])> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let significant = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let digits = digits.get(significant..).unwrap_or_default();
    Some((negative && !digits.is_empty(), digits))
}

/// Order-preserving integer key: a sign tag, then the digit count and digits, inverted for
/// negatives so a larger magnitude sorts first. No size limit.
fn integer_key(negative: bool, digits: &[u8]) -> Vec<u8> {
    if digits.is_empty() {
        return vec![1];
    }
    let mut body = Vec::with_capacity(digits.len() + 8);
    body.extend_from_slice(&(digits.len() as u64).to_be_bytes());
    body.extend_from_slice(digits);
    if negative {
        let mut key = vec![0];
        key.extend(body.iter().map(|b| !b));
        key
    } else {
        let mut key = vec![2];
        key.extend(body);
        key
    }
}

fn is_bit_string(s: &str) -> bool {
    s.strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix("'B"))
        .is_some_and(|bits| bits.bytes().all(|b| b == b'0' || b == b'1'))
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+,-./:?= ".contains(&b)
}

/// A numeric OID as written, or a descriptor lowercased. Resolving descriptors to OIDs
/// needs the schema, which callers hold.
fn oid(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if is_numeric_oid(text) {
        Some(text.as_bytes().to_vec())
    } else if is_descr(text) {
        Some(text.to_ascii_lowercase().into_bytes())
    } else {
        None
    }
}

/// The first component of a `( oid ... )` description, or the whole value when it is an
/// assertion value rather than a description.
fn first_component(value: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(value).ok()?.trim();
    match text.strip_prefix('(') {
        Some(rest) => rest
            .split(|c: char| c.is_whitespace() || c == ')')
            .find(|part| !part.is_empty())
            .map(str::as_bytes),
        None => Some(text.as_bytes()),
    }
}

/// `dn` or `dn#'0101'B` (RFC 4517 Name And Optional UID): the DN normalized, the UID kept.
fn unique_member(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    if let Some((dn, uid)) = text.rsplit_once('#')
        && is_bit_string(uid)
    {
        let mut out = normalize_dn(dn)?;
        out.push('#');
        out.push_str(uid);
        return Some(out);
    }
    normalize_dn(text)
}

fn uuid(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() != 36 {
        return None;
    }
    value
        .iter()
        .enumerate()
        .map(|(i, &b)| match i {
            8 | 13 | 18 | 23 => (b == b'-').then_some(b),
            _ => b.is_ascii_hexdigit().then(|| b.to_ascii_lowercase()),
        })
        .collect()
}

/// Normalise a value under an equality rule; attributes without one compare as octets.
pub fn normalize(rule: Option<MatchingRule>, value: &[u8]) -> Option<Vec<u8>> {
    match rule {
        Some(rule) => rule.normalize(value),
        None => Some(value.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use MatchingRule as M;

    #[test]
    fn ascii_preparation_agrees_with_the_general_one() {
        let bytes: Vec<u8> = (0..0x80).collect();
        let mut inputs: Vec<String> = Vec::new();
        for &b in &bytes {
            for around in ["", "a", "Ab", " x ", "a\tB"] {
                let c = char::from(b);
                inputs.push(format!("{around}{c}{around}"));
                inputs.push(format!("{c}{around}{c}"));
            }
        }
        inputs.extend(["", "   ", "  Mixed   Case\r\nText\x7f\x01 ", "\x0b\x0c"].map(String::from));
        for input in &inputs {
            for case in [Case::Fold, Case::Keep] {
                assert_eq!(
                    prepare_ascii(input, case),
                    prepare_chars(input, case),
                    "{input:?}"
                );
            }
        }
    }

    fn norm(rule: MatchingRule, value: &str) -> Option<String> {
        rule.normalize(value.as_bytes())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    fn eq(rule: MatchingRule, a: &str, b: &str) -> Option<bool> {
        rule.matches(a.as_bytes(), b.as_bytes())
    }

    fn cmp(rule: MatchingRule, a: &str, b: &str) -> Option<Ordering> {
        rule.compare(a.as_bytes(), b.as_bytes())
    }

    fn subs(
        rule: MatchingRule,
        value: &str,
        initial: Option<&str>,
        any: &[&str],
        final_: Option<&str>,
    ) -> Option<bool> {
        let any: Vec<String> = any.iter().map(|s| s.to_string()).collect();
        rule.substrings(value.as_bytes(), initial, &any, final_)
    }

    #[test]
    fn names_and_oids_round_trip() {
        for rule in MatchingRule::ALL {
            assert_eq!(MatchingRule::from_name(rule.name()), Some(*rule));
            assert_eq!(
                MatchingRule::from_name(&rule.name().to_uppercase()),
                Some(*rule)
            );
            assert_eq!(MatchingRule::from_name(rule.oid()), Some(*rule));
            assert!(is_numeric_oid(rule.oid()), "{}", rule.oid());
            assert!(Syntax::from_oid(rule.syntax_oid()).is_some());
        }
        for syntax in Syntax::ALL {
            assert_eq!(Syntax::from_oid(syntax.oid()), Some(*syntax));
            assert!(is_numeric_oid(syntax.oid()));
        }
        assert_eq!(MatchingRule::from_name("uuidmatch"), Some(M::UuidMatch));
        assert_eq!(
            MatchingRule::from_name("caseExactIA5SubstringsMatch"),
            Some(M::CaseExactIa5SubstringsMatch)
        );
        assert_eq!(MatchingRule::from_name("noSuchMatch"), None);
        assert_eq!(
            M::CaseIgnoreMatch.description(),
            "( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"
        );
        assert_eq!(
            Syntax::Jpeg.description(),
            "( 1.3.6.1.4.1.1466.115.121.1.28 DESC 'JPEG' X-NOT-HUMAN-READABLE 'TRUE' )"
        );
    }

    #[test]
    fn case_ignore_folds_and_collapses_whitespace() {
        assert_eq!(
            norm(M::CaseIgnoreMatch, "  John \t  SMITH "),
            Some("john smith".into())
        );
        assert_eq!(
            eq(M::CaseIgnoreMatch, "Jürgen Ärger", "JÜRGEN   ärger"),
            Some(true)
        );
        assert_eq!(
            eq(M::CaseIgnoreMatch, "soft\u{AD}hyphen", "softhyphen"),
            Some(true)
        );
        assert_eq!(eq(M::CaseIgnoreMatch, "a\u{A0}b", "a b"), Some(true));
        assert_eq!(eq(M::CaseExactMatch, "John", "john"), Some(false));
        assert_eq!(
            eq(M::CaseExactMatch, " John  Smith", "John Smith "),
            Some(true)
        );
        assert_eq!(norm(M::CaseIgnoreMatch, ""), None);
        assert_eq!(norm(M::CaseIgnoreMatch, "   "), Some(" ".into()));
        assert_eq!(M::CaseIgnoreMatch.normalize(b"\xff\xfe"), None);
        assert_eq!(
            cmp(M::CaseIgnoreOrderingMatch, "alice", "BOB"),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(M::CaseExactOrderingMatch, "alice", "BOB"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(M::CaseIgnoreMatch, "a", "b"),
            None,
            "equality rules do not order"
        );
    }

    #[test]
    fn ia5_rules_reject_non_ascii() {
        assert_eq!(
            eq(
                M::CaseIgnoreIa5Match,
                "Alice@Example.COM",
                "alice@example.com"
            ),
            Some(true)
        );
        assert_eq!(
            eq(M::CaseExactIa5Match, "/home/Alice", "/home/alice"),
            Some(false)
        );
        assert_eq!(eq(M::CaseExactIa5Match, "alice", " alice "), Some(true));
        assert_eq!(norm(M::CaseIgnoreIa5Match, "jürgen@example.com"), None);
        assert_eq!(norm(M::CaseExactIa5Match, ""), Some(String::new()));
        assert_eq!(
            subs(
                M::CaseIgnoreIa5SubstringsMatch,
                "Alice@Example.com",
                Some("alice@"),
                &[],
                Some(".COM")
            ),
            Some(true)
        );
        assert_eq!(
            subs(
                M::CaseExactIa5SubstringsMatch,
                "alice",
                Some("A"),
                &[],
                None
            ),
            Some(false)
        );
        assert_eq!(
            subs(
                M::CaseIgnoreIa5SubstringsMatch,
                "alice",
                Some("ä"),
                &[],
                None
            ),
            None
        );
    }

    #[test]
    fn integers_compare_numerically() {
        assert_eq!(eq(M::IntegerMatch, "010", "10"), Some(true));
        assert_eq!(eq(M::IntegerMatch, "-0", "0"), Some(true));
        assert_eq!(eq(M::IntegerMatch, "-000", "000"), Some(true));
        assert_eq!(norm(M::IntegerMatch, "-0042"), Some("-42".into()));
        assert_eq!(norm(M::IntegerMatch, "12a"), None);
        assert_eq!(norm(M::IntegerMatch, "-"), None);
        assert_eq!(norm(M::IntegerMatch, ""), None);
        assert_eq!(norm(M::IntegerMatch, " 1"), None);
        assert_eq!(
            cmp(M::IntegerOrderingMatch, "-5", "3"),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(M::IntegerOrderingMatch, "-5", "-40"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(M::IntegerOrderingMatch, "9", "10"),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(M::IntegerOrderingMatch, "010", "10"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(M::IntegerOrderingMatch, "0", "-1"),
            Some(Ordering::Greater)
        );
        let huge = "123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(
            cmp(M::IntegerOrderingMatch, huge, "18446744073709551616"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(M::IntegerOrderingMatch, &format!("-{huge}"), "-1"),
            Some(Ordering::Less)
        );
        assert_eq!(cmp(M::IntegerOrderingMatch, "x", "1"), None);
        // A sorted list stays sorted by key.
        let values = [
            "-100", "-99", "-10", "-9", "-1", "0", "1", "2", "10", "99", "100", huge,
        ];
        let keys: Vec<Vec<u8>> = values
            .iter()
            .filter_map(|v| M::IntegerOrderingMatch.ordering_key(v.as_bytes()))
            .collect();
        assert_eq!(keys.len(), values.len());
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(Syntax::Integer.validate(b"-42"));
        assert!(Syntax::Integer.validate(b"0"));
        assert!(!Syntax::Integer.validate(b"010"));
        assert!(!Syntax::Integer.validate(b"-0"));
    }

    #[test]
    fn generalized_time_compares_instants() {
        let g = M::GeneralizedTimeOrderingMatch;
        assert_eq!(
            cmp(g, "20260101120000Z", "20260101120000.5Z"),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(g, "20260101120000Z", "20260101130000+0100"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "20260101120000.5Z", "20260101130000+0100"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(g, "20260101120000,25Z", "20260101120000.250Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "202601011200Z", "20260101120000Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "2026010112Z", "20260101120000Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "2026010112.5Z", "20260101123000Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "202601011200.25Z", "20260101120015Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "20251231233000-0100", "20260101003000Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "20260101000000+05", "20251231190000Z"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(g, "20260101120000.1Z", "20260101120000.05Z"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(g, "19991231235959Z", "20000101000000Z"),
            Some(Ordering::Less)
        );
        assert_eq!(
            norm(M::GeneralizedTimeMatch, "20260101130000.500+0100"),
            Some("20260101120000.5Z".into())
        );
        assert_eq!(
            norm(M::GeneralizedTimeMatch, "20240229000000Z"),
            Some("20240229000000Z".into())
        );
        for bad in [
            "20260101120000",
            "20261301120000Z",
            "20250229000000Z",
            "20260101240000Z",
            "20260101126000Z",
            "20260101120000.Z",
            "20260101120000+2400",
            "2026010112000Z",
            "20260101120000Zjunk",
            "",
            "00000101000000+0100",
            "x0260101120000Z",
        ] {
            assert_eq!(norm(M::GeneralizedTimeMatch, bad), None, "{bad}");
        }
        assert_eq!(cmp(g, "garbage", "20260101120000Z"), None);
    }

    #[test]
    fn substrings_follow_insignificant_space_rules() {
        let s = M::CaseIgnoreSubstringsMatch;
        assert_eq!(subs(s, "John  Smith", Some("john "), &[], None), Some(true));
        assert_eq!(
            subs(s, "Johnny Smith", Some("john "), &[], None),
            Some(false)
        );
        assert_eq!(
            subs(s, "John Smith", None, &["HN", "mi"], Some("TH")),
            Some(true)
        );
        assert_eq!(
            subs(s, "John Smith", None, &["mi", "hn"], None),
            Some(false)
        );
        assert_eq!(
            subs(s, "abc", Some("ab"), &[], Some("bc")),
            Some(false),
            "initial and final must not overlap"
        );
        assert_eq!(subs(s, "abcbc", Some("ab"), &[], Some("bc")), Some(true));
        assert_eq!(subs(s, "anything", None, &[], None), Some(true));
        assert_eq!(
            subs(M::CaseExactSubstringsMatch, "John", Some("j"), &[], None),
            Some(false)
        );
        assert_eq!(subs(M::CaseIgnoreMatch, "John", Some("j"), &[], None), None);
        assert_eq!(
            subs(
                M::TelephoneNumberSubstringsMatch,
                "+1 555-0100",
                None,
                &["5550"],
                None
            ),
            Some(true)
        );
        assert_eq!(
            subs(
                M::NumericStringSubstringsMatch,
                "12 34 56",
                Some("1234"),
                &[],
                Some("6")
            ),
            Some(true)
        );
        assert_eq!(
            subs(M::NumericStringSubstringsMatch, "123", Some("x"), &[], None),
            None
        );
        assert_eq!(
            subs(
                M::CaseIgnoreListSubstringsMatch,
                "1 Main St$Springfield",
                None,
                &["st spring"],
                None
            ),
            Some(false)
        );
        assert_eq!(
            subs(
                M::CaseIgnoreListSubstringsMatch,
                "1 Main St$Springfield",
                None,
                &["spring"],
                None
            ),
            Some(true)
        );
    }

    #[test]
    fn uuids_ignore_case() {
        let a = "0A1B2C3D-4E5F-6789-ABCD-EF0123456789";
        let b = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
        assert_eq!(eq(M::UuidMatch, a, b), Some(true));
        assert_eq!(cmp(M::UuidOrderingMatch, a, b), Some(Ordering::Equal));
        assert_eq!(
            cmp(
                M::UuidOrderingMatch,
                "00000000-0000-0000-0000-000000000001",
                b
            ),
            Some(Ordering::Less)
        );
        assert_eq!(norm(M::UuidMatch, "0a1b2c3d4e5f6789abcdef0123456789"), None);
        assert_eq!(
            norm(M::UuidMatch, "0a1b2c3d-4e5f-6789-abcd-ef012345678g"),
            None
        );
        assert!(Syntax::Uuid.validate(a.as_bytes()));
    }

    #[test]
    fn other_rules() {
        assert_eq!(
            eq(M::TelephoneNumberMatch, "+1 555-0100", "+15550100"),
            Some(true)
        );
        assert_eq!(eq(M::NumericStringMatch, "12 34", "1234"), Some(true));
        assert_eq!(norm(M::NumericStringMatch, "12a"), None);
        assert_eq!(
            cmp(M::NumericStringOrderingMatch, "10", "9"),
            Some(Ordering::Less),
            "string order, per RFC 4517"
        );
        assert_eq!(eq(M::BooleanMatch, "true", "TRUE"), Some(true));
        assert_eq!(norm(M::BooleanMatch, "yes"), None);
        assert!(Syntax::Boolean.validate(b"TRUE") && !Syntax::Boolean.validate(b"true"));
        assert_eq!(
            eq(M::ObjectIdentifierMatch, "inetOrgPerson", "INETORGPERSON"),
            Some(true)
        );
        assert_eq!(
            eq(M::ObjectIdentifierMatch, "2.5.4.3", "2.5.4.3"),
            Some(true)
        );
        assert_eq!(norm(M::ObjectIdentifierMatch, "2.05.4"), None);
        assert_eq!(norm(M::ObjectIdentifierMatch, "1cn"), None);
        assert_eq!(
            eq(
                M::ObjectIdentifierFirstComponentMatch,
                "( 2.5.4.3 NAME 'cn' SUP name )",
                "2.5.4.3"
            ),
            Some(true)
        );
        assert_eq!(
            eq(M::IntegerFirstComponentMatch, "( 01 NAME 'x' )", "1"),
            Some(true)
        );
        assert_eq!(
            eq(M::OctetStringMatch, "{SSHA}abc", "{ssha}abc"),
            Some(false)
        );
        assert_eq!(
            cmp(M::OctetStringOrderingMatch, "ab", "abc"),
            Some(Ordering::Less)
        );
        assert_eq!(
            eq(
                M::DistinguishedNameMatch,
                "CN=Alice,DC=Example",
                "cn=alice,dc=example"
            ),
            Some(true)
        );
        assert_eq!(
            eq(M::UniqueMemberMatch, "CN=Alice#'0101'B", "cn=alice#'0101'B"),
            Some(true)
        );
        assert_eq!(
            eq(M::UniqueMemberMatch, "cn=alice#'0101'B", "cn=alice"),
            Some(false)
        );
        assert_eq!(eq(M::BitStringMatch, "'0101'B", "'0101'B"), Some(true));
        assert_eq!(norm(M::BitStringMatch, "'012'B"), None);
        assert_eq!(
            eq(
                M::CaseIgnoreListMatch,
                "1 Main  St $ SPRINGFIELD",
                "1 main st$springfield"
            ),
            Some(true)
        );
        assert_eq!(eq(M::CaseIgnoreListMatch, "a\\24b", "a$b"), Some(false));
        assert!(Syntax::CountryString.validate(b"DE") && !Syntax::CountryString.validate(b"DEU"));
        assert!(
            Syntax::PrintableString.validate(b"Hello (World)")
                && !Syntax::PrintableString.validate(b"a@b")
        );
        assert!(Syntax::Oid.validate(b"cn") && !Syntax::Oid.validate(b"c n"));
        assert!(
            !Syntax::DirectoryString.validate(b"") && !Syntax::DirectoryString.validate(b"\xff")
        );
        assert!(Syntax::OctetString.validate(b"\xff\x00"));
    }

    #[test]
    fn numeric_oid_and_descr_checks() {
        assert!(
            is_numeric_oid("2.5.4.3")
                && is_numeric_oid("0.9")
                && is_numeric_oid("2.25.235497813471364094925541187040296631981")
        );
        for bad in ["2", "2.", ".2", "2..5", "2.05", "a.b", "", "2.5 "] {
            assert!(!is_numeric_oid(bad), "{bad}");
        }
        assert!(is_descr("cn") && is_descr("x-foo") && is_descr("apple-user-homeurl"));
        for bad in ["", "1cn", "c n", "c_n", "-x"] {
            assert!(!is_descr(bad), "{bad}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet: &[u8] = b"0123456789-+.,Z$#'B\\ \tabcXYZ()\xc3\xa4\xff\x00";
        for round in 0..600 {
            let len = round % 40;
            let mut value = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                value.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let text = String::from_utf8_lossy(&value).into_owned();
            for rule in MatchingRule::ALL {
                let _ = rule.normalize(&value);
                let _ = rule.compare(&value, b"20260101120000Z");
                let _ = rule.compare(&value, &value);
                let _ = rule.substrings(
                    &value,
                    Some(&text),
                    std::slice::from_ref(&text),
                    Some(&text),
                );
            }
            for syntax in Syntax::ALL {
                let _ = syntax.validate(&value);
            }
        }
    }
}
