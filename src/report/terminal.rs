//! Text from the wire made safe to print on a terminal.
//!
//! SNIs, EHLO and DNS names are chosen by whoever sends them. Printed as they are, an escape
//! sequence among them could recolour the table, clear the screen, retitle the window or
//! (on some terminals) answer back into the shell's input. [`terminal_safe`] drops every
//! escape sequence whole (ECMA-48: CSI, OSC and the other string controls, and two-byte
//! escapes), every other C0 and C1 control, DEL, and the Unicode bidirectional overrides
//! that would reorder the rest of the line.

/// `text` without control characters or escape sequences.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\u{1b}' => skip_escape(&mut chars),
            // CSI, OSC, DCS, SOS, PM, APC in their 8-bit (C1) form.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_dropped(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After ESC: the rest of the sequence it starts.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \).
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Intermediate bytes, then one final byte (`ESC ( B`, `ESC # 8`).
        Some(' '..='/') => {
            while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
            chars.next();
        }
        // A two-character escape (`ESC c`, `ESC 7`), or ESC at the end.
        _ => {}
    }
}

/// A control sequence's parameter and intermediate bytes, then its final byte.
fn skip_csi(chars: &mut Chars<'_>) {
    while chars
        .next_if(|c| matches!(c, '0'..='?' | ' '..='/'))
        .is_some()
    {}
    chars.next_if(|c| matches!(c, '@'..='~'));
}

/// A control string, to BEL, ST (ESC \ or U+009C) or the end of the text.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_sequences_whole_and_keeps_the_text() {
        for (text, want) in [
            ("mail.example.org", "mail.example.org"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("a\u{1b}[2Jb", "ab"),
            ("\u{1b}]0;owned\u{7}end", "end"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("\u{1b}(Bx", "x"),
            ("\u{1b}cx", "x"),
            ("tab\there\r\nnext", "tabherenext"),
            ("\u{9b}1mx", "x"),
            ("bidi\u{202e}txt", "biditxt"),
            ("ü 日本", "ü 日本"),
            ("\u{1b}", ""),
            ("\u{1b}[", ""),
        ] {
            assert_eq!(terminal_safe(text), want, "{text:?}");
        }
    }
}
