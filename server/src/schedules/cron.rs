//! A schedule: a 5-field cron pattern read in an IANA time zone, and the ticks it gives.
//! Ticks are instants (Unix ms); the zone decides which instants a pattern names, so
//! `0 9 * * *` in Europe/Sofia is 09:00 there in winter and in summer alike.

use app::model::FieldError;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// The fields a pattern has, in order, for the error that counts them.
const FIELDS: &str = "minute hour day-of-month month day-of-week";

#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Reads a pattern and a zone; the errors name the field to fix (`trigger.cron`,
    /// `trigger.timezone`), each with what to write instead.
    pub fn parse(pattern: &str, timezone: &str) -> Result<Schedule, Vec<FieldError>> {
        let cron = parse_pattern(pattern).map_err(|e| FieldError::new("trigger.cron", e));
        let zone = parse_zone(timezone).map_err(|e| FieldError::new("trigger.timezone", e));
        match (cron, zone) {
            (Ok(cron), Ok(zone)) => {
                let schedule = Schedule { cron, zone };
                // `0 0 30 2 *` parses but names no day there is.
                if schedule.next_after(crate::store::now_ms()).is_none() {
                    return Err(vec![FieldError::new(
                        "trigger.cron",
                        format!("cron {pattern:?} never matches a date (e.g. the 30th of February): check the day and month fields"),
                    )]);
                }
                Ok(schedule)
            }
            (cron, zone) => Err(cron.err().into_iter().chain(zone.err()).collect()),
        }
    }

    /// The first tick strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let from = self.at(after_ms)?;
        self.cron.find_next_occurrence(&from, false).ok().map(|t| t.timestamp_millis())
    }

    /// The tick that is due at `now_ms` when the last one run was `last_ms`: the latest tick
    /// in `(last_ms, now_ms]`. Ticks missed before it (the platform was down) are not
    /// returned: after a downtime the schedule runs once, not once per missed tick.
    pub fn due(&self, last_ms: i64, now_ms: i64) -> Option<i64> {
        let now = self.at(now_ms)?;
        let latest = self.cron.find_previous_occurrence(&now, true).ok()?.timestamp_millis();
        (latest > last_ms).then_some(latest)
    }

    /// A tick as the function's zone reads it, RFC 3339 with its offset
    /// (`2026-12-02T10:05:00+02:00`).
    pub fn local_time(&self, ms: i64) -> String {
        self.at(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default()
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        DateTime::<Utc>::from_timestamp_millis(ms).map(|t| self.zone.from_utc_datetime(&t.naive_utc()))
    }
}

fn parse_pattern(pattern: &str) -> Result<Cron, String> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(format!("cron is empty: write 5 fields ({FIELDS}), e.g. \"*/5 * * * *\" for every five minutes"));
    }
    let count = pattern.split_whitespace().count();
    if !pattern.starts_with('@') && count != 5 {
        let hint = match count {
            6 | 7 => " (seconds and years are not supported: the finest schedule is once a minute)",
            _ => "",
        };
        return Err(format!("cron {pattern:?} has {count} fields; write 5 ({FIELDS}), e.g. \"*/5 * * * *\"{hint}"));
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    parser.parse(pattern).map_err(|e| {
        format!("cron {pattern:?} is not valid ({e}); each field is a number, a range (1-5), a list (1,15), a step (*/10) or *")
    })
}

