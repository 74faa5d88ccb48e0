//! Framing: cutting the byte stream into LDAPMessages before the codec decodes them, with
//! the checks the codec lacks up front (a SEQUENCE with a definite, bounded length; the
//! message id range; control criticality from the raw bytes), and recognising another
//! protocol spoken at the LDAP port. No LDAP meaning here.

use ldap3_proto::LdapCodec;
use ldap3_proto::proto::LdapMsg;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::ldap::ber;

const MAX_BER_DEPTH: usize = 64;

/// The frame decoder as connections use it, capped at `max_bytes` a message.
pub fn codec(max_bytes: usize) -> FrameCodec {
    FrameCodec {
        inner: LdapCodec::new(Some(max_bytes), Some(MAX_BER_DEPTH)),
        max_bytes,
        first: true,
    }
}

/// One decoded request, with what the codec does not keep.
pub struct Request {
    pub msg: LdapMsg,
    /// OIDs of the controls marked critical, read from the raw bytes: the codec drops the
    /// criticality of some controls it decodes (Server Side Sort, DirSync).
    pub critical: Vec<String>,
    /// A simple bind's password was octets that are not UTF-8: the codec reads passwords
    /// as text, so the framing put a placeholder in its place, and the bind must fail (49)
    /// like any wrong password.
    pub unreadable_password: bool,
}

/// The codec with the checks it lacks up front: every LDAPMessage is a SEQUENCE with a
/// definite length of at most four length bytes. Anything else can never become a valid
/// message, so it is refused at once instead of waiting for more bytes (slapd does the same).
/// A declared length over the limit is refused before the body arrives. Once a whole
/// message is buffered, its message id range and control criticality are read from the
/// raw bytes before the codec decodes it.
pub struct FrameCodec {
    inner: LdapCodec,
    max_bytes: usize,
    /// Nothing decoded yet: the bytes are the first the client sent, where another
    /// protocol (TLS, HTTP) is recognised.
    first: bool,
}

impl FrameCodec {
    /// A new message size cap (after a bind), for the messages still to come.
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.inner = LdapCodec::new(Some(max_bytes), Some(MAX_BER_DEPTH));
        self.max_bytes = max_bytes;
    }
}

impl Decoder for FrameCodec {
    type Item = Request;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, std::io::Error> {
        if buf.first().is_some_and(|&tag| tag != 0x30) {
            if let Some(other) = Foreign::detect(buf).filter(|_| self.first) {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, other));
            }
            return Err(bad("message is not a SEQUENCE"));
        }
        if let Some(&len) = buf.get(1) {
            if len == 0x80 {
                return Err(bad("indefinite length"));
            }
            if len & 0x80 != 0 {
                let n = usize::from(len & 0x7f);
                if n > 4 {
                    return Err(bad("length field too long"));
                }
                if let Some(bytes) = buf.get(2..2 + n) {
                    let declared = bytes
                        .iter()
                        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                    if declared > self.max_bytes {
                        return Err(bad("message too large"));
                    }
                }
            }
        }
        let Some((frame, _)) = ber::read(buf) else {
            // Not all there yet; the codec may still refuse what it has.
            return match self.inner.decode(buf)? {
                None => Ok(None),
                Some(_) => Err(bad("inconsistent message framing")),
            };
        };
        let critical = scan(frame.content).ok_or_else(|| bad("malformed message envelope"))?;
        let length = buf.len() - rest_len(buf);
        let (decoded, unreadable_password) = match readable(&buf[..length]) {
            None => (self.inner.decode(buf)?, false),
            Some((message, password)) => {
                let _ = buf.split_to(length);
                let mut own = BytesMut::from(message.as_slice());
                (self.inner.decode(&mut own)?, password)
            }
        };
        match decoded {
            Some(msg) => {
                self.first = false;
                Ok(Some(Request {
                    msg,
                    critical,
                    unreadable_password,
                }))
            }
            None => Err(bad("inconsistent message framing")),
        }
    }
}

/// The bytes after the first whole TLV in `buf` (which holds one).
fn rest_len(buf: &[u8]) -> usize {
    ber::read(buf).map_or(0, |(_, rest)| rest.len())
}

