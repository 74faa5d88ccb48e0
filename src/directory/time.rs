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

/// Read a generalizedTime in UTC (`YYYYMMDDHHMMSS[.fraction]Z`), the form this server
/// writes and slapd exports; None for anything else.
pub fn parse_generalized(text: &str) -> Option<OffsetDateTime> {
    let digits = text
        .get(..14)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
    let rest = &text[14..];
    let fraction = rest.strip_suffix('Z')?;
    let micros = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let f = format!("{:0<6}", &f[..f.len().min(6)]);
            f.parse().ok()?
        }
        _ => return None,
    };
    let n = |range: std::ops::Range<usize>| digits[range].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms_micro(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
        micros,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc())
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
    fn generalized_round_trips() {
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(now.microsecond() * 1000).unwrap();
        assert_eq!(parse_generalized(&generalized(now)), Some(now));
        let t = parse_generalized("20240229235959Z").unwrap();
        assert_eq!(generalized(t), "20240229235959.000000Z");
        assert_eq!(
            generalized(parse_generalized("20240101000000.5Z").unwrap()),
            "20240101000000.500000Z"
        );
        for bad in [
            "",
            "2024",
            "20241301000000Z",
            "20240101000000",
            "20240101000000.Z",
            "2024010100000aZ",
        ] {
            assert_eq!(parse_generalized(bad), None, "{bad}");
        }
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
