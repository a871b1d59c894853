//! When a policy is due: every N hours after its last successful run, at times of day
//! (`02:00`) on chosen days of the week, or when a cron expression says (`0 2 * * 1-5`,
//! five fields, read by `croner`), in this machine's time zone, and only inside its
//! backup window when it has one (`22:00-06:00`; a window may cross midnight). A time
//! missed while the machine was off is caught up at the next look, as anacron does; a time
//! that a daylight-saving change skips runs an hour later.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};

use crate::error::{ApiError, Code, Result};

/// The longest period: ten years (longer ones overflow date arithmetic, and mean "never").
const MAX_HOURS: f64 = 24.0 * 366.0 * 10.0;

/// A policy's schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    /// Hours between runs (used when `at` is empty).
    pub every_hours: f64,
    /// Times of day (`HH:MM`).
    pub at: &'a [String],
    /// Days of the week (`mon` … `sun`); empty = every day.
    pub days: &'a [String],
    /// Backup window (`HH:MM-HH:MM`).
    pub window: Option<&'a str>,
    /// A cron expression (minute hour day-of-month month day-of-week), instead of the
    /// period and the times of day.
    pub cron: Option<&'a str>,
}

/// `expr` read as a five-field cron expression (no seconds, no year: a backup schedule
/// needs neither, and a sixth field is more often a mistake than a wish).
fn cron(expr: &str) -> Result<croner::Cron> {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| {
            bad(format!(
                "`{expr}` is not a cron expression ({e}): give five fields, minute hour day-of-month month day-of-week, e.g. `0 2 * * 1-5` for 02:00 on weekdays"
            ))
        })
}

fn bad(m: String) -> ApiError {
    ApiError::new(Code::InvalidInput, m)
}

fn time(s: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| {
        bad(format!(
            "`{s}` is not a time of day: give HH:MM, e.g. 02:00"
        ))
    })
}

fn weekday(s: &str) -> Result<Weekday> {
    let d = s.trim().to_ascii_lowercase();
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|w| d == *w)
        .and_then(|i| Weekday::try_from(i as u8).ok())
        .ok_or_else(|| {
            bad(format!(
                "`{s}` is not a day: give mon, tue, wed, thu, fri, sat or sun"
            ))
        })
}

fn window(s: &str) -> Result<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once('-').ok_or_else(|| {
        bad(format!(
            "the window `{s}` is not HH:MM-HH:MM, e.g. 22:00-06:00"
        ))
    })?;
    let (a, b) = (time(a)?, time(b)?);
    if a == b {
        return Err(bad(format!(
            "the window `{s}` is empty: its start and end differ"
        )));
    }
    Ok((a, b))
}

