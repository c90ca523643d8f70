//! The IMAP ID command (RFC 2971): a client names its software in clear before STARTTLS.
//!
//! `tag ID ("name" "Thunderbird" "version" "115.3.1" ...)` or `tag ID NIL`. Field names are
//! case-insensitive strings of at most 30 octets, values at most 1024 (RFC 2971 3.3); only
//! quoted strings are read (a literal, `{n}`, is skipped by the dialogue as data).

/// Longest text kept from a value (RFC 2971 3.3's limit for a value).
const VALUE_CAP: usize = 1024;

/// `name version` from the ID parameter list (`("name" "x" "version" "y")`), or the
/// name alone; `None` for `NIL`, a list without a name, or anything malformed.
pub fn software(params: &[u8]) -> Option<String> {
    let inner = params.trim_ascii().strip_prefix(b"(")?;
    let mut rest = inner;
    let (mut name, mut version) = (None, None);
    loop {
        rest = rest.trim_ascii_start();
        if rest.first() == Some(&b')') || rest.is_empty() {
            break;
        }
        let (field, after) = quoted(rest)?;
        let (value, after) = match after.trim_ascii_start() {
            v if v.len() >= 3 && v[..3].eq_ignore_ascii_case(b"NIL") => (None, &v[3..]),
            v => {
                let (value, after) = quoted(v)?;
                (Some(value), after)
            }
        };
        rest = after;
        if field.eq_ignore_ascii_case(b"name") {
            name = value;
        } else if field.eq_ignore_ascii_case(b"version") {
            version = value;
        }
    }
    let name = name.filter(|n| !n.is_empty())?;
    let mut text = String::from_utf8_lossy(&name).into_owned();
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        text.push(' ');
        text.push_str(&String::from_utf8_lossy(&version));
    }
    Some(text)
}

/// A quoted string at the start of `text` (RFC 3501 4.3: `\` escapes `"` and `\`): its
/// content (at most [`VALUE_CAP`] bytes kept) and the text after the closing quote.
fn quoted(text: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut bytes = text.strip_prefix(b"\"")?.iter().enumerate();
    let mut out = Vec::new();
    while let Some((i, &b)) = bytes.next() {
        let b = match b {
            b'"' => return Some((out, &text[i + 2..])),
            b'\\' => *bytes.next()?.1,
            b'\r' | b'\n' => return None,
            b => b,
        };
        if out.len() < VALUE_CAP {
            out.push(b);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 2971 section 4 (client side), and broken input.
    #[test]
    fn reads_the_name_and_version() {
        assert_eq!(
            software(br#"("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")"#),
            Some("sodr 19.34".into())
        );
        assert_eq!(software(b"NIL"), None);
        assert_eq!(
            software(br#"("NAME" "Mail \"X\"" "version" NIL)"#),
            Some("Mail \"X\"".into())
        );
        assert_eq!(software(br#"("vendor" "x")"#), None);
        assert_eq!(software(br#"("name" "unterminated)"#), None);
        assert_eq!(software(br#"("name")"#), None);
        assert_eq!(software(b"("), None);
    }
}
