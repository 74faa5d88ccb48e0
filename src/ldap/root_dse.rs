//! The rootDSE (RFC 4512 §5.1) and the subschema subentry at `cn=Subschema`.
//!
//! Both are built in memory from the config and the loaded schema; neither is stored.
//! Their attributes are operational, so they come back when named or for `+`. The
//! rootDSE lists SASL EXTERNAL only where it can succeed on the asking connection, as
//! slapd does: on LDAPI, and over TLS with a verified client certificate.

use crate::directory::dn::Dn;
use crate::directory::entry::Entry;
use crate::dit::computed::SUBSCHEMA_DN;
use crate::ldap::oid::{SUPPORTED_CONTROLS, SUPPORTED_EXTENSIONS};
use crate::ldap::session::{ClientCert, Session, Transport};
use crate::state::State;

/// RFC 3673 all-operational-attributes, RFC 4526 absolute true/false filters,
/// RFC 4529 requesting attributes by object class is not claimed.
const SUPPORTED_FEATURES: &[&str] = &["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"];

pub fn root_dse(state: &State, session: &Session) -> Entry {
    let mut e = Entry::new(Dn::root());
    let suffix = state.config.suffix.to_string();
    e.set(
        "objectClass",
        vec![b"top".to_vec(), b"extensibleObject".to_vec()],
    );
    e.set_str("namingContexts", &suffix);
    e.set_str("defaultNamingContext", &suffix);
    e.set_str("subschemaSubentry", SUBSCHEMA_DN);
    e.set("supportedLDAPVersion", vec![b"3".to_vec()]);
    e.set("supportedControl", bytes(SUPPORTED_CONTROLS));
    e.set("supportedExtension", bytes(SUPPORTED_EXTENSIONS));
    e.set("supportedFeatures", bytes(SUPPORTED_FEATURES));
    let external = match session.transport {
        Transport::Ldapi { .. } => true,
        Transport::Tls => {
            state.config.tls.client_ca.is_some()
                && matches!(session.client_cert, ClientCert::Verified(_))
        }
        Transport::Plain => false,
    };
    if external {
        e.set("supportedSASLMechanisms", vec![b"EXTERNAL".to_vec()]);
    }
    e.set_str("vendorName", "Tessera");
    e.set_str(
        "vendorVersion",
        concat!("Tessera ", env!("CARGO_PKG_VERSION")),
    );
    // A cluster member says what it is now: leader, follower, learner, candidate,
    // cut-off or joining.
    if let Some(cluster) = &state.cluster {
        e.set_str("tesseraClusterRole", cluster.role().as_str());
        e.set_str("tesseraClusterNode", &cluster.id().to_string());
    }
    e.set_str("entryDN", "");
    e.set_str("structuralObjectClass", "extensibleObject");
    e
}

pub fn subschema(state: &State) -> Entry {
    // A constant DN: parsing it cannot fail.
    let dn = Dn::parse(SUBSCHEMA_DN).unwrap_or_else(|_| Dn::root());
    let mut e = Entry::new(dn);
    e.set(
        "objectClass",
        bytes(&["top", "subentry", "subschema", "extensibleObject"]),
    );
    e.set_str("cn", "Subschema");
    e.set_str("structuralObjectClass", "subentry");
    e.set_str("entryDN", SUBSCHEMA_DN);
    e.set_str("subschemaSubentry", SUBSCHEMA_DN);
    for (name, values) in state.schema.subschema_values() {
        e.set(name, values.into_iter().map(String::into_bytes).collect());
    }
    e
}

fn bytes(values: &[&str]) -> Vec<Vec<u8>> {
    values.iter().map(|v| v.as_bytes().to_vec()).collect()
}