/// RFC 4511 sends a simple bind's password and a filter's assertion values as OCTET
/// STRINGs, which the codec reads as UTF-8 text and refuses otherwise, ending the
/// connection. When `message` carries such octets, the message again with each replaced
/// (a password by a placeholder, a filter value by [`UNREADABLE`], which makes its item
/// Undefined), and whether it was the password: the bind then fails with 49 and the
/// connection goes on. None, after a look at the bind's password or the search's filter
/// only, when nothing needs replacing.
fn readable(message: &[u8]) -> Option<(Vec<u8>, bool)> {
    // Every bind and search passes here: a look that allocates nothing comes first.
    if !unreadable(message) {
        return None;
    }
    let (outer, _) = ber::read(message)?;
    let items = elements(outer.content)?;
    let op = items.get(1)?;
    let (op_content, password) = match op.tag {
        // BindRequest: version, name, then simple [0].
        0x60 => {
            let mut parts = elements(op.content)?;
            let auth = parts.get_mut(2)?;
            if auth.tag != 0x80 || std::str::from_utf8(auth.content).is_ok() {
                return None;
            }
            auth.content = PLACEHOLDER.as_bytes();
            (join(&parts), true)
        }
        // SearchRequest: base, scope, deref, sizeLimit, timeLimit, typesOnly, filter, ...
        0x63 => {
            let parts = elements(op.content)?;
            let filter = parts.get(6)?;
            let fixed = filter_readable(filter, 0)?;
            let mut out = Vec::with_capacity(op.content.len());
            for (i, part) in parts.iter().enumerate() {
                if i == 6 {
                    out.extend_from_slice(&fixed);
                } else {
                    out.extend(ber::write(part.tag, part.content));
                }
            }
            (out, false)
        }
        _ => return None,
    };
    let mut body = Vec::with_capacity(message.len());
    for (i, item) in items.iter().enumerate() {
        if i == 1 {
            body.extend(ber::write(op.tag, &op_content));
        } else {
            body.extend(ber::write(item.tag, item.content));
        }
    }
    Some((ber::write(0x30, &body), password))
}

/// Does `message` carry a simple bind password, or a filter value, that is not UTF-8?
fn unreadable(message: &[u8]) -> bool {
    let Some(op) = ber::read(message).and_then(|(outer, _)| nth(outer.content, 1)) else {
        return false;
    };
    match op.tag {
        0x60 => nth(op.content, 2)
            .is_some_and(|auth| auth.tag == 0x80 && std::str::from_utf8(auth.content).is_err()),
        0x63 => nth(op.content, 6).is_some_and(|filter| filter_unreadable(&filter, 0)),
        _ => false,
    }
}

/// The `n`th TLV of `content`, if it splits that far.
fn nth(mut content: &[u8], n: usize) -> Option<ber::Tlv<'_>> {
    for _ in 0..n {
        content = ber::read(content)?.1;
    }
    ber::read(content).map(|(tlv, _)| tlv)
}

/// Does the filter element `f` hold a value that is not UTF-8 (see [`filter_readable`])?
fn filter_unreadable(f: &ber::Tlv<'_>, depth: usize) -> bool {
    if depth > MAX_BER_DEPTH {
        return false;
    }
    if f.tag & 0x20 == 0 {
        return f.tag != 0x84 && std::str::from_utf8(f.content).is_err();
    }
    let mut rest = f.content;
    while let Some((part, next)) = ber::read(rest) {
        if filter_unreadable(&part, depth + 1) {
            return true;
        }
        rest = next;
    }
    false
}

/// Stands in for a password that is not UTF-8; the bind fails whatever it is.
const PLACEHOLDER: &str = "\u{FFFF}";

/// The filter element `f` again, with every value that is not UTF-8 replaced by
/// [`UNREADABLE`]; None when none is. Deeper than the codec decodes, nothing is looked
/// at: the codec refuses the message.
fn filter_readable(f: &ber::Tlv<'_>, depth: usize) -> Option<Vec<u8>> {
    if depth > MAX_BER_DEPTH {
        return None;
    }
    // Constructed elements hold filters or their parts; primitive ones hold values, but
    // for an extensible match's dnAttributes [4], a BOOLEAN.
    if f.tag & 0x20 == 0 {
        if f.tag == 0x84 || std::str::from_utf8(f.content).is_ok() {
            return None;
        }
        let unreadable = crate::directory::filter::UNREADABLE.to_string();
        return Some(ber::write(f.tag, unreadable.as_bytes()));
    }
    let parts = elements(f.content)?;
    let fixed: Vec<Option<Vec<u8>>> = parts
        .iter()
        .map(|p| filter_readable(p, depth + 1))
        .collect();
    if fixed.iter().all(Option::is_none) {
        return None;
    }
    let mut content = Vec::with_capacity(f.content.len());
    for (part, fixed) in parts.iter().zip(fixed) {
        match fixed {
            Some(bytes) => content.extend(bytes),
            None => content.extend(ber::write(part.tag, part.content)),
        }
    }
    Some(ber::write(f.tag, &content))
}

