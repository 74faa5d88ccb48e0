//! Time: an adjustable clock (so tests can move past an expiry without sleeping), the one
//! Generalized Time parser (RFC 4517 §3.3.13) that matching rules and expiry checks share,
//! the form this server writes, durations, and the expiry forms the CLI accepts. Inside,
//! time is an `OffsetDateTime`; text is made at the edges.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// RFC 3339 (`2027-12-07T11:23:03.123456Z`), the form JSON and people read.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Read a Generalized Time in any form RFC 4517 allows (`YYYYMMDDHH[MM[SS]][.f](Z|±HH[MM])`),
/// as an instant; None for anything else. Fractions finer than a nanosecond are dropped.
pub fn parse_generalized(text: &str) -> Option<OffsetDateTime> {
    GeneralizedTime::parse(text.as_bytes())?.instant()
}

/// Has the expiry `value` (a Generalized Time) passed at `now`? An expiry that does not
/// parse counts as passed: refusing is the safe side.
pub fn expired(value: Option<&str>, now: OffsetDateTime) -> bool {
    match value {
        None => false,
        Some(v) => parse_generalized(v).is_none_or(|t| t <= now),
    }
}

/// A Generalized Time as a UTC instant, exactly: seconds since 1970 and the decimal digits
/// of the second's fraction, without trailing zeros. Matching rules compare these, so two
/// spellings of one instant are equal however many fraction digits they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralizedTime {
    seconds: i64,
    fraction: String,
}

