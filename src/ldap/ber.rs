//! The little BER the extended operations need: definite-length TLVs with context tags,
//! read and written by hand (the codec handles whole LDAP messages, not these values).

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
}