/// The TLVs `content` consists of; None if it does not split into whole ones.
fn elements(mut content: &[u8]) -> Option<Vec<ber::Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = ber::read(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// TLVs written one after another.
fn join(parts: &[ber::Tlv<'_>]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| ber::write(p.tag, p.content))
        .collect()
}

/// Another protocol spoken at the LDAP port, recognised from its first bytes (389-ds logs
/// the same hint): a TLS client that should have used ldaps:// or StartTLS, or a web client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    TlsClientHello,
    Http,
}

/// Request methods of HTTP/1.x, as the first bytes of a request.
const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PRI * HTTP/2",
];

impl Foreign {
    /// What `buf` (not an LDAPMessage) starts like, if it is one of the usual mistakes.
    /// A prefix too short to tell is taken as what it could still become.
    pub fn detect(buf: &[u8]) -> Option<Foreign> {
        // A TLS record: handshake (22), then the version's major byte 3.
        if buf.first() == Some(&0x16) && buf.get(1).is_none_or(|b| *b == 0x03) {
            return Some(Foreign::TlsClientHello);
        }
        let http = HTTP_METHODS.iter().any(|m| {
            let n = m.len().min(buf.len());
            n > 0 && buf[..n] == m[..n]
        });
        http.then_some(Foreign::Http)
    }

    pub fn hint(self) -> &'static str {
        match self {
            Foreign::TlsClientHello => {
                "TLS ClientHello on the plaintext LDAP port; use ldaps:// on the LDAPS port, or StartTLS"
            }
            Foreign::Http => "HTTP request on the LDAP port; this is not a web server",
        }
    }
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hint())
    }
}

impl std::error::Error for Foreign {}

/// The foreign protocol a decode error reports, if that is what it is.
pub fn foreign(e: &std::io::Error) -> Option<Foreign> {
    e.get_ref()?.downcast_ref::<Foreign>().copied()
}

