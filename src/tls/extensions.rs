//! The ClientHello's layout (version, cipher suites, extensions block) and the extension
//! bodies a record reads (server_name, ALPN, supported_versions, supported_groups,
//! signature_algorithms), read in place.
//!
//! They give exactly what tls-parser 0.12 gives for the same bytes, malformed ones included
//! (the tests hold them to it): which entries a short or inconsistent list still yields, and
//! which bodies are refused. tls-parser built an owned list for each (and vectors grown entry
//! by entry), most of a hello's parsing cost; here only the summary's own lists are built.

/// The body does not read as its extension: the hello keeps what it had without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// A big-endian u16 at the front of `data`, and the rest.
fn be_u16(data: &[u8]) -> Result<(u16, &[u8]), Malformed> {
    match data {
        [hi, lo, rest @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), rest)),
        _ => Err(Malformed),
    }
}

/// A u16-length-prefixed block at the front of `data` (bytes after it are ignored).
fn u16_block(data: &[u8]) -> Result<&[u8], Malformed> {
    let (len, rest) = be_u16(data)?;
    rest.get(..usize::from(len)).ok_or(Malformed)
}

/// Big-endian 16-bit values of `bytes`, pair by pair (an odd last byte is left out).
pub(super) fn u16_values(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
}

/// The parts of a ClientHello body (RFC 8446 4.1.2) the summary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHelloLayout<'a> {
    pub version: u16,
    /// The cipher suites' bytes (whole pairs).
    pub cipher_suites: &'a [u8],
    /// The extensions block, when a whole one follows the compression methods.
    pub extensions: Option<&'a [u8]>,
}

/// Read a ClientHello body's fixed layout: version, random, session id (at most 32 bytes),
/// cipher suites (an even count of bytes), compression methods, then an optional extensions
/// block (absent also when its length runs past the body). `None` when it does not read.
pub fn client_hello_layout(body: &[u8]) -> Option<ClientHelloLayout<'_>> {
    let (version, rest) = be_u16(body).ok()?;
    let rest = rest.get(32..)?;
    let (&session_id_len, rest) = rest.split_first()?;
    if session_id_len > 32 {
        return None;
    }
    let rest = rest.get(usize::from(session_id_len)..)?;
    let (suites_len, rest) = be_u16(rest).ok()?;
    let suites_len = usize::from(suites_len);
    if suites_len % 2 == 1 {
        return None;
    }
    let cipher_suites = rest.get(..suites_len)?;
    let (&compressions_len, rest) = rest[suites_len..].split_first()?;
    let rest = rest.get(usize::from(compressions_len)..)?;
    Some(ClientHelloLayout {
        version,
        cipher_suites,
        extensions: u16_block(rest).ok(),
    })
}

/// server_name (RFC 6066 3): the first `host_name` entry of the list, if any. An empty
/// body (a server's) names none. Entries are read until one does not fit.
pub fn server_name(data: &[u8]) -> Result<Option<&[u8]>, Malformed> {
    if data.is_empty() {
        return Ok(None);
    }
    let mut list = u16_block(data)?;
    while let [kind, hi, lo, rest @ ..] = list {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some(name) = rest.get(..len) else {
            break;
        };
        if *kind == 0 {
            return Ok(Some(name));
        }
        list = &rest[len..];
    }
    Ok(None)
}

/// ALPN (RFC 7301 3.1): the protocol names, each u8-length-prefixed, until one does not fit.
pub fn alpn(data: &[u8]) -> Result<Vec<&[u8]>, Malformed> {
    let mut list = u16_block(data)?;
    let mut names = Vec::new();
    while let [len, rest @ ..] = list {
        let Some(name) = rest.get(..usize::from(*len)) else {
            break;
        };
        names.push(name);
        list = &rest[name.len()..];
    }
    Ok(names)
}

/// supported_versions (RFC 8446 4.2.1) as tls-parser reads it: a body of exactly two bytes
/// is one version (a ServerHello's form); otherwise the first byte (the list's length) is
/// skipped and the rest must be whole pairs.
pub fn supported_versions(data: &[u8]) -> Result<Vec<u16>, Malformed> {
    if data.len() == 2 {
        return Ok(u16_values(data).collect());
    }
    let rest = data.get(1..).ok_or(Malformed)?;
    if rest.len() % 2 == 1 {
        return Err(Malformed);
    }
    Ok(u16_values(rest).collect())
}

/// supported_groups (RFC 8446 4.2.7): a u16-length list of whole pairs.
pub fn supported_groups(data: &[u8]) -> Result<Vec<u16>, Malformed> {
    let list = u16_block(data)?;
    if list.len() % 2 == 1 {
        return Err(Malformed);
    }
    Ok(u16_values(list).collect())
}

