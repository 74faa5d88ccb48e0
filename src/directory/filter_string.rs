//! The string form of search filters (RFC 4515), for filters written by people: role
//! scopes and the CLI. Produces the codec's `LdapFilter`, which `Filter::from_ldap` then
//! resolves against the schema.
//!
//! Values may hold any character but `(`, `)`, `*`, `\` and NUL, which are written as
//! `\XX` escapes; `=` and `,` need no escaping, so DNs go in as they are.

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Nesting deeper than this is refused: hand-written filters never need it.
const MAX_DEPTH: usize = 32;

pub fn parse(text: &str) -> Result<LdapFilter, String> {
    let mut p = Parser {
        bytes: text.trim().as_bytes(),
        at: 0,
    };
    let filter = p.filter(0)?;
    if p.at != p.bytes.len() {
        return Err(format!(
            "unexpected text after the filter at offset {}",
            p.at
        ));
    }
    Ok(filter)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn filter(&mut self, depth: usize) -> Result<LdapFilter, String> {
        if depth > MAX_DEPTH {
            return Err("filter nested too deeply".into());
        }
        self.expect(b'(')?;
        let f = match self.peek() {
            Some(b'&') => {
                self.at += 1;
                LdapFilter::And(self.list(depth)?)
            }
            Some(b'|') => {
                self.at += 1;
                LdapFilter::Or(self.list(depth)?)
            }
            Some(b'!') => {
                self.at += 1;
                LdapFilter::Not(Box::new(self.filter(depth + 1)?))
            }
            _ => self.item()?,
        };
        self.expect(b')')?;
        Ok(f)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<LdapFilter>, String> {
        let mut items = Vec::new();
        while self.peek() == Some(b'(') {
            items.push(self.filter(depth + 1)?);
        }
        if items.is_empty() {
            return Err(format!(
                "'&' and '|' need at least one filter (offset {})",
                self.at
            ));
        }
        Ok(items)
    }

    fn item(&mut self) -> Result<LdapFilter, String> {
        let start = self.at;
        while let Some(b) = self.peek() {
            if matches!(b, b'=' | b'~' | b'<' | b'>' | b'(' | b')') {
                break;
            }
            self.at += 1;
        }
        let left = std::str::from_utf8(&self.bytes[start..self.at])
            .map_err(|_| "attribute description is not UTF-8".to_string())?;
        if left.is_empty() {
            return Err(format!("missing attribute at offset {start}"));
        }
        let op_at = self.at;
        match (self.next(), left.ends_with(':')) {
            (Some(b'='), true) => return self.extensible(&left[..left.len() - 1]),
            (Some(b'='), false) => {}
            (Some(b'~'), _) | (Some(b'<'), _) | (Some(b'>'), _) => {
                self.expect(b'=')?;
                let attr = descr(left)?;
                let value = self.value(false)?.concat();
                return Ok(match self.bytes[op_at] {
                    b'~' => LdapFilter::Approx(attr, value),
                    b'<' => LdapFilter::LessOrEqual(attr, value),
                    _ => LdapFilter::GreaterOrEqual(attr, value),
                });
            }
            _ => return Err(format!("missing '=' after '{left}'")),
        }
        let attr = descr(left)?;
        let parts = self.value(true)?;
        if parts.len() == 1 {
            return Ok(LdapFilter::Equality(attr, parts.concat()));
        }
        if parts.len() == 2 && parts.iter().all(String::is_empty) {
            return Ok(LdapFilter::Present(attr));
        }
        let (first, rest) = parts.split_first().ok_or("empty value")?;
        let (last, middle) = rest.split_last().ok_or("empty value")?;
        Ok(LdapFilter::Substring(
            attr,
            LdapSubstringFilter {
                initial: (!first.is_empty()).then(|| first.clone()),
                any: middle.iter().filter(|s| !s.is_empty()).cloned().collect(),
                final_: (!last.is_empty()).then(|| last.clone()),
            },
        ))
    }

    /// `attr[:dn][:rule]:=value` or `[:dn]:rule:=value`; `left` is what came before `:=`.
    fn extensible(&mut self, left: &str) -> Result<LdapFilter, String> {
        let mut parts = left.split(':');
        let attr = parts.next().unwrap_or_default();
        let mut dn_attributes = false;
        let mut rule = None;
        for p in parts {
            if p.eq_ignore_ascii_case("dn") && rule.is_none() {
                dn_attributes = true;
            } else if rule.is_none() && !p.is_empty() {
                rule = Some(p.to_string());
            } else {
                return Err(format!("bad extensible match '{left}:='"));
            }
        }
        if attr.is_empty() && rule.is_none() {
            return Err("an extensible match needs an attribute or a matching rule".into());
        }
        let value = self.value(false)?.concat();
        Ok(LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule: rule,
            type_: (!attr.is_empty()).then(|| attr.to_string()),
            match_value: value,
            dn_attributes,
        }))
    }

    /// An assertion value up to `)`, unescaped; with `stars`, split at unescaped `*`.
    fn value(&mut self, stars: bool) -> Result<Vec<String>, String> {
        let mut parts = vec![Vec::new()];
        while let Some(b) = self.peek() {
            match b {
                b')' => break,
                b'(' | 0 => {
                    return Err(format!(
                        "'{}' in a value must be escaped (offset {})",
                        b as char, self.at
                    ));
                }
                b'*' if stars => {
                    parts.push(Vec::new());
                    self.at += 1;
                }
                b'*' => return Err(format!("'*' is not allowed here (offset {})", self.at)),
                b'\\' => {
                    let hex = self
                        .bytes
                        .get(self.at + 1..self.at + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("bad escape at offset {}: use \\XX", self.at))?;
                    if let Some(last) = parts.last_mut() {
                        last.push(hex);
                    }
                    self.at += 3;
                }
                other => {
                    if let Some(last) = parts.last_mut() {
                        last.push(other);
                    }
                    self.at += 1;
                }
            }
        }
        parts
            .into_iter()
            .map(|p| String::from_utf8(p).map_err(|_| "value is not UTF-8".to_string()))
            .collect()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        self.at += 1;
        b
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(b) if b == want => Ok(()),
            Some(b) => Err(format!(
                "expected '{}' at offset {}, found '{}'",
                want as char,
                self.at - 1,
                b as char
            )),
            None => Err(format!("expected '{}' at the end", want as char)),
        }
    }
}

