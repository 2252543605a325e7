//! Yahoo's time formats (yahoo-store-api.md §4): search conditions as `YYYYMMDDHHMMSS` in JST,
//! response datetimes as ISO 8601 with offset, dates in change requests as `YYYYMMDD`.
//! The client and the simulator both use these, so they agree by construction.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// `20240601101530` (JST) for search conditions.
pub fn format_condition(t: DateTime<Utc>) -> String {
    t.with_timezone(&offset()).format("%Y%m%d%H%M%S").to_string()
}

pub fn parse_condition(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    offset().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// `2024-06-01T10:15:30+09:00` in responses.
pub fn format_response(t: DateTime<Utc>) -> String {
    t.with_timezone(&offset()).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Reads a response datetime: ISO 8601 with offset, or the condition form as JST.
pub fn parse_response(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).ok().or_else(|| parse_condition(s))
}

/// `20240602` in change requests.
pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// Reads `20240602` or `2024-06-02`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y%m%d").or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d")).ok()
}

/// Today's date in Japan.
/// `2024-06-01 10:15` (JST), as mails write a time for people.
pub fn format_display(t: DateTime<Utc>) -> String {
    t.with_timezone(&offset()).format("%Y-%m-%d %H:%M").to_string()
}

pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&offset()).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = Utc.with_ymd_and_hms(2024, 6, 1, 1, 15, 30).unwrap();
        assert_eq!(format_condition(t), "20240601101530");
        assert_eq!(parse_condition("20240601101530"), Some(t));
        assert_eq!(format_response(t), "2024-06-01T10:15:30+09:00");
        assert_eq!(parse_response("2024-06-01T10:15:30+09:00"), Some(t));
        assert_eq!(parse_condition("2024060110153"), None);
        assert_eq!(parse_condition("20241301101530"), None);
        assert_eq!(parse_date("20240602"), parse_date("2024-06-02"));
        assert_eq!(today(Utc.with_ymd_and_hms(2024, 6, 1, 15, 0, 0).unwrap()).to_string(), "2024-06-02");
    }
}
