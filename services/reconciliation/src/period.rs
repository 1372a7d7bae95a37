//! Settlement periods: whole days in Beijing time (Asia/Shanghai, UTC+8 all year: China has
//! had no daylight saving time since 1991, so a fixed offset is exact and needs no time zone
//! database). A period `[start, end]` of days covers the instants
//! `[start 00:00 +08:00, end + 1 day 00:00 +08:00)`.

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone, Utc};
use std::fmt;

/// UTC+8.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 lies within ±24 h")
}

/// A settlement period of whole Beijing days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    start: NaiveDate,
    end: NaiveDate,
}

impl Period {
    /// The days `start..=end`.
    ///
    /// # Errors
    /// `end` is before `start`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, String> {
        if end < start {
            return Err(format!(
                "the period ends ({end}) before it starts ({start})"
            ));
        }
        Ok(Period { start, end })
    }

    /// One day.
    pub fn day(day: NaiveDate) -> Period {
        Period {
            start: day,
            end: day,
        }
    }

    /// Yesterday in Beijing, as seen at `now` (the cron job's default).
    pub fn yesterday(now: DateTime<Utc>) -> Period {
        let today = now.with_timezone(&beijing()).date_naive();
        Period::day(today.pred_opt().unwrap_or(today))
    }

    /// The first day.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The last day (included).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// The first instant: `start` 00:00 Beijing.
    pub fn starts_at(&self) -> DateTime<Utc> {
        midnight(self.start)
    }

    /// The first instant after the period: the day after `end`, 00:00 Beijing.
    pub fn ends_at(&self) -> DateTime<Utc> {
        midnight(self.end.checked_add_days(Days::new(1)).unwrap_or(self.end))
    }

    /// A period as the reports print it: `2026-05-01` or `2026-05-01..2026-05-07`.
    ///
    /// # Errors
    /// Not a day or a range of days, or a range that ends before it starts.
    pub fn parse(text: &str) -> Result<Period, String> {
        let day = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("{s:?} is not a day (YYYY-MM-DD)"))
        };
        match text.split_once("..") {
            None => Ok(Period::day(day(text)?)),
            Some((from, to)) => Period::new(day(from)?, day(to)?),
        }
    }

    /// Whether two periods share a day.
    pub fn overlaps(&self, other: &Period) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A fixed offset has exactly one local midnight.
    match beijing().from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        _ => naive.and_utc(),
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}..{}", self.start, self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_beijing_day_starts_at_16_utc_the_day_before() {
        let p = Period::day(d("2026-05-02"));
        assert_eq!(p.starts_at().to_rfc3339(), "2026-05-01T16:00:00+00:00");
        assert_eq!(p.ends_at().to_rfc3339(), "2026-05-02T16:00:00+00:00");
    }

    #[test]
    fn yesterday_is_taken_in_beijing() {
        // 2026-05-02 17:00 UTC is already 2026-05-03 01:00 in Beijing.
        let now = d("2026-05-02")
            .and_hms_opt(17, 0, 0)
            .unwrap_or_default()
            .and_utc();
        assert_eq!(Period::yesterday(now), Period::day(d("2026-05-02")));
    }

    #[test]
    fn parses_what_it_prints() {
        for text in ["2026-05-01", "2026-05-01..2026-05-07"] {
            let p = Period::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.to_string(), text);
        }
        for bad in [
            "",
            "2026-5-1x",
            "2026-05-07..2026-05-01",
            "2026-05-01..",
            "..2026-05-01",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap() {
        let a = Period::new(d("2026-05-01"), d("2026-05-03")).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.overlaps(&Period::day(d("2026-05-03"))));
        assert!(!a.overlaps(&Period::day(d("2026-05-04"))));
        assert!(Period::new(d("2026-05-02"), d("2026-05-01")).is_err());
    }
}