fn bad(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// Check the envelope of one LDAPMessage (its content, after the SEQUENCE header) and
/// return the OIDs of its critical controls; None if it is not shaped like a message:
///
/// ```text
/// LDAPMessage ::= SEQUENCE { messageID INTEGER (0..maxInt), protocolOp, controls [0] OPTIONAL }
/// Control ::= SEQUENCE { controlType OCTET STRING, criticality BOOLEAN DEFAULT FALSE,
///                        controlValue OCTET STRING OPTIONAL }
/// ```
///
/// The codec silently truncates message ids to 32 bits, so the range is checked here.
fn scan(message: &[u8]) -> Option<Vec<String>> {
    let (msgid, rest) = ber::read(message)?;
    if msgid.tag != 0x02 || !(1..=8).contains(&msgid.content.len()) {
        return None;
    }
    // Two's complement, big-endian.
    let sign = if msgid.content.first().is_some_and(|b| b & 0x80 != 0) {
        -1i64
    } else {
        0
    };
    let value = msgid
        .content
        .iter()
        .fold(sign, |acc, b| (acc << 8) | i64::from(*b));
    if !(0..=i64::from(i32::MAX)).contains(&value) {
        return None;
    }
    let (_op, rest) = ber::read(rest)?;
    let mut critical = Vec::new();
    let Some((controls, _)) = ber::read(rest).filter(|(c, _)| c.tag == 0xa0) else {
        // No controls (anything else after the operation is ignored, as the codec does).
        return Some(critical);
    };
    let mut body = controls.content;
    while !body.is_empty() {
        let (control, next) = ber::read(body)?;
        body = next;
        let (oid, after) = ber::read(control.content).filter(|_| control.tag == 0x30)?;
        if oid.tag != 0x04 {
            return None;
        }
        // BER: any non-zero octet is TRUE.
        let is_critical = ber::read(after)
            .is_some_and(|(flag, _)| flag.tag == 0x01 && flag.content.iter().any(|b| *b != 0));
        if is_critical {
            critical.push(String::from_utf8_lossy(oid.content).into_owned());
        }
    }
    Some(critical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(msgid: &[u8], controls: &[Vec<u8>]) -> Vec<u8> {
        let mut body = ber::write(0x02, msgid);
        body.extend(ber::write(0x42, b""));
        if !controls.is_empty() {
            body.extend(ber::write(0xa0, &controls.concat()));
        }
        ber::write(0x30, &body)
    }

    fn control(oid: &str, flag: Option<u8>, value: Option<&[u8]>) -> Vec<u8> {
        let mut body = ber::write(0x04, oid.as_bytes());
        if let Some(flag) = flag {
            body.extend(ber::write(0x01, &[flag]));
        }
        if let Some(value) = value {
            body.extend(ber::write(0x04, value));
        }
        ber::write(0x30, &body)
    }

    fn decode(bytes: &[u8]) -> Result<Option<Request>, std::io::Error> {
        let mut buf = BytesMut::from(bytes);
        codec(1 << 16).decode(&mut buf)
    }

    #[test]
    fn criticality_comes_from_the_raw_control() {
        let controls = [
            control(
                "1.2.840.113556.1.4.473",
                Some(0xff),
                Some(b"\x30\x04\x30\x02\x04\x00"),
            ),
            control("1.2.3.4", Some(0x00), None),
            control("1.2.3.5", None, Some(b"v")),
            // BER: any non-zero octet is TRUE.
            control("1.2.3.6", Some(0x01), None),
        ];
        let bytes = message(&[7], &controls);
        let request = decode(&bytes).unwrap().unwrap();
        assert_eq!(request.msg.msgid, 7);
        assert_eq!(request.critical, ["1.2.840.113556.1.4.473", "1.2.3.6"]);
        assert!(
            decode(&message(&[7], &[]))
                .unwrap()
                .unwrap()
                .critical
                .is_empty()
        );
    }

    #[test]
    fn message_ids_outside_the_ldap_range_are_refused() {
        for bad in [
            &[0x01, 0, 0, 0, 1][..],
            &[0x00, 0x80, 0, 0, 0],
            &[0xff],
            &[],
        ] {
            assert!(decode(&message(bad, &[])).is_err(), "{bad:?}");
        }
        // 0 is in range for the codec; the connection refuses it as reserved for notices.
        for good in [&[0x00][..], &[0x7f, 0xff, 0xff, 0xff], &[0x00, 0x00, 0x01]] {
            assert!(decode(&message(good, &[])).unwrap().is_some(), "{good:?}");
        }
    }

    #[test]
    fn other_protocols_are_recognised_in_the_first_bytes_only() {
        let kind = |bytes: &[u8]| {
            let mut buf = BytesMut::from(bytes);
            let err = codec(1 << 16).decode(&mut buf).err()?;
            foreign(&err)
        };
        assert_eq!(
            kind(&[0x16, 0x03, 0x01, 0x02, 0x00]),
            Some(Foreign::TlsClientHello)
        );
        assert_eq!(kind(&[0x16]), Some(Foreign::TlsClientHello));
        assert_eq!(kind(b"GET / HTTP/1.1\r\n"), Some(Foreign::Http));
        assert_eq!(kind(b"PO"), Some(Foreign::Http));
        assert_eq!(kind(b"OPTIONS * HTTP/1.1\r\n"), Some(Foreign::Http));
        assert_eq!(kind(&[0x16, 0x01]), None, "not a TLS record");
        assert_eq!(kind(b"GOT"), None);
        assert_eq!(kind(&[0xff, 0x00]), None);
        // After an LDAP message, the same bytes are just a malformed message.
        let mut codec = codec(1 << 16);
        let mut buf = BytesMut::from(&message(&[1], &[])[..]);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert!(codec.decode(&mut buf).unwrap().is_some());
        let Err(err) = codec.decode(&mut buf) else {
            panic!("an error");
        };
        assert!(foreign(&err).is_none());
    }

    #[test]
    fn partial_messages_wait_and_whole_ones_are_consumed() {
        let bytes = message(&[1], &[]);
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        let mut codec = codec(1 << 16);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&bytes[bytes.len() - 1..]);
        buf.extend_from_slice(&bytes);
        assert!(codec.decode(&mut buf).unwrap().is_some());
        assert_eq!(buf.len(), bytes.len(), "exactly one message consumed");
        assert!(codec.decode(&mut buf).unwrap().is_some());
        assert!(buf.is_empty());
    }
}