/// signature_algorithms (RFC 8446 4.2.3): a u16-length list of pairs; an odd last byte is
/// ignored.
pub fn signature_algorithms(data: &[u8]) -> Result<Vec<u16>, Malformed> {
    Ok(u16_values(u16_block(data)?).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_parser::{parse_tls_client_hello_extension, SNIType, TlsExtension};

    /// What tls-parser gives for an extension of `ext_type` with body `data`, in the same
    /// terms as the functions above (`None`: refused, or another kind of value).
    fn by_tls_parser(ext_type: u16, data: &[u8]) -> Option<String> {
        let mut whole = ext_type.to_be_bytes().to_vec();
        whole.extend_from_slice(&(data.len() as u16).to_be_bytes());
        whole.extend_from_slice(data);
        let (_, parsed) = parse_tls_client_hello_extension(&whole).ok()?;
        Some(match parsed {
            TlsExtension::SNI(names) => format!(
                "{:?}",
                names
                    .iter()
                    .find(|(kind, _)| *kind == SNIType::HostName)
                    .map(|(_, name)| *name)
            ),
            TlsExtension::ALPN(names) => format!("{names:?}"),
            TlsExtension::SupportedVersions(v) => {
                format!("{:?}", v.iter().map(|v| v.0).collect::<Vec<_>>())
            }
            TlsExtension::EllipticCurves(g) => {
                format!("{:?}", g.iter().map(|g| g.0).collect::<Vec<_>>())
            }
            TlsExtension::SignatureAlgorithms(a) => format!("{a:?}"),
            other => panic!("unexpected {other:?}"),
        })
    }

    fn by_hand(ext_type: u16, data: &[u8]) -> Option<String> {
        match ext_type {
            0 => server_name(data).ok().map(|n| format!("{n:?}")),
            16 => alpn(data).ok().map(|n| format!("{n:?}")),
            43 => supported_versions(data).ok().map(|v| format!("{v:?}")),
            10 => supported_groups(data).ok().map(|v| format!("{v:?}")),
            13 => signature_algorithms(data).ok().map(|v| format!("{v:?}")),
            _ => unreachable!(),
        }
    }

    /// A small deterministic generator (xorshift64*), so that a failure repeats.
    struct Bytes(u64);

    impl Bytes {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Bodies near the valid forms (lengths off by a little, entries cut, odd counts) and
    /// plain noise, for every extension read: tls-parser and the hand reading agree on all.
    #[test]
    fn every_body_reads_as_tls_parser_reads_it() {
        let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);
        let mut cases = 0;
        for ext_type in [0u16, 16, 43, 10, 13] {
            for _ in 0..60_000 {
                let mut data = Vec::new();
                match rng.below(3) {
                    // Noise, mostly of small values so that lengths often fit.
                    0 => {
                        for _ in 0..rng.below(24) {
                            let range = if rng.below(2) == 0 { 6 } else { 256 };
                            data.push(rng.below(range) as u8);
                        }
                    }
                    // A list of entries under a u16 length that may be off.
                    _ => {
                        let mut list = Vec::new();
                        for _ in 0..rng.below(5) {
                            let len = rng.below(5) as usize;
                            match ext_type {
                                0 => {
                                    list.push(rng.below(3) as u8);
                                    list.extend_from_slice(&(len as u16).to_be_bytes());
                                }
                                16 => list.push(len as u8),
                                _ => {}
                            }
                            list.extend((0..len).map(|_| b'a' + rng.below(26) as u8));
                        }
                        let slack = rng.below(5) as i64 - 2;
                        let claimed = (list.len() as i64 + slack).max(0) as u16;
                        if ext_type == 43 && rng.below(2) == 0 {
                            data.push(claimed as u8);
                        } else {
                            data.extend_from_slice(&claimed.to_be_bytes());
                        }
                        data.extend_from_slice(&list);
                        data.truncate(data.len() - rng.below(2) as usize);
                    }
                }
                assert_eq!(
                    by_hand(ext_type, &data),
                    by_tls_parser(ext_type, &data),
                    "type {ext_type} body {data:02x?}"
                );
                cases += 1;
            }
        }
        assert_eq!(cases, 300_000);
    }

    /// ClientHello bodies cut anywhere and with any length field changed, and noise:
    /// tls-parser and the hand reading agree on every one.
    #[test]
    fn every_client_hello_layout_reads_as_tls_parser_reads_it() {
        use tls_parser::parse_tls_handshake_client_hello;
        let by_tls_parser = |body: &[u8]| {
            parse_tls_handshake_client_hello(body).ok().map(|(_, c)| {
                let suites: Vec<u16> = c.ciphers.iter().map(|s| s.0).collect();
                (c.version.0, suites, c.ext.map(<[u8]>::to_vec))
            })
        };
        let by_hand = |body: &[u8]| {
            client_hello_layout(body).map(|l| {
                let suites: Vec<u16> = u16_values(l.cipher_suites).collect();
                (l.version, suites, l.extensions.map(<[u8]>::to_vec))
            })
        };
        // version, random, session id of 3, 2 suites, 1 compression method, extensions.
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0x11; 32]);
        hello.extend_from_slice(&[3, 0xaa, 0xbb, 0xcc]);
        hello.extend_from_slice(&[0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f]);
        hello.extend_from_slice(&[0x01, 0x00]);
        hello.extend_from_slice(&[0x00, 0x05, 0x00, 0x17, 0x00, 0x00, 0xff]);
        assert_eq!(
            by_hand(&hello),
            Some((
                0x0303,
                vec![0x1301, 0xc02f],
                Some(vec![0, 0x17, 0, 0, 0xff])
            ))
        );
        let mut cases = 0;
        for cut in 0..=hello.len() {
            assert_eq!(
                by_hand(&hello[..cut]),
                by_tls_parser(&hello[..cut]),
                "cut {cut}"
            );
            cases += 1;
        }
        // Every length field (session id, suites, compressions, extensions) over a range.
        for at in [34usize, 38, 39, 44, 46, 47] {
            for value in 0..=255u8 {
                let mut changed = hello.clone();
                changed[at] = value;
                for cut in [changed.len(), changed.len() - 1, changed.len() - 3] {
                    let body = &changed[..cut];
                    assert_eq!(by_hand(body), by_tls_parser(body), "byte {at} = {value}");
                    cases += 1;
                }
            }
        }
        // Well-formed bodies of every session id length up to past the limit, odd and even
        // suite lengths, with and without compressions and extensions.
        for session_id_len in 0..=40u8 {
            for suites_len in 0..=5u8 {
                for compressions in 0..=2u8 {
                    for extensions in [None, Some(&[][..]), Some(&[0x00, 0x17, 0x00, 0x00][..])] {
                        let mut body = vec![0x03, 0x01];
                        body.extend_from_slice(&[0x22; 32]);
                        body.push(session_id_len);
                        body.extend((0..session_id_len).map(|i| i.wrapping_mul(7)));
                        body.extend_from_slice(&[0, suites_len]);
                        body.extend((0..suites_len).map(|i| 0xc0 + i));
                        body.push(compressions);
                        body.extend(0..compressions);
                        if let Some(block) = extensions {
                            body.extend_from_slice(&(block.len() as u16).to_be_bytes());
                            body.extend_from_slice(block);
                        }
                        assert_eq!(by_hand(&body), by_tls_parser(&body), "{body:02x?}");
                        cases += 1;
                    }
                }
            }
        }
        let mut rng = Bytes(0x2545_f491_4f6c_dd1d);
        for _ in 0..100_000 {
            let mut body = hello.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(body.len() as u64) as usize;
                let range = if rng.below(2) == 0 { 40 } else { 256 };
                body[at] = rng.below(range) as u8;
            }
            body.truncate(body.len() - rng.below(8) as usize);
            assert_eq!(by_hand(&body), by_tls_parser(&body), "{body:02x?}");
            cases += 1;
        }
        assert!(cases > 100_000);
    }

    /// Bodies as RFC 8448's example ClientHello (section 3) carries them, and an ALPN list
    /// and signature_algorithms laid out as RFC 7301 3.1 and RFC 8446 4.2.3 define them.
    #[test]
    fn real_bodies() {
        // RFC 8448 3: server_name "server", supported_groups, signature_algorithms,
        // supported_versions (TLS 1.3 only).
        let sni = [
            0x00, 0x09, 0x00, 0x00, 0x06, b's', b'e', b'r', b'v', b'e', b'r',
        ];
        assert_eq!(server_name(&sni), Ok(Some(&b"server"[..])));
        let groups = [
            0x00, 0x12, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00, 0x01, 0x01,
            0x01, 0x02, 0x01, 0x03, 0x01, 0x04,
        ];
        assert_eq!(
            supported_groups(&groups),
            Ok(vec![
                0x1d, 0x17, 0x18, 0x19, 0x100, 0x101, 0x102, 0x103, 0x104
            ])
        );
        assert_eq!(supported_versions(&[0x02, 0x03, 0x04]), Ok(vec![0x0304]));
        let alpn_body = [
            0x00, 0x0c, 0x02, b'h', b'2', 0x08, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ];
        assert_eq!(alpn(&alpn_body), Ok(vec![&b"h2"[..], &b"http/1.1"[..]]));
        assert_eq!(
            signature_algorithms(&[0x00, 0x04, 0x04, 0x03, 0x08, 0x04]),
            Ok(vec![0x0403, 0x0804])
        );
    }
}