impl Schedule<'_> {
    /// Refuse a schedule that cannot work, naming the part.
    ///
    /// # Errors
    /// [`Code::InvalidInput`].
    pub fn validate(&self) -> Result<()> {
        if let Some(expr) = self.cron {
            if !self.at.is_empty() || !self.days.is_empty() {
                return Err(bad(
                    "a cron expression replaces times of day and days: give one or the other"
                        .into(),
                ));
            }
            // one that never comes (30 February) is refused, not kept as "never"
            cron(expr)?
                .find_next_occurrence(&Utc::now(), false)
                .map_err(|_| bad(format!("the cron expression `{expr}` never comes")))?;
        } else if self.at.is_empty()
            && !(self.every_hours.is_finite()
                && self.every_hours > 0.0
                && self.every_hours <= MAX_HOURS)
        {
            return Err(bad(format!(
                "the schedule must be a positive number of hours, at most {MAX_HOURS} (ten years)"
            )));
        }
        if self.at.is_empty() && !self.days.is_empty() {
            return Err(bad(
                "days of the week go with times of day (at HH:MM)".into()
            ));
        }
        for t in self.at {
            time(t)?;
        }
        for d in self.days {
            weekday(d)?;
        }
        if let Some(w) = self.window {
            window(w)?;
        }
        Ok(())
    }

    /// The schedule in words (`every 24 h`, `at 02:00 on mon, fri, within 22:00-06:00`).
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = if let Some(c) = self.cron {
            format!("cron {c}")
        } else if self.at.is_empty() {
            format!("every {} h", self.every_hours)
        } else {
            format!("at {}", self.at.join(", "))
        };
        if !self.days.is_empty() {
            s += &format!(" on {}", self.days.join(", "));
        }
        if let Some(w) = self.window {
            s += &format!(", within {w}");
        }
        s
    }

    /// When the next run is due, given the last successful one and the pause after a
    /// failure, in the time zone `tz`. Never run: now. A run due in the past waits, from
    /// now, for the window to open. Settings that do not parse (a damaged catalog entry)
    /// fall back to now, so a policy is never silently never run.
    #[must_use]
    pub fn next_due<Tz: TimeZone>(
        &self,
        tz: &Tz,
        last: Option<DateTime<Utc>>,
        retry_after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let due = match last {
            None => now,
            Some(last) => self.next_after(tz, last).unwrap_or(now),
        };
        let due = retry_after.map_or(due, |r| due.max(r));
        match self.window.map(window) {
            // a time already past is judged by now: a missed window is not "inside"
            Some(Ok(w)) => window_start_from(tz, w, due.max(now)),
            _ => due,
        }
    }

    /// The pause after the `failures`-th failed run in a row: five minutes (or the period,
    /// when it is shorter), doubling with each failure, at most six hours; a broken
    /// nightly policy is neither retried nor told about at every look.
    #[must_use]
    pub fn retry_pause(&self, failures: u32) -> Duration {
        let base = if self.at.is_empty() && self.cron.is_none() {
            (self.every_hours.clamp(0.0, 1.0) * 3600.0).clamp(1.0, 300.0)
        } else {
            300.0
        };
        let secs = base * f64::from(2u32.pow(failures.clamp(1, 16) - 1));
        Duration::seconds(secs.min(6.0 * 3600.0) as i64)
    }

    /// The schedule's next time after `after`, before the window is applied: the cron
    /// expression's, the period's, or the next time of day's.
    fn next_after<Tz: TimeZone>(&self, tz: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(expr) = self.cron {
            return cron(expr)
                .ok()?
                .find_next_occurrence(&after.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc));
        }
        if self.at.is_empty() {
            return Duration::try_seconds((self.every_hours.clamp(0.0, MAX_HOURS) * 3600.0) as i64)
                .and_then(|d| after.checked_add_signed(d));
        }
        self.next_slot(tz, after)
    }

    /// The next `n` runs after `from`, for people to read; the last run and the pause
    /// after a failure are not considered (see [`Self::next_due`]).
    #[must_use]
    pub fn upcoming<Tz: TimeZone>(
        &self,
        tz: &Tz,
        from: DateTime<Utc>,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = from;
        while out.len() < n {
            let Some(next) = self.next_after(tz, t).filter(|x| *x > t) else {
                break;
            };
            let next = match self.window.map(window) {
                Some(Ok(w)) => window_start_from(tz, w, next),
                _ => next,
            };
            out.push(next);
            t = next;
        }
        out
    }

    /// The first time of day on an allowed day strictly after `after`.
    fn next_slot<Tz: TimeZone>(&self, tz: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let times: Vec<NaiveTime> = self.at.iter().filter_map(|t| time(t).ok()).collect();
        let days: Vec<Weekday> = self.days.iter().filter_map(|d| weekday(d).ok()).collect();
        let start = after.with_timezone(tz).date_naive();
        // eight days cover every weekly pattern
        (0..9)
            .filter_map(|i| start.checked_add_signed(Duration::days(i)))
            .filter(|d| days.is_empty() || days.contains(&d.weekday()))
            .flat_map(|d| times.iter().map(move |t| d.and_time(*t)))
            .filter_map(|local| local_to_utc(tz, local))
            .filter(|t| *t > after)
            .min()
    }
}

