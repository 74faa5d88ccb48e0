//! Time as policy sees it: an adjustable clock (so tests can move past an expiry without
//! sleeping), generalizedTime rendering, and the expiry forms the CLI accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::parse_duration;

/// Wall-clock time plus an offset that tests may advance.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let offset = self.offset_secs.load(Ordering::Relaxed);
        OffsetDateTime::now_utc() + time::Duration::seconds(offset)
    }

    /// Move this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// `YYYYMMDDHHMMSS.ffffffZ`: microseconds, so ordering by modifyTimestamp is exact.
pub fn generalized(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(OffsetDateTime),
}

/// `2026-09-25T11:22:02+10:00`, a duration from now (`30m`, `12h`, `90d`), or `never`.
pub fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<Expiry, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    if let Some(d) = parse_duration(text) {
        let d = time::Duration::try_from(d).map_err(|_| format!("'{text}' is too long"))?;
        return now
            .checked_add(d)
            .map(Expiry::At)
            .ok_or_else(|| format!("'{text}' is too far in the future"));
    }
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) if t > now => Ok(Expiry::At(t)),
        Ok(_) => Err(format!("'{text}' is in the past")),
        Err(_) => Err(format!(
            "'{text}' is not an expiry: use an RFC 3339 time (2026-09-25T11:22:02+10:00), a duration (30m, 12h, 90d) or never"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_advances_for_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(86400));
        assert!(other.now() - before >= time::Duration::seconds(86400));
    }

    #[test]
    fn expiry_forms() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(parse_expiry("never", now), Ok(Expiry::Never));
        assert_eq!(
            parse_expiry("90d", now),
            Ok(Expiry::At(now + time::Duration::days(90)))
        );
        assert_eq!(
            parse_expiry("30m", now),
            Ok(Expiry::At(now + time::Duration::minutes(30)))
        );
        let Ok(Expiry::At(t)) = parse_expiry("2999-09-25T11:22:02+10:00", now) else {
            panic!("RFC 3339 time not accepted");
        };
        assert_eq!(generalized(t), "29990925012202.000000Z");
        assert!(
            parse_expiry("2001-01-01T00:00:00Z", now)
                .unwrap_err()
                .contains("past")
        );
        assert!(parse_expiry("soon", now).unwrap_err().contains("RFC 3339"));
    }
}
