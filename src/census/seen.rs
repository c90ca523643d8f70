//! First and last seen times of a client's service, packed into a number.
//!
//! Every record and every report has its times in one form, `2024-05-01T10:23:45.123456Z`
//! (27 bytes). Kept as text, each of a census's client services held two heap blocks of 32
//! bytes for them; packed, a time is 8 bytes inline. The packing keeps the text's digits, a
//! field each, most significant first, so packed times compare as their texts do and
//! format back to exactly the text they came from. A text in any other form (a report
//! edited by hand, a future format) is kept as text: nothing is ever rounded or rewritten.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

/// Length of a time in the packed form.
const LEN: usize = 27;

/// Set in every packed time, so that a packed time is never 0 (no time) nor [`TEXT`].
const PACKED: u64 = 1 << 63;

/// The fields of the packed form: where the digits are in the text, and their bits in the
/// number (most significant first). Every field's largest value fits its bits.
const FIELDS: [(usize, usize, u32); 7] = [
    // (first digit, digits, bits)
    (0, 4, 14),  // year, ≤ 9999
    (5, 2, 4),   // month, ≤ 15
    (8, 2, 5),   // day, ≤ 31
    (11, 2, 5),  // hour, ≤ 31
    (14, 2, 6),  // minute, ≤ 63
    (17, 2, 6),  // second, ≤ 63
    (20, 6, 20), // microseconds, ≤ 999,999
];

/// The text between the digits.
const TEMPLATE: &[u8; LEN] = b"0000-00-00T00:00:00.000000Z";

/// A first or last seen time as a client's counts keep it: none (0, the default), packed,
/// or "the text is kept beside" (see [`super::Uncommon`]).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Stamp(u64);

impl Stamp {
    /// The time is a text kept beside the counts.
    pub const TEXT: Stamp = Stamp(1);

    pub fn packed(bits: u64) -> Stamp {
        debug_assert!(bits & PACKED != 0);
        Stamp(bits)
    }

    /// The packed time, when it is one.
    pub fn bits(self) -> Option<u64> {
        (self.0 & PACKED != 0).then_some(self.0)
    }
}

/// A first or last seen time, as the census hands it out: packed, or a text of another
/// form. Compares as the texts do; written as the text.
#[derive(Clone, Copy)]
pub enum Seen<'a> {
    Packed(u64),
    Text(&'a str),
}

impl<'a> Seen<'a> {
    /// The time `text`, packed when it is in the usual form.
    pub fn of(text: &'a str) -> Seen<'a> {
        pack(text).map_or(Seen::Text(text), Seen::Packed)
    }

    /// The text, formatted from the packed form when it is one.
    pub fn text(self) -> SeenText<'a> {
        match self {
            Seen::Packed(bits) => SeenText::Formatted(unpack(bits)),
            Seen::Text(text) => SeenText::Borrowed(text),
        }
    }
}

impl PartialEq for Seen<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Seen<'_> {}

impl Ord for Seen<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Seen::Packed(a), Seen::Packed(b)) => a.cmp(b),
            _ => (*self.text()).cmp(&*other.text()),
        }
    }
}

impl PartialOrd for Seen<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Seen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Seen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), f)
    }
}

impl Serialize for Seen<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// The text of a [`Seen`]: formatted here, or borrowed.
#[derive(Clone, Copy)]
pub enum SeenText<'a> {
    Formatted([u8; LEN]),
    Borrowed(&'a str),
}

impl std::ops::Deref for SeenText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            SeenText::Formatted(bytes) => std::str::from_utf8(bytes).expect("digits and ASCII"),
            SeenText::Borrowed(text) => text,
        }
    }
}

/// `text` packed, when it is in the usual form with every field within its bits.
fn pack(text: &str) -> Option<u64> {
    let bytes: &[u8; LEN] = text.as_bytes().try_into().ok()?;
    let mut digits_at = [false; LEN];
    let mut bits = PACKED;
    let mut shift = 63;
    for (at, len, width) in FIELDS {
        let mut value = 0u64;
        for (i, &b) in bytes[at..at + len].iter().enumerate() {
            if !b.is_ascii_digit() {
                return None;
            }
            digits_at[at + i] = true;
            value = value * 10 + u64::from(b - b'0');
        }
        if value >> width != 0 {
            return None;
        }
        shift -= width;
        bits |= value << shift;
    }
    let separators_match = (0..LEN).all(|i| digits_at[i] || bytes[i] == TEMPLATE[i]);
    separators_match.then_some(bits)
}

/// The text of a packed time.
fn unpack(bits: u64) -> [u8; LEN] {
    let mut out = *TEMPLATE;
    let mut shift = 63;
    for (at, len, width) in FIELDS {
        shift -= width;
        let mut value = (bits >> shift) & ((1 << width) - 1);
        for b in out[at..at + len].iter_mut().rev() {
            *b = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_usual_form_and_formats_it_back() {
        for text in [
            "2024-05-01T10:23:45.123456Z",
            "0000-00-00T00:00:00.000000Z",
            "9999-15-31T31:63:63.999999Z",
            "2023-11-14T22:13:20.433445Z",
            "1970-01-01T00:00:60.000001Z",
        ] {
            let bits = pack(text).unwrap_or_else(|| panic!("{text} packs"));
            assert_eq!(std::str::from_utf8(&unpack(bits)).unwrap(), text);
            assert_eq!(&*Seen::of(text).text(), text);
        }
    }

    #[test]
    fn keeps_any_other_text_as_it_is() {
        for text in [
            "",
            "2024-05-01T10:23:45Z",
            "2024-05-01T10:23:45.123Z",
            "2024-05-01T10:23:45.1234567Z",
            "2024-05-01 10:23:45.123456Z",
            "2024-05-01T10:23:45.123456z",
            "2024-16-01T10:23:45.123456Z",
            "2024-05-32T10:23:45.123456Z",
            "2024-05-01T32:23:45.123456Z",
            "2024-05-01T10:64:45.123456Z",
            "2024-05-01T10:23:64.123456Z",
            "2024-05-01T10:23:45.12345xZ",
            "+024-05-01T10:23:45.123456Z",
            "2024-05-01T10:23:45.123456\u{e9}",
        ] {
            assert!(pack(text).is_none(), "{text:?} packed");
            assert!(matches!(Seen::of(text), Seen::Text(t) if t == text));
        }
    }

    /// Packed or not, times compare as their texts do.
    #[test]
    fn compares_as_the_texts() {
        let texts = [
            "2024-05-01T10:23:45.123456Z",
            "2024-05-01T10:23:45.123457Z",
            "2024-05-01T10:23:46.000000Z",
            "2024-05-01T10:24:00.000000Z",
            "2024-05-01T11:00:00.000000Z",
            "2024-05-02T00:00:00.000000Z",
            "2024-06-01T00:00:00.000000Z",
            "2025-01-01T00:00:00.000000Z",
            "0999-12-31T23:59:59.999999Z",
            "2024-05-01T10:23:45Z",
            "2024-05-01T10:23:45.1Z",
            "2024-05-01",
            "",
            "z",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(Seen::of(a).cmp(&Seen::of(b)), a.cmp(b), "{a} against {b}");
                assert_eq!(Seen::of(a).cmp(&Seen::Text(b)), a.cmp(b), "{a} against {b}");
            }
        }
    }

    #[test]
    fn written_as_the_text() {
        let text = "2024-05-01T10:23:45.123456Z";
        assert_eq!(
            serde_json::to_string(&Seen::of(text)).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(Seen::of(text).to_string(), text);
    }
}
