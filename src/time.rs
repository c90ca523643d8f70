//! Calendar arithmetic shared by the readers of dates (Network Monitor headers, server logs,
//! certificate validity): no time zone database, UTC only.

/// Days from 1970-01-01 to the given proleptic Gregorian date: count from 0000-03-01 in
/// 400-year eras of 146097 days, so that the leap day falls at the end of a counted year
/// (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
