//! Plain LZ77 "LZXpress" decompression, as specified in [MS-XCA] section 2.4 (the format of
//! section 2.3): the compression Windows applies to the buffers of an ETW log file written
//! with `EVENT_TRACE_COMPRESSED_MODE` (pktmon's files among them).
//!
//! The stream is 32-bit little-endian flag words, each followed by the 32 items it
//! describes, most significant bit first: a clear bit is one literal byte, a set bit a match
//! of two bytes: `offset - 1` in the high 13 bits and `length - 3` in the low 3. A length of 7
//! (all three bits set) continues in a shared half-byte (two matches use the two nibbles of
//! one byte), then in a byte, then in a 16-bit or 32-bit little-endian word. Input ending
//! where an item would begin ends the data.
//!
//! No crate on crates.io implements this variant (as opposed to the Huffman one) and is
//! kept up; the format is small enough to decode here, with the output's length bounded by
//! the caller so that a hostile length field cannot exhaust memory.

/// Why a compressed stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XpressError {
    /// A match reaches back before the start of the output.
    OffsetBeforeStart { at: usize },
    /// The output would exceed the limit given.
    TooLong { limit: usize },
    /// The input ends inside a length field.
    Truncated { at: usize },
}

impl std::fmt::Display for XpressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XpressError::OffsetBeforeStart { at } => {
                write!(
                    f,
                    "match at input byte {at} reaches before the output's start"
                )
            }
            XpressError::TooLong { limit } => write!(f, "output longer than {limit} bytes"),
            XpressError::Truncated { at } => write!(f, "input ends in a match length at {at}"),
        }
    }
}

/// Decompresses `input` into `out` (cleared first), writing at most `limit` bytes.
pub fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), XpressError> {
    out.clear();
    let mut pos = 0;
    let mut flags: u32 = 0;
    let mut flag_count = 0u32;
    // Position of the byte whose high nibble the next 7-length match uses, if any.
    let mut half_byte: Option<usize> = None;
    loop {
        if flag_count == 0 {
            let Some(word) = input.get(pos..pos + 4) else {
                return Ok(());
            };
            flags = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            pos += 4;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1 << flag_count) == 0 {
            let Some(&byte) = input.get(pos) else {
                return Ok(());
            };
            if out.len() >= limit {
                return Err(XpressError::TooLong { limit });
            }
            out.push(byte);
            pos += 1;
            continue;
        }
        let match_at = pos;
        let Some(pair) = input.get(pos..pos + 2) else {
            return Ok(());
        };
        let word = u16::from_le_bytes([pair[0], pair[1]]);
        pos += 2;
        let offset = usize::from(word >> 3) + 1;
        let mut length = usize::from(word & 7);
        if length == 7 {
            length = match half_byte.take() {
                Some(at) => usize::from(input[at] >> 4),
                None => {
                    let &b = input.get(pos).ok_or(XpressError::Truncated { at: pos })?;
                    half_byte = Some(pos);
                    pos += 1;
                    usize::from(b & 0x0f)
                }
            };
            if length == 15 {
                let &b = input.get(pos).ok_or(XpressError::Truncated { at: pos })?;
                pos += 1;
                length = usize::from(b);
                if length == 255 {
                    let w = input
                        .get(pos..pos + 2)
                        .ok_or(XpressError::Truncated { at: pos })?;
                    pos += 2;
                    length = usize::from(u16::from_le_bytes([w[0], w[1]]));
                    if length == 0 {
                        let d = input
                            .get(pos..pos + 4)
                            .ok_or(XpressError::Truncated { at: pos })?;
                        pos += 4;
                        length = u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize;
                    }
                    // The long forms hold the whole length less 3 (added below).
                    length = length
                        .checked_sub(15 + 7)
                        .ok_or(XpressError::Truncated { at: match_at })?;
                }
                length += 15;
            }
            length += 7;
        }
        length += 3;
        let start = out
            .len()
            .checked_sub(offset)
            .ok_or(XpressError::OffsetBeforeStart { at: match_at })?;
        if length > limit - out.len() {
            return Err(XpressError::TooLong { limit });
        }
        if offset >= length {
            out.extend_from_within(start..start + length);
        } else {
            // The match overlaps what it writes: a repeating pattern, copied byte by byte.
            for i in 0..length {
                let byte = out[start + i];
                out.push(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(input: &[u8]) -> Result<Vec<u8>, XpressError> {
        let mut out = Vec::new();
        decompress(input, &mut out, 1 << 20).map(|()| out)
    }

    /// [MS-XCA] section 3.1, first example: 26 literals behind one flag word.
    #[test]
    fn spec_example_literals() {
        let mut input = vec![0x3f, 0x00, 0x00, 0x00];
        input.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
        assert_eq!(unpack(&input).unwrap(), b"abcdefghijklmnopqrstuvwxyz");
    }

    /// [MS-XCA] section 3.1, second example: "abc" repeated 100 times compresses to three
    /// literals and one overlapping match of 297 bytes (length in the 16-bit form).
    #[test]
    fn spec_example_long_match() {
        let input = [
            0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
        ];
        assert_eq!(unpack(&input).unwrap(), b"abc".repeat(100));
    }

    #[test]
    fn hostile_input_is_refused() {
        // A match before any output.
        let input = [0x00, 0x00, 0x00, 0x80, 0x00, 0x00];
        assert_eq!(
            unpack(&input),
            Err(XpressError::OffsetBeforeStart { at: 4 })
        );
        // A huge length in the 32-bit form is bounded by the limit.
        let input = [
            0xff, 0xff, 0xff, 0x7f, 0x61, 0x07, 0x00, 0x0f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff,
            0x7f,
        ];
        let mut out = Vec::new();
        assert_eq!(
            decompress(&input, &mut out, 1000),
            Err(XpressError::TooLong { limit: 1000 })
        );
        // Input cut inside a length.
        assert_eq!(
            unpack(&[0x00, 0x00, 0x00, 0x40, 0x61, 0x07, 0x00]),
            Err(XpressError::Truncated { at: 7 })
        );
    }
}

#[cfg(test)]
mod real_buffer {
    use sha2::{Digest, Sha256};

    /// The first compressed buffer of a pktmon capture (tests/etl/real/demikernel): its
    /// length and SHA-256 once decompressed, as dissect.util's LZXpress decoder gives them.
    #[test]
    fn pktmon_buffer_as_dissect_decompresses_it() {
        let file = include_bytes!("../../../tests/etl/real/demikernel/PktMon.etl");
        let mut out = Vec::new();
        super::decompress(&file[1024 + 0x48..12950], &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 50_088);
        assert_eq!(
            format!("{:x}", Sha256::digest(&out)),
            "b4aa102436019ca3385aee1b5aef987e25af1c9bd4981783374e34adf16b91d7"
        );
    }
}