/// A local time as UTC; one that a daylight-saving change skips is taken an hour later.
fn local_to_utc<Tz: TimeZone>(tz: &Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// `t` when it falls inside the window, else the window's next start.
fn window_start_from<Tz: TimeZone>(
    tz: &Tz,
    (from, to): (NaiveTime, NaiveTime),
    t: DateTime<Utc>,
) -> DateTime<Utc> {
    let local = t.with_timezone(tz).time();
    let inside = if from < to {
        from <= local && local < to
    } else {
        local >= from || local < to
    };
    if inside {
        return t;
    }
    let day = t.with_timezone(tz).date_naive();
    (0..2)
        .filter_map(|i| day.checked_add_signed(Duration::days(i)))
        .filter_map(|d| local_to_utc(tz, d.and_time(from)))
        .find(|s| *s > t)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn times_of_day_on_chosen_days_in_local_time() {
        // Berlin in winter: UTC+1
        let tz = FixedOffset::east_opt(3600).unwrap();
        let at = strings(&["02:00"]);
        let s = Schedule {
            every_hours: 24.0,
            at: &at,
            days: &[],
            window: None,
            cron: None,
        };
        let now = utc("2026-12-03T12:00:00Z");
        assert_eq!(s.next_due(&tz, None, None, now), now, "never run: now");
        // last run 2026-12-03 01:00 UTC (02:00 local): next is the next night's 02:00 local
        assert_eq!(
            s.next_due(&tz, Some(utc("2026-12-03T01:00:00Z")), None, now),
            utc("2026-12-04T01:00:00Z")
        );
        // weekdays only: a Friday (2026-12-04) night's run is followed by Monday's
        let days = strings(&["mon", "tue", "wed", "thu", "fri"]);
        let s = Schedule { days: &days, ..s };
        assert_eq!(
            s.next_due(&tz, Some(utc("2026-12-04T01:00:00Z")), None, now),
            utc("2026-12-07T01:00:00Z")
        );
        assert_eq!(s.describe(), "at 02:00 on mon, tue, wed, thu, fri");
        // two times a day
        let at2 = strings(&["02:00", "14:30"]);
        let s = Schedule {
            at: &at2,
            days: &[],
            ..s
        };
        assert_eq!(
            s.next_due(&tz, Some(utc("2026-12-03T01:00:00Z")), None, now),
            utc("2026-12-03T13:30:00Z")
        );
        // missed while the machine was off: due at once (caught up)
        assert!(s.next_due(&tz, Some(utc("2026-11-20T01:00:00Z")), None, now) <= now);
    }

    #[test]
    fn a_window_holds_a_due_run_until_it_opens_and_may_cross_midnight() {
        let tz = Utc;
        let w = Some("22:00-06:00");
        let s = Schedule {
            every_hours: 4.0,
            at: &[],
            days: &[],
            window: w,
            cron: None,
        };
        // due at 12:00, outside the window: waits for 22:00
        let last = utc("2026-12-03T08:00:00Z");
        assert_eq!(
            s.next_due(&tz, Some(last), None, utc("2026-12-03T12:00:00Z")),
            utc("2026-12-03T22:00:00Z")
        );
        // due at 03:00, looked at 04:00, inside (after midnight): due now
        let now = utc("2026-12-03T04:00:00Z");
        assert_eq!(
            s.next_due(&tz, Some(utc("2026-12-02T23:00:00Z")), None, now),
            now
        );
        // due since 06:00 the day before, but the window was missed (the machine was
        // off): at 07:00 it waits for tonight's, not runs at once
        assert_eq!(
            s.next_due(
                &tz,
                Some(utc("2026-12-03T02:00:00Z")),
                None,
                utc("2026-12-04T07:00:00Z")
            ),
            utc("2026-12-04T22:00:00Z")
        );
        // after a failure: not before the pause ends, and then within the window
        assert_eq!(
            s.next_due(
                &tz,
                Some(utc("2026-12-02T20:00:00Z")),
                Some(utc("2026-12-03T05:59:00Z")),
                utc("2026-12-03T04:00:00Z")
            ),
            utc("2026-12-03T05:59:00Z")
        );
        // a plain daytime window
        let s = Schedule {
            window: Some("09:00-17:00"),
            ..s
        };
        assert_eq!(
            s.next_due(
                &tz,
                Some(utc("2026-12-03T16:00:00Z")),
                None,
                utc("2026-12-03T12:00:00Z")
            ),
            utc("2026-12-04T09:00:00Z")
        );
    }

    #[test]
    fn failures_pause_longer_each_time_and_huge_periods_neither_pass_nor_panic() {
        let s = Schedule {
            every_hours: 24.0,
            at: &[],
            days: &[],
            window: None,
            cron: None,
        };
        assert_eq!(s.retry_pause(1), Duration::minutes(5));
        assert_eq!(s.retry_pause(2), Duration::minutes(10));
        assert_eq!(s.retry_pause(7), Duration::hours(5) + Duration::minutes(20));
        assert_eq!(s.retry_pause(8), Duration::hours(6));
        assert_eq!(s.retry_pause(u32::MAX), Duration::hours(6));
        // a test-sized period pauses for that period
        let short = Schedule {
            every_hours: 0.0005,
            ..s
        };
        assert_eq!(short.retry_pause(1), Duration::seconds(1));
        let huge = Schedule {
            every_hours: 1e10,
            ..s
        };
        assert!(huge.validate().unwrap_err().message.contains("at most"));
        // a damaged entry with such a value still gives a time, not a panic
        let now = utc("2026-12-03T12:00:00Z");
        let last = Some(utc("2026-12-03T01:00:00Z"));
        assert!(huge.next_due(&Utc, last, None, now) > now);
        let inf = Schedule {
            every_hours: f64::INFINITY,
            ..s
        };
        let _ = inf.next_due(&Utc, last, None, now);
        let nan = Schedule {
            every_hours: f64::NAN,
            ..s
        };
        let _ = nan.next_due(&Utc, last, None, now);
        assert!(nan.retry_pause(1) <= Duration::hours(6));
    }

    #[test]
    fn bad_schedules_are_refused_by_name() {
        let msg = |at: &[&str], days: &[&str], w: Option<&str>| {
            let (at, days) = (strings(at), strings(days));
            Schedule {
                every_hours: 24.0,
                at: &at,
                days: &days,
                window: w,
                cron: None,
            }
            .validate()
            .map_err(|e| e.message)
        };
        assert!(msg(&["02:00"], &["mon"], Some("22:00-06:00")).is_ok());
        assert!(
            msg(&["2am"], &[], None)
                .unwrap_err()
                .contains("`2am` is not a time of day")
        );
        assert!(
            msg(&["02:00"], &["monday"], None)
                .unwrap_err()
                .contains("`monday` is not a day")
        );
        assert!(
            msg(&[], &["mon"], None)
                .unwrap_err()
                .contains("go with times of day")
        );
        assert!(
            msg(&[], &[], Some("22:00"))
                .unwrap_err()
                .contains("HH:MM-HH:MM")
        );
        assert!(
            msg(&[], &[], Some("22:00-22:00"))
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn cron_expressions_in_local_time_with_the_window() {
        // Berlin in winter: UTC+1; 02:00 on weekdays
        let tz = FixedOffset::east_opt(3600).unwrap();
        let s = Schedule {
            every_hours: 24.0,
            at: &[],
            days: &[],
            window: None,
            cron: Some("0 2 * * 1-5"),
        };
        s.validate().unwrap();
        assert_eq!(s.describe(), "cron 0 2 * * 1-5");
        let now = utc("2026-12-04T12:00:00Z");
        assert_eq!(s.next_due(&tz, None, None, now), now, "never run: now");
        // Friday 2026-12-04 02:00 local ran: next is Monday 02:00 local
        let friday = utc("2026-12-04T01:00:00Z");
        assert_eq!(
            s.next_due(&tz, Some(friday), None, now),
            utc("2026-12-07T01:00:00Z")
        );
        // the machine was off on Monday: Monday's run is caught up on Tuesday
        let tuesday = utc("2026-12-08T09:00:00Z");
        assert_eq!(
            s.next_due(&tz, Some(friday), None, tuesday),
            utc("2026-12-07T01:00:00Z")
        );
        assert_eq!(
            s.upcoming(&tz, friday, 3),
            [
                utc("2026-12-07T01:00:00Z"),
                utc("2026-12-08T01:00:00Z"),
                utc("2026-12-09T01:00:00Z")
            ]
        );
        // every 20 minutes, only inside 22:00-06:00: a slot outside waits for 22:00 local
        let w = Schedule {
            cron: Some("*/20 * * * *"),
            window: Some("22:00-06:00"),
            ..s
        };
        assert_eq!(
            w.next_due(&tz, Some(utc("2026-12-04T11:00:00Z")), None, now),
            utc("2026-12-04T21:00:00Z")
        );
        assert_eq!(w.retry_pause(1), Duration::minutes(5));
        // what is refused, naming the part
        let err = |c: &str| {
            Schedule { cron: Some(c), ..s }
                .validate()
                .unwrap_err()
                .message
        };
        assert!(err("0 2 * *").contains("five fields"), "{}", err("0 2 * *"));
        assert!(err("0 0 2 * * *").contains("is not a cron expression"));
        assert!(err("61 2 * * *").contains("is not a cron expression"));
        assert!(err("0 0 30 2 *").contains("never comes"));
        let at = strings(&["02:00"]);
        assert!(
            Schedule { at: &at, ..s }
                .validate()
                .unwrap_err()
                .message
                .contains("one or the other")
        );
    }
}
