//! Values as the logs write them: UTC times, `ip:port` endpoints, forwarded-for lists.

use std::net::{IpAddr, SocketAddr};

use crate::time::days_from_civil;

/// Nanoseconds since 1970 of a UTC date `YYYY-MM-DD` and time `hh:mm:ss[.fff…]`, as IIS
/// (two fields) and Exchange (`YYYY-MM-DDThh:mm:ss.fffZ`, one) write them. Both logs are
/// always in UTC, so no offset is read.
pub fn utc_nanos(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = digits(&date[0..4])?;
    let month = digits(&date[5..7])?;
    let day = digits(&date[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time.strip_suffix(b"Z").unwrap_or(time);
    if time.len() < 8 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        digits(&time[0..2])?,
        digits(&time[3..5])?,
        digits(&time[6..8])?,
    );
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut nanos = 0i64;
    match &time[8..] {
        [] => {}
        [b'.', fraction @ ..] if !fraction.is_empty() && fraction.len() <= 9 => {
            nanos = digits(fraction)? * 10i64.pow(9 - fraction.len() as u32);
        }
        _ => return None,
    }
    let days = days_from_civil(year, month, day);
    // Years before 1970 or past 2262 do not fit in the records' time: none is a log's.
    let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second;
    if seconds < 0 {
        return None;
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// `2018-02-22T13:50:37.681Z`, Exchange's `date-time`.
pub fn iso_nanos(text: &[u8]) -> Option<i64> {
    if text.len() < 11 || text[10] != b'T' {
        return None;
    }
    utc_nanos(&text[..10], &text[11..])
}

fn digits(text: &[u8]) -> Option<i64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// `10.0.0.241:25` or `[2001:db8::1]:25`.
pub fn endpoint(text: &str) -> Option<SocketAddr> {
    text.trim().parse().ok()
}

/// The true client from a load balancer's field: `OriginalClientIP` (`192.0.2.7`, maybe
/// with a port) or `X-Forwarded-For` (`192.0.2.7,+10.0.0.1`: the first hop is the client;
/// IIS writes spaces as `+`). `None` for `-` and for anything that is not an address.
pub fn forwarded_client(text: &str) -> Option<IpAddr> {
    let first = text
        .split(',')
        .next()?
        .trim_matches(|c: char| c == '+' || c == ' ');
    if first.is_empty() || first == "-" {
        return None;
    }
    if let Ok(ip) = first.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = first.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    // `[2001:db8::7]` without a port.
    first
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::rfc3339;

    #[test]
    fn times_are_utc() {
        // `date -u -d '2018-02-22T13:50:37.681Z' +%s%N`.
        assert_eq!(
            iso_nanos(b"2018-02-22T13:50:37.681Z"),
            Some(1_519_307_437_681_000_000)
        );
        let ns = utc_nanos(b"2000-02-29", b"23:59:59").unwrap();
        assert_eq!(rfc3339(ns), "2000-02-29T23:59:59.000000Z");
        assert_eq!(utc_nanos(b"2024-13-01", b"00:00:00"), None);
        assert_eq!(utc_nanos(b"2024-01-01", b"00:00"), None);
        assert_eq!(iso_nanos(b"2024-01-01 00:00:00"), None);
        assert_eq!(utc_nanos(b"1969-12-31", b"23:59:59"), None);
        assert_eq!(utc_nanos(b"9999-12-31", b"23:59:59"), None);
    }

    #[test]
    fn forwarded_clients() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(forwarded_client("192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(forwarded_client("192.0.2.7:5123"), ip("192.0.2.7"));
        assert_eq!(forwarded_client("192.0.2.7,+10.0.0.1"), ip("192.0.2.7"));
        assert_eq!(forwarded_client("[2001:db8::7]:443"), ip("2001:db8::7"));
        assert_eq!(forwarded_client("[2001:db8::7]"), ip("2001:db8::7"));
        assert_eq!(forwarded_client("-"), None);
        assert_eq!(forwarded_client("unknown"), None);
    }
}
