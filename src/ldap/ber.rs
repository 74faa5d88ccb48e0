//! The little BER the extended operations need: definite-length TLVs with context tags,
//! read and written by hand (the codec handles whole LDAP messages, not these values);
//! and SearchResultEntry messages, encoded straight from an entry's attributes, since
//! searches stream thousands of them.

/// One element: its tag byte and content.
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Split the first TLV off `input`; None if it is malformed or truncated.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((Tlv { tag, content }, rest))
}

/// The elements of a SEQUENCE value, or None if it is not one.
pub fn sequence(input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let (seq, rest) = read(input)?;
    if seq.tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut items = Vec::new();
    let mut body = seq.content;
    while !body.is_empty() {
        let (item, next) = read(body)?;
        items.push(item);
        body = next;
    }
    Some(items)
}

pub fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Bytes a length takes in a BER header (definite form).
fn length_size(len: usize) -> usize {
    match len {
        0..0x80 => 1,
        _ => 1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize,
    }
}

/// Bytes a whole TLV with `content` bytes of content takes.
fn tlv_size(content: usize) -> usize {
    1 + length_size(content) + content
}

fn put_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// A message id as a minimal two's-complement INTEGER body (ids are 1..2^31-1).
fn integer_body(value: i32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 3
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// One whole LDAPMessage carrying a SearchResultEntry, appended to `out` (RFC 4511 §4.5.2), no controls:
///
/// ```text
/// SEQUENCE { messageID INTEGER, [APPLICATION 4] SEQUENCE { objectName OCTET STRING,
///            attributes SEQUENCE OF SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING } } }
/// ```
pub fn search_result_entry(out: &mut Vec<u8>, msgid: i32, dn: &str, attrs: &[(&str, &[Vec<u8>])]) {
    let attr_size = |(name, values): &(&str, &[Vec<u8>])| {
        let vals: usize = values.iter().map(|v| tlv_size(v.len())).sum();
        tlv_size(name.len()) + tlv_size(vals)
    };
    let list: usize = attrs.iter().map(|a| tlv_size(attr_size(a))).sum();
    let op = tlv_size(dn.len()) + tlv_size(list);
    let id = integer_body(msgid);
    let message = tlv_size(id.len()) + tlv_size(op);
    out.reserve(tlv_size(message));
    put_header(out, 0x30, message);
    put_header(out, 0x02, id.len());
    out.extend_from_slice(&id);
    put_header(out, 0x64, op);
    put_header(out, 0x04, dn.len());
    out.extend_from_slice(dn.as_bytes());
    put_header(out, 0x30, list);
    for attr in attrs {
        let (name, values) = attr;
        put_header(out, 0x30, attr_size(attr));
        put_header(out, 0x04, name.len());
        out.extend_from_slice(name.as_bytes());
        put_header(out, 0x31, values.iter().map(|v| tlv_size(v.len())).sum());
        for v in values.iter() {
            put_header(out, 0x04, v.len());
            out.extend_from_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let long = vec![7u8; 300];
        let mut body = write(0x80, b"abc");
        body.extend(write(0x81, &long));
        let seq = write(0x30, &body);
        let items = sequence(&seq).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].tag, items[0].content), (0x80, &b"abc"[..]));
        assert_eq!(items[1].content.len(), 300);
        for cut in 0..seq.len() {
            assert!(sequence(&seq[..cut]).is_none());
        }
        assert!(sequence(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn search_entries_decode_as_the_codec_reads_them() {
        use ldap3_proto::LdapCodec;
        use ldap3_proto::proto::{LdapOp, LdapPartialAttribute, LdapSearchResultEntry};
        use tokio_util::bytes::BytesMut;
        use tokio_util::codec::Decoder;

        let big = vec![b'x'; 70_000];
        let values = [b"top".to_vec(), b"person".to_vec()];
        let empty: [Vec<u8>; 0] = [];
        let long = [big.clone()];
        for msgid in [1, 127, 128, 255, 256, 65_535, 8_388_608, i32::MAX] {
            let attrs: [(&str, &[Vec<u8>]); 3] =
                [("objectClass", &values), ("cn", &empty), ("photo", &long)];
            // Appended after another message, as a search's batch of entries is.
            let mut bytes = Vec::new();
            search_result_entry(&mut bytes, 7, "cn=first", &[]);
            search_result_entry(&mut bytes, msgid, "uid=a,dc=example,dc=com", &attrs);
            let mut buf = BytesMut::from(&bytes[..]);
            let mut codec = LdapCodec::new(Some(1 << 20), None);
            let first = codec.decode(&mut buf).unwrap().expect("the first message");
            assert_eq!(first.msgid, 7);
            let msg = codec.decode(&mut buf).unwrap().expect("one whole message");
            assert!(buf.is_empty(), "exactly the two messages");
            assert_eq!(msg.msgid, msgid);
            let expected = LdapSearchResultEntry {
                dn: "uid=a,dc=example,dc=com".to_string(),
                attributes: vec![
                    LdapPartialAttribute {
                        atype: "objectClass".to_string(),
                        vals: values.to_vec(),
                    },
                    LdapPartialAttribute {
                        atype: "cn".to_string(),
                        vals: Vec::new(),
                    },
                    LdapPartialAttribute {
                        atype: "photo".to_string(),
                        vals: vec![big.clone()],
                    },
                ],
            };
            assert_eq!(msg.op, LdapOp::SearchResultEntry(expected), "{msgid}");
        }
        assert_eq!(integer_body(128), [0x00, 0x80]);
        assert_eq!(integer_body(127), [0x7f]);
        assert_eq!(length_size(0x7f), 1);
        assert_eq!(length_size(0x80), 2);
        assert_eq!(length_size(0x1_0000), 4);
    }
}