/// An attribute description: a name or OID, with options (`;binary`).
fn descr(text: &str) -> Result<String, String> {
    let ok = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b';'));
    if ok
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not an attribute description"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, v: &str) -> LdapFilter {
        LdapFilter::Equality(a.into(), v.into())
    }

    #[test]
    fn rfc4515_examples() {
        assert_eq!(parse("(cn=Babs Jensen)").unwrap(), eq("cn", "Babs Jensen"));
        assert_eq!(
            parse("(!(cn=Tim Howes))").unwrap(),
            LdapFilter::Not(Box::new(eq("cn", "Tim Howes")))
        );
        let f = parse("(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))").unwrap();
        let LdapFilter::And(items) = f else {
            panic!("not an and")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(
            parse("(o=univ*of*mich*)").unwrap(),
            LdapFilter::Substring(
                "o".into(),
                LdapSubstringFilter {
                    initial: Some("univ".into()),
                    any: vec!["of".into(), "mich".into()],
                    final_: None,
                }
            )
        );
        assert_eq!(parse("(seeAlso=)").unwrap(), eq("seeAlso", ""));
        assert_eq!(parse("(uid=*)").unwrap(), LdapFilter::Present("uid".into()));
        assert_eq!(
            parse("(cn:caseExactMatch:=Fred Flintstone)").unwrap(),
            LdapFilter::Extensible(LdapMatchingRuleAssertion {
                matching_rule: Some("caseExactMatch".into()),
                type_: Some("cn".into()),
                match_value: "Fred Flintstone".into(),
                dn_attributes: false,
            })
        );
        let LdapFilter::Extensible(m) = parse("(:dn:2.4.6.8.10:=Dino)").unwrap() else {
            panic!("not extensible")
        };
        assert!(m.dn_attributes && m.type_.is_none());
        assert_eq!(
            parse("(o=Parens R Us \\28for all your parenthetical needs\\29)").unwrap(),
            eq("o", "Parens R Us (for all your parenthetical needs)")
        );
        assert_eq!(
            parse("(cn=*\\2A*)").unwrap(),
            LdapFilter::Substring(
                "cn".into(),
                LdapSubstringFilter {
                    initial: None,
                    any: vec!["*".into()],
                    final_: None
                }
            )
        );
        assert_eq!(
            parse("(uidNumber>=1000)").unwrap(),
            LdapFilter::GreaterOrEqual("uidNumber".into(), "1000".into())
        );
    }

    #[test]
    fn dns_need_no_escaping() {
        assert_eq!(
            parse("(memberOf=cn=nas-users,ou=groups,dc=example,dc=com)").unwrap(),
            eq("memberOf", "cn=nas-users,ou=groups,dc=example,dc=com")
        );
    }

    #[test]
    fn bad_filters_say_where() {
        for bad in [
            "",
            "uid=a",
            "(uid=a",
            "(uid=a))",
            "(=a)",
            "(&)",
            "(uid=a(b)",
            "(uid\\=a)",
            "(uid=\\zz)",
            "(uid>a)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}(a=b){}", "(!".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().contains("deeply"));
    }
}
