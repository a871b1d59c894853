//! What the `sql` capability makes of a value SQL Server sent: text, as the WIT contract
//! says, without panicking whatever a hostile instance sends (see `sql.rs`).

use tiberius::ColumnData;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime2, Time};

/// A value as text (see the WIT contract); `None` for NULL.
pub(super) fn text(v: ColumnData<'static>) -> Option<String> {
    use ColumnData as C;
    match v {
        C::U8(v) => v.map(|v| v.to_string()),
        C::I16(v) => v.map(|v| v.to_string()),
        C::I32(v) => v.map(|v| v.to_string()),
        C::I64(v) => v.map(|v| v.to_string()),
        C::F32(v) => v.map(|v| v.to_string()),
        C::F64(v) => v.map(|v| v.to_string()),
        C::Bit(v) => v.map(|v| if v { "1" } else { "0" }.to_string()),
        C::String(v) => v.map(|v| v.into_owned()),
        C::Guid(v) => v.map(|v| v.hyphenated().to_string().to_ascii_lowercase()),
        C::Binary(v) => v.map(|v| hex::encode(v.as_ref())),
        C::Numeric(v) => v.map(decimal),
        C::Xml(v) => v.map(|v| v.into_owned().into_string()),
        C::DateTime(v) => v.map(|v| {
            // days since 1900-01-01 and 1/300 s since midnight, to the nearest ms as SQL
            // Server shows it (.003, .007, .010)
            let ms = (i64::from(v.seconds_fragments()) * 10 + 1) / 3;
            moment(1900, i64::from(v.days()), ms * 1_000_000, 3)
        }),
        C::SmallDateTime(v) => v.map(|v| {
            moment(
                1900,
                i64::from(v.days()),
                i64::from(v.seconds_fragments()) * 60_000_000_000,
                0,
            )
        }),
        C::Date(v) => v.map(|d| date(d).format("%Y-%m-%d").to_string()),
        C::Time(v) => v.map(|t| {
            let (secs, frac) = time(t);
            let base = chrono::NaiveTime::MIN + chrono::Duration::nanoseconds(secs);
            format!("{}{}", base.format("%H:%M:%S"), frac)
        }),
        C::DateTime2(v) => v.map(datetime2),
        C::DateTimeOffset(v) => v.map(|v| {
            // stored as UTC, shown in the offset it was written with
            let off = i64::from(v.offset());
            let (d, t) = (v.datetime2().date(), v.datetime2().time());
            let (ns, frac) = time(t);
            let at = date(d).and_time(chrono::NaiveTime::MIN)
                + chrono::Duration::nanoseconds(ns)
                + chrono::Duration::minutes(off);
            let sign = if off < 0 { '-' } else { '+' };
            format!(
                "{}{}{sign}{:02}:{:02}",
                at.format("%Y-%m-%dT%H:%M:%S"),
                frac,
                off.abs() / 60,
                off.abs() % 60
            )
        }),
    }
}

/// Exact decimal text of a numeric (numeric(25,0) LSNs do not fit a u64 or an f64).
fn decimal(n: Numeric) -> String {
    let (v, scale) = (n.value(), usize::from(n.scale()));
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn date(d: Date) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .unwrap_or_default()
        .checked_add_signed(chrono::Duration::days(i64::from(d.days())))
        .unwrap_or(chrono::NaiveDate::MAX)
}

/// Nanoseconds since midnight, and the fraction as SQL Server shows it (`.fffffff`).
fn time(t: Time) -> (i64, String) {
    let scale = u32::from(t.scale()).min(7);
    let inc = i64::try_from(t.increments()).unwrap_or(0);
    let per_sec = 10i64.pow(scale);
    let (secs, part) = (inc / per_sec, inc % per_sec);
    let ns = secs * 1_000_000_000 + part * 10i64.pow(9 - scale);
    let frac = if scale == 0 {
        String::new()
    } else {
        format!(".{part:0>w$}", w = scale as usize)
    };
    (ns.clamp(0, 86_399_999_999_999), frac)
}

fn datetime2(v: DateTime2) -> String {
    let (ns, frac) = time(v.time());
    let at = date(v.date()).and_time(chrono::NaiveTime::MIN) + chrono::Duration::nanoseconds(ns);
    format!("{}{}", at.format("%Y-%m-%dT%H:%M:%S"), frac)
}

/// `days` after 1 January `epoch_year` plus `ns`, with `digits` of fraction.
fn moment(epoch_year: i32, days: i64, ns: i64, digits: usize) -> String {
    // a hostile server's day count must not overflow (chrono's `+` panics): clamp
    let at = chrono::NaiveDate::from_ymd_opt(epoch_year, 1, 1)
        .unwrap_or_default()
        .and_time(chrono::NaiveTime::MIN)
        .checked_add_signed(chrono::Duration::days(days.clamp(-1_000_000, 4_000_000)))
        .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(ns)))
        .unwrap_or(chrono::NaiveDateTime::MAX);
    let mut s = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    if digits > 0 {
        let frac = format!("{:09}", at.and_utc().timestamp_subsec_nanos());
        s.push('.');
        s.push_str(&frac[..digits]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_exact() {
        assert_eq!(
            decimal(Numeric::new_with_scale(17126658000000314200037, 0)),
            "17126658000000314200037"
        );
        assert_eq!(decimal(Numeric::new_with_scale(-1205, 2)), "-12.05");
        assert_eq!(decimal(Numeric::new_with_scale(5, 3)), "0.005");
    }

    #[test]
    fn moments_read_as_sql_server_shows_them() {
        // 2026-11-30 is day 46,354 after 1900-01-01; 14:37:15.5 is 15,790,650 300ths,
        // and 119 300ths is .397 as SQL Server shows it (not .396)
        let dt = |f| {
            text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
                46_354, f,
            ))))
        };
        assert_eq!(dt(15_790_650).as_deref(), Some("2026-11-30T14:37:15.500"));
        assert_eq!(dt(119).as_deref(), Some("2026-11-30T00:00:00.397"));
        assert_eq!(dt(1).as_deref(), Some("2026-11-30T00:00:00.003"));
        // a hostile server's day count does not panic the host
        let far = text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
            i32::MAX,
            0,
        ))));
        assert!(far.is_some());
        let far = text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
            i32::MIN,
            0,
        ))));
        assert!(far.is_some());
        let t = Time::new(526_355_123_456, 7);
        assert_eq!(time(t).1, ".5123456");
        let d2 = DateTime2::new(Date::new(739_585), Time::new(52_635, 0));
        assert_eq!(datetime2(d2), "2025-12-01T14:37:15");
    }
}
