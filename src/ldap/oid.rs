//! Every object identifier this server speaks: the controls and extended operations it
//! supports (listed in the rootDSE), the unsolicited notice it sends, and Tessera's own
//! extended operations under its root arc `2.25.235497813471364094925541187040296631981`
//! (a UUID-derived OID, RFC 9562 §4 / X.667). The admin client uses the same constants.

pub use ldap3_proto::proto::{OID_PASSWORD_MODIFY, OID_WHOAMI};

/// RFC 2696 simple paged results: searches only.
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// RFC 3296 ManageDsaIT: there are no referrals, so honouring it is a no-op everywhere.
pub const MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
/// RFC 4370 proxied authorization.
pub const PROXIED_AUTHZ: &str = "2.16.840.1.113730.3.4.18";

/// RFC 4511 §4.14 StartTLS.
pub const STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
/// RFC 4511 §4.4.1 Notice of Disconnection.
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// `TesseraRoot.4.1`: generate a token. Request `SEQUENCE { account [0], label [1],
/// scope [2] OPTIONAL ("read-only" | "read-write"), expires [3] OPTIONAL (RFC 3339 time,
/// duration or "never"), intent [4] OPTIONAL ("api-token" | "app-password"),
/// extendOnUse [5] OPTIONAL (duration) }`, all OCTET STRINGs; response
/// `SEQUENCE { tokenId [0], token [1], expires [2] OPTIONAL }`.
pub const TOKEN_GENERATE: &str = "2.25.235497813471364094925541187040296631981.4.1";
/// `TesseraRoot.4.2`: rotate a token. Request `SEQUENCE { account [0], tokenId [1],
/// overlap [2] OPTIONAL (duration, default 24h) }`; response as for generate.
pub const TOKEN_ROTATE: &str = "2.25.235497813471364094925541187040296631981.4.2";
/// `TesseraRoot.4.3`: what bind throttling is slowing down now (administrators only). No
/// request value; the response value is UTF-8 lines `account TAB source TAB failures TAB
/// held-until` (generalizedTime), an empty account standing for a whole source.
pub const THROTTLED: &str = "2.25.235497813471364094925541187040296631981.4.3";
/// `TesseraRoot.4.4`: write a consistent copy of the store to a new file on the server's
/// machine. Local administrators on the LDAPI socket only (a network client may not make
/// the server write files). Request value: the absolute path of a new file, or of a
/// directory to write a file named by the time into; response value: the number of
/// entries copied, a TAB, and the file written, as text.
pub const BACKUP: &str = "2.25.235497813471364094925541187040296631981.4.4";

/// `TesseraRoot.4.5`: the cluster this server is a member of. Local administrators on the
/// LDAPI socket only. Request value: UTF-8 JSON `{"op": "init" | "status" | "add-replica"
/// | "promote" | "remove" | "compact", "id": N, "address": "host:port"}`; response value:
/// UTF-8 text (JSON for status). Membership changes are made by the leader, forwarded
/// there from any member.
pub const CLUSTER: &str = "2.25.235497813471364094925541187040296631981.4.5";

/// `TesseraRoot.4.6`: a one-time sign-in link for the web console, for local
/// administrators on the LDAPI socket only (they have no password to sign in with). No
/// request value; the response value is the link's secret, a TAB, and when it lapses (RFC
/// 3339), as text. The secret is good once, for `console.sign_in_link_lifetime`, and signs
/// in as the identity that asked.
pub const CONSOLE_SIGN_IN: &str = "2.25.235497813471364094925541187040296631981.4.6";

/// Controls Tessera understands; any other one marked critical is refused with 12.
pub const SUPPORTED_CONTROLS: &[&str] = &[PAGED_RESULTS, MANAGE_DSA_IT, PROXIED_AUTHZ];

/// Extended operations, as the rootDSE lists them.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    OID_WHOAMI,
    OID_PASSWORD_MODIFY,
    STARTTLS,
    TOKEN_GENERATE,
    TOKEN_ROTATE,
    THROTTLED,
    BACKUP,
    CLUSTER,
    CONSOLE_SIGN_IN,
];
