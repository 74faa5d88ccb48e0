//! `tessera throttled`: what bind throttling is slowing down now, from the running server.

use crate::admin::AdminError;
use crate::admin::client::Client;
use crate::ldap::oid;

/// One slowed-down key: the bind DN (empty for a whole source), the source, the failures
/// counted, and until when failures are held (generalizedTime).
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub account: String,
    pub source: String,
    pub failures: u32,
    pub until: String,
}

pub async fn status(client: &mut Client) -> Result<Vec<Row>, AdminError> {
    let value = client
        .extended(oid::THROTTLED, None)
        .await?
        .unwrap_or_default();
    let text = String::from_utf8(value)
        .map_err(|_| AdminError::Protocol("throttle status is not UTF-8".into()))?;
    text.lines()
        .map(|line| {
            let mut f = line.split('\t');
            let bad = || AdminError::Protocol(format!("malformed throttle line: {line}"));
            Ok(Row {
                account: f.next().ok_or_else(bad)?.to_string(),
                source: f.next().ok_or_else(bad)?.to_string(),
                failures: f.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?,
                until: f.next().ok_or_else(bad)?.to_string(),
            })
        })
        .collect()
}
