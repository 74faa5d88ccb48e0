//! `DitError`: why the directory refused or failed an operation, as an LDAP result code
//! (the directory's own vocabulary, RFC 4511 §4.1.9) with a short, stable message, and the
//! one place internal errors become those codes. Every front end reports it: LDAP as a
//! result, HTTP as a status with the same message. Internal detail goes to the log only.

use ldap3_proto::proto::LdapResultCode;
use serde::{Deserialize, Serialize};

use crate::directory::dn::{Dn, DnError};
use crate::directory::filter::FilterError;
use crate::store::StoreError;

/// The message of [`DitError::lapsed`].
const LAPSED: &str = "the credentials this connection authenticated with are no longer valid \
     (revoked, expired or deleted); authenticate again";

#[derive(Debug, Clone)]
pub struct DitError {
    pub code: LdapResultCode,
    pub matched_dn: String,
    pub message: String,
    /// For a refusal by the control rule (`dit::control`): what the target has that the
    /// caller lacks, for front ends that say it in their own words.
    pub refusal: Option<Box<Refusal>>,
}

impl DitError {
    pub fn new(code: LdapResultCode, message: impl Into<String>) -> DitError {
        DitError {
            code,
            matched_dn: String::new(),
            message: message.into(),
            refusal: None,
        }
    }

    pub fn no_such_object(matched_dn: String) -> DitError {
        DitError {
            code: LdapResultCode::NoSuchObject,
            matched_dn,
            message: "no such object".into(),
            refusal: None,
        }
    }

    /// noSuchObject for a missing `dn`, naming its closest existing ancestor.
    pub fn missing(
        r: &impl crate::store::DirectoryRead,
        dn: &crate::directory::dn::Dn,
    ) -> DitError {
        match r.closest_ancestor(dn) {
            Ok(matched) => DitError::no_such_object(matched),
            Err(e) => e.into(),
        }
    }

    /// The one answer for every failed credential check, whatever the cause.
    pub fn invalid_credentials() -> DitError {
        DitError::new(LdapResultCode::InvalidCredentials, "invalid credentials")
    }

    pub fn insufficient_access() -> DitError {
        DitError::new(
            LdapResultCode::InsufficentAccessRights,
            "insufficient access rights",
        )
    }

    /// The credentials an identity authenticated with are no longer valid: its token was
    /// revoked or expired, or its account expired or was deleted. A front end ends the
    /// session (LDAP: a Notice of Disconnection) so the client authenticates again.
    pub fn lapsed() -> DitError {
        DitError::new(LdapResultCode::InvalidCredentials, LAPSED)
    }

    /// Is this [`DitError::lapsed`]?
    pub fn is_lapsed(&self) -> bool {
        self.code == LdapResultCode::InvalidCredentials && self.message == LAPSED
    }

    pub fn protocol(message: impl Into<String>) -> DitError {
        DitError::new(LdapResultCode::ProtocolError, message)
    }

    pub fn unwilling(message: impl Into<String>) -> DitError {
        DitError::new(LdapResultCode::UnwillingToPerform, message)
    }

    pub fn other(message: impl Into<String>) -> DitError {
        DitError::new(LdapResultCode::Other, message)
    }
}

impl From<StoreError> for DitError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists => {
                DitError::new(LdapResultCode::EntryAlreadyExists, "entry already exists")
            }
            StoreError::NoParent => DitError::no_such_object(String::new()),
            // A panic on the blocking thread: a bug, not an outage, so not 52 (which
            // tells clients to try again elsewhere). The transaction died with it.
            StoreError::Task(why) => {
                tracing::error!(event = "panic", error = %why, "a store task failed");
                DitError::new(LdapResultCode::Other, "internal server error")
            }
            other if other.is_disk_full() => {
                tracing::error!(error = %other, "the disk holding the directory is full");
                DitError::new(
                    LdapResultCode::Unavailable,
                    "the directory store is unavailable: its disk is full",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                DitError::new(
                    LdapResultCode::Unavailable,
                    "the directory store is unavailable",
                )
            }
        }
    }
}

impl From<DnError> for DitError {
    fn from(e: DnError) -> Self {
        DitError::new(LdapResultCode::InvalidDNSyntax, e.to_string())
    }
}

impl From<FilterError> for DitError {
    fn from(e: FilterError) -> Self {
        DitError::unwilling(e.to_string())
    }
}

/// Why an actor does not cover a target: what the target has that the actor lacks. Data,
/// so it crosses a cluster with the refusal it explains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    #[serde(with = "dn_text")]
    pub target: Dn,
    pub why: Uncovered,
}

/// What a target has (or is) that the actor does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Uncovered {
    /// It holds the administrators' role (or is it).
    Admin,
    /// It holds this role (by name).
    HoldsRole(String),
    /// It is this role (by name), which the actor does not hold.
    IsRole(String),
    /// It manages this account, which the actor does not cover (why, when known: past
    /// the depth followed, not said).
    Manages(#[serde(with = "dn_text")] Dn, Option<Box<Uncovered>>),
}

impl Uncovered {
    /// "holds directory-admins", "manages uid=x,..., which holds the role y": the subject
    /// named before it, in the singular.
    pub fn third_person(&self) -> String {
        self.phrase(false)
    }

    /// The same after "they": "hold directory-admins", "manage uid=x,..., which ...".
    pub fn plural(&self) -> String {
        self.phrase(true)
    }

    fn phrase(&self, plural: bool) -> String {
        let verb = |one: &'static str, many: &'static str| if plural { many } else { one };
        match self {
            Uncovered::Admin => format!("{} directory-admins", verb("holds", "hold")),
            Uncovered::HoldsRole(name) => format!("{} the role {name}", verb("holds", "hold")),
            Uncovered::IsRole(name) => format!("{} the role {name}", verb("is", "are")),
            Uncovered::Manages(account, None) => {
                format!("{} {account}", verb("manages", "manage"))
            }
            Uncovered::Manages(account, Some(inner)) => format!(
                "{} {account}, which {}",
                verb("manages", "manage"),
                inner.third_person()
            ),
        }
    }
}

mod dn_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::directory::dn::Dn;

    pub fn serialize<S: Serializer>(dn: &Dn, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(dn.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dn, D::Error> {
        let text = String::deserialize(d)?;
        Dn::parse(&text).map_err(serde::de::Error::custom)
    }
}