impl GeneralizedTime {
    /// Parses RFC 4517 Generalized Time: `YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|(+|-)HH[MM])`.
    /// The fraction belongs to the last field given, as the RFC says. Instants outside the
    /// years 0000-9999 (UTC) are refused, so the normal form always has four-digit years.
    pub fn parse(value: &[u8]) -> Option<GeneralizedTime> {
        let mut cursor = Cursor {
            bytes: value,
            pos: 0,
        };
        let year = cursor.number(4)?;
        let month = cursor.number(2)?;
        let day = cursor.number(2)?;
        let hour = cursor.number(2)?;
        let mut unit = 3600;
        let mut minute = 0;
        let mut second = 0;
        if cursor.peek_digit() {
            minute = cursor.number(2)?;
            unit = 60;
            if cursor.peek_digit() {
                second = cursor.number(2)?;
                unit = 1;
            }
        }
        let mut fraction = "";
        if cursor.eat(b'.') || cursor.eat(b',') {
            fraction = cursor.digit_run();
            if fraction.is_empty() {
                return None;
            }
        }
        let offset = if cursor.eat(b'Z') {
            0
        } else {
            let sign = if cursor.eat(b'+') {
                1
            } else if cursor.eat(b'-') {
                -1
            } else {
                return None;
            };
            let hours = cursor.number(2)?;
            let minutes = if cursor.peek_digit() {
                cursor.number(2)?
            } else {
                0
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        };
        if !cursor.at_end() || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = time::Date::from_calendar_date(
            i32::try_from(year).ok()?,
            month,
            u8::try_from(day).ok()?,
        )
        .ok()?;
        let midnight = date.midnight().assume_utc().unix_timestamp();
        // A leap second (:60) lands on the next minute's :00: instants, not labels, compare.
        let (extra_seconds, fraction) = split_fraction(fraction, unit)?;
        let seconds = midnight + hour * 3600 + minute * 60 + second + extra_seconds - offset;
        let utc = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
        if !(0..=9999).contains(&utc.year()) {
            return None;
        }
        Some(GeneralizedTime { seconds, fraction })
    }

    /// `YYYYMMDDHHMMSS[.fraction]Z` in UTC.
    pub fn normalized(&self) -> Vec<u8> {
        let mut out = self.digits();
        if !self.fraction.is_empty() {
            out.push('.');
            out.push_str(&self.fraction);
        }
        out.push('Z');
        out.into_bytes()
    }

    /// Fixed-width digits then the fraction digits: byte order is time order.
    pub fn key(&self) -> Vec<u8> {
        let mut out = self.digits();
        out.push_str(&self.fraction);
        out.into_bytes()
    }

    /// The instant, to the nanosecond.
    pub fn instant(&self) -> Option<OffsetDateTime> {
        let nanos: i64 = format!("{:0<9}", &self.fraction[..self.fraction.len().min(9)])
            .parse()
            .ok()?;
        OffsetDateTime::from_unix_timestamp(self.seconds)
            .ok()?
            .checked_add(time::Duration::nanoseconds(nanos))
    }

    fn digits(&self) -> String {
        // Parsing kept the instant within years 0000-9999.
        let t =
            OffsetDateTime::from_unix_timestamp(self.seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// Turns a fraction of an hour or minute into whole seconds plus a fraction of a second,
/// exactly. Up to 18 digits keep the arithmetic in u128; longer fractions of an hour or
/// minute are refused rather than rounded, so equality stays exact.
fn split_fraction(fraction: &str, unit: i64) -> Option<(i64, String)> {
    if unit == 1 {
        return Some((0, fraction.trim_end_matches('0').to_owned()));
    }
    if fraction.is_empty() {
        return Some((0, String::new()));
    }
    if fraction.len() > 18 {
        return None;
    }
    let numerator: u128 = fraction.parse().ok()?;
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let total = numerator * u128::try_from(unit).ok()?;
    let whole = i64::try_from(total / scale).ok()?;
    let rest = format!("{:0width$}", total % scale, width = fraction.len());
    Some((whole, rest.trim_end_matches('0').to_owned()))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn number(&mut self, width: usize) -> Option<i64> {
        let digits = self.bytes.get(self.pos..self.pos + width)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += width;
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    fn peek_digit(&self) -> bool {
        self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn digit_run(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek_digit() {
            self.pos += 1;
        }
        // Only ASCII digits were consumed, so this is valid UTF-8.
        std::str::from_utf8(self.bytes.get(start..self.pos).unwrap_or_default()).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// A duration: a number and a unit (`50us`, `500ms`, `30s`, `15m`, `2h`, `90d`), or several
/// in descending order (`1h30m`, `2d12h`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    // Each unit is smaller than the one before it: `30m1h` is a typo, not 90 minutes.
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, tail) = rest.split_at(digits);
        let n: u64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let (rank, part) = match unit {
            "d" => (5, Duration::from_secs(n.checked_mul(86400)?)),
            "h" => (4, Duration::from_secs(n.checked_mul(3600)?)),
            "m" => (3, Duration::from_secs(n.checked_mul(60)?)),
            "s" => (2, Duration::from_secs(n)),
            "ms" => (1, Duration::from_millis(n)),
            "us" => (0, Duration::from_micros(n)),
            _ => return None,
        };
        if rank >= last_rank {
            return None;
        }
        last_rank = rank;
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
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
            "'{text}' is not an expiry: use an RFC 3339 time (2030-01-31T12:00:00Z), a duration (30m, 12h, 90d) or never"
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
    fn generalized_time_forms_and_expiry() {
        let t = parse_generalized("20260101130000.5+0100").unwrap();
        assert_eq!(generalized(t), "20260101120000.500000Z");
        assert_eq!(
            parse_generalized("2026010112Z"),
            parse_generalized("20260101120000Z")
        );
        // A leap second is the next minute's first second.
        assert_eq!(
            parse_generalized("20161231235960Z"),
            parse_generalized("20170101000000Z")
        );
        let now = parse_generalized("20260101120000Z").unwrap();
        assert!(!expired(None, now));
        assert!(expired(Some("20260101120000Z"), now), "at the instant");
        assert!(!expired(Some("20260101120001Z"), now));
        assert!(expired(Some("20260101130000+0200"), now), "an hour earlier");
        assert!(
            expired(Some("garbage"), now),
            "unparseable counts as passed"
        );
        // Years 0000-9999 only, in UTC.
        assert_eq!(parse_generalized("00000101000000+0100"), None);
        assert!(parse_generalized("99991231235959Z").is_some());
    }

    #[test]
    fn durations_single_and_compound() {
        assert_eq!(parse_duration("90d"), Some(Duration::from_secs(90 * 86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("50us"), Some(Duration::from_micros(50)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration(" 2d12h "),
            Some(Duration::from_secs(60 * 3600))
        );
        assert_eq!(
            parse_duration("1m30s500ms"),
            Some(Duration::from_millis(90_500))
        );
        for bad in ["", "12", "x1s", "30m1h", "1h1h", "1h30", "h", "1 h", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
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
