//! What makes a run reproducible besides its seed and profile: the git revision of the code
//! that ran, and the UTC time it started.

use std::time::{SystemTime, UNIX_EPOCH};

/// `git rev-parse HEAD` of the working directory, with `-dirty` when it has uncommitted
/// changes; `unknown` outside a checkout.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        _ => "unknown".to_owned(),
    }
}

/// A UTC civil date and time from a system time, as (y, m, d, hh, mm, ss).
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let part = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        y,
        part(m),
        part(d),
        part(rem / 3600),
        part(rem % 3600 / 60),
        part(rem % 60),
    )
}

/// `2026-11-23T21:17:05Z`
pub fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261123T211705Z`, for folder names.
pub fn compact(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// An instant written as `2026-11-23T21:17:05Z` (whole seconds, UTC) or as seconds since
/// the Unix epoch (`1795468625`, `1795468625.5`); None for anything else.
pub fn parse_instant(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
    }
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| text.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Howard Hinnant's days-from-civil algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    let time = UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // A day past the month's end (2026-02-30) comes back as another date.
    (rfc3339(time) == text).then_some(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_469_344);
        assert_eq!(rfc3339(t), "2026-11-23T21:29:04Z");
        assert_eq!(compact(UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn instants_read_back_as_written() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_469_344);
        assert_eq!(parse_instant("2026-11-23T21:29:04Z"), Some(t));
        assert_eq!(parse_instant("1795469344"), Some(t));
        assert_eq!(
            parse_instant("1795469344.25"),
            Some(t + Duration::from_millis(250))
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-23 21:29:04",
            "-5",
            "soon",
            "",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