fn parse_zone(timezone: &str) -> Result<Tz, String> {
    let timezone = timezone.trim();
    if timezone.is_empty() {
        return Err("time zone is empty: give an IANA name such as \"Europe/Sofia\" or \"UTC\"".into());
    }
    timezone.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {timezone:?}: give an IANA name such as \"Europe/Sofia\", \"America/New_York\" or \"UTC\" (names are case-sensitive)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn fields(result: Result<Schedule, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn bad_patterns_and_zones_are_told_at_their_field() {
        assert!(Schedule::parse("*/5 * * * *", "Europe/Sofia").is_ok());
        assert!(Schedule::parse("@hourly", "UTC").is_ok());
        assert_eq!(fields(Schedule::parse("bad", "UTC")), ["trigger.cron"]);
        assert_eq!(fields(Schedule::parse("61 * * * *", "UTC")), ["trigger.cron"]);
        assert_eq!(fields(Schedule::parse("0 0 30 2 *", "UTC")), ["trigger.cron"]);
        assert_eq!(fields(Schedule::parse("* * * * *", "Mars/Olympus")), ["trigger.timezone"]);
        assert_eq!(fields(Schedule::parse("", "")), ["trigger.cron", "trigger.timezone"]);
        let six = Schedule::parse("0 */5 * * * *", "UTC").unwrap_err();
        assert!(six[0].message.contains("has 6 fields") && six[0].message.contains("seconds"), "{}", six[0].message);
    }

    #[test]
    fn ticks_follow_the_zone_across_summer_time() {
        // 09:00 in Sofia: 07:00 UTC in winter (+02:00), 06:00 UTC in summer (+03:00).
        let s = Schedule::parse("0 9 * * *", "Europe/Sofia").unwrap();
        assert_eq!(s.next_after(ms("2026-03-28T12:00:00Z")), Some(ms("2026-03-29T06:00:00Z")));
        assert_eq!(s.next_after(ms("2026-03-27T12:00:00Z")), Some(ms("2026-03-28T07:00:00Z")));
        assert_eq!(s.local_time(ms("2026-03-29T06:00:00Z")), "2026-03-29T09:00:00+03:00");
        assert_eq!(s.local_time(ms("2026-12-02T08:05:00Z")), "2026-12-02T10:05:00+02:00");
    }

    #[test]
    fn clock_changes_run_a_skipped_time_once_and_a_repeated_time_once() {
        // Sofia, 29 March 2026: 03:00 local becomes 04:00 (01:00 UTC); 03:30 does not exist.
        let s = Schedule::parse("30 3 * * *", "Europe/Sofia").unwrap();
        let spring = s.next_after(ms("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(s.local_time(spring), "2026-03-29T04:00:00+03:00", "at the first instant after the gap");
        assert_eq!(s.next_after(spring).map(|t| s.local_time(t)).as_deref(), Some("2026-03-30T03:30:00+03:00"));
        // 25 October 2026: 04:00 local becomes 03:00 again (01:00 UTC); 03:30 happens twice.
        let autumn = s.next_after(ms("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(s.local_time(autumn), "2026-10-25T03:30:00+03:00", "the first of the two");
        assert_eq!(s.next_after(autumn).map(|t| s.local_time(t)).as_deref(), Some("2026-10-26T03:30:00+02:00"));
    }

    #[test]
    fn after_a_downtime_only_the_latest_missed_tick_is_due() {
        let s = Schedule::parse("*/5 * * * *", "UTC").unwrap();
        let last = ms("2026-12-02T10:05:00Z");
        assert_eq!(s.due(last, ms("2026-12-02T10:09:59Z")), None, "nothing due before the next tick");
        assert_eq!(s.due(last, ms("2026-12-02T10:10:00Z")), Some(ms("2026-12-02T10:10:00Z")), "a tick is due at its instant");
        assert_eq!(s.due(last, ms("2026-12-02T11:02:00Z")), Some(ms("2026-12-02T11:00:00Z")), "eleven missed ticks: the latest runs, once");
        assert_eq!(s.due(ms("2026-12-02T11:00:00Z"), ms("2026-12-02T11:02:00Z")), None, "and not again");
        // Between whole seconds too: the scheduler wakes a little after the instant.
        assert_eq!(s.due(last, ms("2026-12-02T10:10:00.250Z")), Some(ms("2026-12-02T10:10:00Z")));
        assert_eq!(s.next_after(ms("2026-12-02T10:09:59.900Z")), Some(ms("2026-12-02T10:10:00Z")));
        assert_eq!(s.next_after(ms("2026-12-02T10:10:00.250Z")), Some(ms("2026-12-02T10:15:00Z")));
    }
}
