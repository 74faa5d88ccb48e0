//! Entries as the server holds them: a DN and attributes under their schema names.
//!
//! Owns the entry model and its compact binary encoding for the store. Attribute names
//! are compared case-insensitively; callers put schema-canonical names in. No I/O.

use thiserror::Error;

use crate::directory::dn::Dn;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub dn: Dn,
    pub attrs: Vec<Attribute>,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("stored entry is truncated")]
    Truncated,
    #[error("stored entry has an invalid DN or name")]
    Invalid,
}

impl Entry {
    pub fn new(dn: Dn) -> Entry {
        Entry {
            dn,
            attrs: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Attribute> {
        self.attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.get(name).map(|a| a.values.as_slice()).unwrap_or(&[])
    }

    /// The first value as text, when there is one and it is UTF-8.
    pub fn first_str(&self, name: &str) -> Option<&str> {
        self.values(name)
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn set(&mut self, name: &str, values: Vec<Vec<u8>>) {
        if values.is_empty() {
            self.remove(name);
            return;
        }
        match self.get_mut(name) {
            Some(attr) => attr.values = values,
            None => self.attrs.push(Attribute {
                name: name.to_string(),
                values,
            }),
        }
    }

    pub fn set_str(&mut self, name: &str, value: &str) {
        self.set(name, vec![value.as_bytes().to_vec()]);
    }

    pub fn push_value(&mut self, name: &str, value: Vec<u8>) {
        // Values of one attribute usually come together: try the last attribute first.
        if let Some(attr) = self.attrs.last_mut()
            && attr.name.eq_ignore_ascii_case(name)
        {
            attr.values.push(value);
            return;
        }
        match self.get_mut(name) {
            Some(attr) => attr.values.push(value),
            None => self.attrs.push(Attribute {
                name: name.to_string(),
                values: vec![value],
            }),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.attrs.retain(|a| !a.name.eq_ignore_ascii_case(name));
    }

    /// Does `objectClass` list `class` (any case)? Every write expands an entry's classes
    /// with their superclasses (`dit::entry::expand_classes`), so of an entry as stored this
    /// asks "is it an X": an inetOrgPerson lists `person` too.
    pub fn has_class(&self, class: &str) -> bool {
        self.values("objectClass")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(class.as_bytes()))
    }

    /// Layout: dn, attribute count, then per attribute its name, value count and values;
    /// every string and value is a u32 length followed by its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        put(&mut out, self.dn.to_string().as_bytes());
        out.extend_from_slice(&(self.attrs.len() as u32).to_le_bytes());
        for attr in &self.attrs {
            put(&mut out, attr.name.as_bytes());
            out.extend_from_slice(&(attr.values.len() as u32).to_le_bytes());
            for v in &attr.values {
                put(&mut out, v);
            }
        }
        out
    }

    /// Only the DN of an encoded entry: membership and access checks need no more.
    pub fn decode_dn(bytes: &[u8]) -> Result<Dn, DecodeError> {
        Dn::parse(Entry::decode_dn_text(bytes)?).map_err(|_| DecodeError::Invalid)
    }

    /// The DN of an encoded entry as stored (its display form), not parsed.
    pub fn decode_dn_text(mut bytes: &[u8]) -> Result<&str, DecodeError> {
        let dn = take(&mut bytes)?;
        std::str::from_utf8(dn).map_err(|_| DecodeError::Invalid)
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        Entry::decode_only(bytes, |_| true)
    }

    /// Like [`Entry::decode`], keeping only the attributes `keep` accepts; the values of the
    /// rest are stepped over, not copied, which is most of what decoding costs.
    pub fn decode_only(
        mut bytes: &[u8],
        keep: impl Fn(&str) -> bool,
    ) -> Result<Entry, DecodeError> {
        let dn = take(&mut bytes)?;
        let dn = std::str::from_utf8(dn).map_err(|_| DecodeError::Invalid)?;
        let dn = Dn::parse(dn).map_err(|_| DecodeError::Invalid)?;
        let count = take_u32(&mut bytes)?;
        let mut attrs = Vec::with_capacity(count.min(256) as usize);
        for _ in 0..count {
            let name = std::str::from_utf8(take(&mut bytes)?).map_err(|_| DecodeError::Invalid)?;
            let n = take_u32(&mut bytes)?;
            if !keep(name) {
                for _ in 0..n {
                    take(&mut bytes)?;
                }
                continue;
            }
            let mut values = Vec::with_capacity(n.min(1024) as usize);
            for _ in 0..n {
                values.push(take(&mut bytes)?.to_vec());
            }
            attrs.push(Attribute {
                name: name.to_string(),
                values,
            });
        }
        Ok(Entry { dn, attrs })
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_u32(bytes: &mut &[u8]) -> Result<u32, DecodeError> {
    let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(DecodeError::Truncated);
    };
    *bytes = rest;
    Ok(u32::from_le_bytes(*head))
}

fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = take_u32(bytes)? as usize;
    if bytes.len() < len {
        return Err(DecodeError::Truncated);
    }
    let (value, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trip() {
        let mut e = Entry::new(Dn::parse("uid=a\\,b,ou=people,dc=example,dc=com").unwrap());
        e.set("objectClass", vec![b"top".to_vec(), b"person".to_vec()]);
        e.set_str("cn", "A B");
        e.push_value("jpegPhoto", vec![0, 255, 1]);
        let back = Entry::decode(&e.encode()).unwrap();
        assert_eq!(Entry::decode_dn(&e.encode()).unwrap(), e.dn);
        assert_eq!(back.dn, e.dn);
        assert_eq!(back.attrs, e.attrs);
        assert!(back.has_class("PERSON"));
        assert_eq!(back.first_str("CN"), Some("A B"));
    }

    #[test]
    fn truncated_is_an_error() {
        let mut e = Entry::new(Dn::parse("dc=x").unwrap());
        e.set_str("dc", "x");
        let bytes = e.encode();
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err());
            assert!(Entry::decode_only(&bytes[..cut], |_| false).is_err());
        }
    }

    #[test]
    fn decode_only_keeps_the_chosen_attributes_in_order() {
        let mut e = Entry::new(Dn::parse("uid=a,dc=x").unwrap());
        e.set_str("uid", "a");
        e.set(
            "member",
            vec![b"uid=b,dc=x".to_vec(), b"uid=c,dc=x".to_vec()],
        );
        e.set_str("cn", "A");
        let bytes = e.encode();
        let back = Entry::decode_only(&bytes, |n| n != "member").unwrap();
        assert_eq!(back.dn, e.dn);
        let names: Vec<&str> = back.attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["uid", "cn"]);
        assert_eq!(back.first_str("cn"), Some("A"));
        assert!(
            Entry::decode_only(&bytes, |_| false)
                .unwrap()
                .attrs
                .is_empty()
        );
    }
}
