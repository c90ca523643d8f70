//! Hello message parsing: tls-parser for TLS-format ServerHellos; the ClientHello's layout
//! and the extensions a record reads are read in place by [`super::extensions`], exactly as
//! tls-parser reads them; by hand for the SSLv2 record format, which tls-parser does not read
//! (RFC 6101 appendix E, and the SSL 2.0 draft's CLIENT-HELLO / SERVER-HELLO layouts).
//!
//! Input is one whole handshake message body, borrowed; the output is the small owned summary
//! of [`super::hello`].

use tls_parser::{
    parse_tls_handshake_msg_server_hello, parse_tls_server_hello_extension, TlsExtension,
    TlsMessageHandshake,
};

use super::extensions::{self, u16_values};
use super::hello::{ClientHello, ServerHello, SSL2};

/// Why a hello could not be read. A hello that is merely incomplete never gets here: the
/// stream layer waits for all of its bytes first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("malformed ClientHello")]
    ClientHello,
    #[error("malformed ServerHello")]
    ServerHello,
    #[error("malformed SSLv2 {0}")]
    Sslv2(&'static str),
}

/// RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest
/// (SHA-256 of "HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Extension type codes read below (IANA TLS ExtensionType registry).
mod ext {
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
    pub const SERVER_NAME: u16 = 0;
    pub const ALPN: u16 = 16;
}

/// Walk an extensions block (RFC 8446 4.2): yields (type, whole extension bytes, data).
/// Stops quietly at a truncated entry, keeping the ones before it.
fn extensions(mut block: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        let (head, _) = block.split_first_chunk::<4>()?;
        let ext_type = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let whole = block.get(..4 + len)?;
        block = &block[4 + len..];
        Some((ext_type, whole, &whole[4..]))
    })
}

/// Parse a TLS ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2).
pub fn client_hello(body: &[u8], record_version: u16) -> Result<ClientHello, HelloError> {
    let layout = extensions::client_hello_layout(body).ok_or(HelloError::ClientHello)?;
    let mut hello = ClientHello {
        record_version,
        legacy_version: layout.version,
        cipher_suites: u16_values(layout.cipher_suites).collect(),
        ..ClientHello::default()
    };
    let block = layout.extensions.unwrap_or_default();
    hello.extensions.reserve_exact(extensions(block).count());
    for (ext_type, _, data) in extensions(block) {
        hello.extensions.push(ext_type);
        // A malformed extension body is kept as a type and otherwise ignored: for a census it
        // is better to read what is there than to drop the hello. The bodies are read as
        // tls-parser reads them ([`super::extensions`]).
        match ext_type {
            // key_share (RFC 8446 4.2.8): tls-parser keeps it raw, so walk the entries here.
            ext::KEY_SHARE => hello.key_share_groups = key_share_groups(data),
            ext::EC_POINT_FORMATS => {
                hello.ec_point_formats = data.get(1..).unwrap_or_default().to_vec()
            }
            ext::SERVER_NAME => {
                if let Ok(name) = extensions::server_name(data) {
                    hello.sni = name.map(|name| String::from_utf8_lossy(name).into_owned());
                }
            }
            ext::ALPN => {
                if let Ok(names) = extensions::alpn(data) {
                    hello.alpn = names
                        .iter()
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .collect();
                    hello.alpn_first_raw = names.first().and_then(|n| unless_utf8(n));
                }
            }
            ext::SUPPORTED_VERSIONS => {
                if let Ok(versions) = extensions::supported_versions(data) {
                    hello.supported_versions = versions;
                }
            }
            ext::SUPPORTED_GROUPS => {
                if let Ok(groups) = extensions::supported_groups(data) {
                    hello.supported_groups = groups;
                }
            }
            ext::SIGNATURE_ALGORITHMS => {
                if let Ok(algorithms) = extensions::signature_algorithms(data) {
                    hello.signature_algorithms = algorithms;
                }
            }
            _ => {}
        }
    }
    // tls-parser reads a supported_groups or signature_algorithms list only when its length
    // is consistent; fall back to the raw pairs so a sloppy client is still described.
    for (ext_type, _, data) in extensions(block) {
        let list = data.get(2..).unwrap_or_default();
        match ext_type {
            ext::SUPPORTED_GROUPS if hello.supported_groups.is_empty() => {
                hello.supported_groups = u16_values(list).collect()
            }
            ext::SIGNATURE_ALGORITHMS if hello.signature_algorithms.is_empty() => {
                hello.signature_algorithms = u16_values(list).collect()
            }
            _ => {}
        }
    }
    Ok(hello)
}

/// Groups of a ClientHello key_share extension: a u16-length list of (group, u16-length key).
fn key_share_groups(data: &[u8]) -> Vec<u16> {
    let mut groups = Vec::new();
    let mut entries = data.get(2..).unwrap_or_default();
    while let Some((head, _)) = entries.split_first_chunk::<4>() {
        groups.push(u16::from_be_bytes([head[0], head[1]]));
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        entries = entries.get(4 + len..).unwrap_or_default();
    }
    groups
}

/// Parse a TLS ServerHello body (RFC 8446 4.1.3, RFC 5246 7.4.1.3), HelloRetryRequest included.
pub fn server_hello(body: &[u8], record_version: u16) -> Result<ServerHello, HelloError> {
    // tls-parser reads SSL 3.0 to TLS 1.2 legacy versions (and SSL 3.0 without extensions);
    // anything else (TLS 1.3 drafts' legacy versions, an SSL 3.0 hello with extensions,
    // unknown codes) goes through the same fixed layout by hand.
    let version = u16::from_be_bytes([
        body.first().copied().unwrap_or(0),
        body.get(1).copied().unwrap_or(0),
    ]);
    // tls-parser knows the early layout only as draft 18's; the others would be read with a
    // session id that is not there.
    let parsed = (!early_draft_layout(version)).then(|| parse_tls_handshake_msg_server_hello(body));
    let by_tls_parser = match parsed {
        Some(Ok((_, TlsMessageHandshake::ServerHello(sh))))
            if !(sh.version.0 == 0x0300 && body.len() > 38 + sid_len(body)) =>
        {
            Some((sh.version.0, sh.random, sh.cipher.0, sh.ext))
        }
        Some(Ok((_, TlsMessageHandshake::ServerHelloV13Draft18(sh)))) => {
            Some((sh.version.0, sh.random, sh.cipher.0, sh.ext))
        }
        _ => None,
    };
    let (legacy_version, random, cipher_suite, ext_block) = match by_tls_parser {
        Some(parts) => parts,
        None => server_hello_by_hand(body).ok_or(HelloError::ServerHello)?,
    };
    let mut hello = ServerHello {
        record_version,
        legacy_version,
        cipher_suite,
        hrr: random == HRR_RANDOM,
        ..ServerHello::default()
    };
    let block = ext_block.unwrap_or_default();
    hello.extensions.reserve_exact(extensions(block).count());
    for (ext_type, whole, data) in extensions(block) {
        hello.extensions.push(ext_type);
        if ext_type == ext::SUPPORTED_VERSIONS {
            // A ServerHello carries exactly one version (RFC 8446 4.2.1).
            hello.supported_version = u16_values(data).next();
            continue;
        }
        if ext_type != ext::ALPN {
            continue;
        }
        if let Ok((_, TlsExtension::ALPN(names))) = parse_tls_server_hello_extension(whole) {
            hello.alpn = names
                .first()
                .map(|n| String::from_utf8_lossy(n).into_owned());
            hello.alpn_raw = names.first().and_then(|n| unless_utf8(n));
        }
    }
    Ok(hello)
}

/// An ALPN name's bytes when the lossy string cannot give them back (they are not UTF-8): JA4
/// renders such names from their bytes. Valid names cost no copy.
fn unless_utf8(name: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(name).is_err().then(|| name.to_vec())
}

fn sid_len(body: &[u8]) -> usize {
    body.get(34).map_or(0, |n| usize::from(*n))
}

/// The ServerHello fields the summary needs: legacy version, random, cipher suite,
/// extensions block.
type ServerHelloParts<'a> = (u16, &'a [u8], u16, Option<&'a [u8]>);

/// Whether a ServerHello of this version has TLS 1.3's early layout: drafts before 22 (codes
/// 0x7f01 to 0x7f15; tshark names 14 to 21) carried the draft in the version field and had
/// neither legacy_session_id_echo nor legacy_compression_method, which draft 22 brought back
/// for middleboxes. tshark reads the same range this way (`tls13_draft_version` 1 to 21).
fn early_draft_layout(version: u16) -> bool {
    (0x7f01..=0x7f15).contains(&version)
}

/// version(2) random(32) session_id(1+n) cipher(2) compression(1) [extensions(2+n)]; or, for
/// [`early_draft_layout`] versions, version(2) random(32) cipher(2) extensions(2+n).
fn server_hello_by_hand(body: &[u8]) -> Option<ServerHelloParts<'_>> {
    let version = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let random = body.get(2..34)?;
    let early_draft = early_draft_layout(version);
    let rest = if early_draft {
        body.get(34..)?
    } else {
        let sid = usize::from(*body.get(34)?);
        if sid > 32 {
            return None;
        }
        body.get(35 + sid..)?
    };
    let cipher = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    let ext = match rest.get(if early_draft { 2 } else { 3 }..) {
        Some([hi, lo, block @ ..]) => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            Some(block.get(..len)?)
        }
        _ => None,
    };
    Some((version, random, cipher, ext))
}

/// Parse an SSLv2-format CLIENT-HELLO message (the record's body, from the message type on).
pub fn sslv2_client_hello(msg: &[u8]) -> Result<ClientHello, HelloError> {
    const ERR: HelloError = HelloError::Sslv2("CLIENT-HELLO");
    let field = |at: usize| -> Result<u16, HelloError> {
        Ok(u16::from_be_bytes([
            *msg.get(at).ok_or(ERR)?,
            *msg.get(at + 1).ok_or(ERR)?,
        ]))
    };
    if msg.first() != Some(&1) {
        return Err(ERR);
    }
    let version = field(1)?;
    let specs_len = usize::from(field(3)?);
    let specs = msg.get(9..9 + specs_len).ok_or(ERR)?;
    if specs_len % 3 != 0 {
        return Err(ERR);
    }
    let mut hello = ClientHello {
        record_version: SSL2,
        legacy_version: version,
        sslv2_format: true,
        ..ClientHello::default()
    };
    for spec in specs.chunks_exact(3) {
        let code = u32::from_be_bytes([0, spec[0], spec[1], spec[2]]);
        hello.sslv2_cipher_specs.push(code);
        // A spec with a zero first byte names a TLS cipher suite (RFC 5246 appendix E.2).
        if spec[0] == 0 {
            hello
                .cipher_suites
                .push(u16::from_be_bytes([spec[1], spec[2]]));
        }
    }
    Ok(hello)
}

/// Parse an SSLv2 SERVER-HELLO message (from the message type on).
pub fn sslv2_server_hello(msg: &[u8]) -> Result<ServerHello, HelloError> {
    const ERR: HelloError = HelloError::Sslv2("SERVER-HELLO");
    // type(1)=4, session_id_hit(1), certificate_type(1), version(2), certificate_length(2),
    // cipher_specs_length(2), connection_id_length(2), certificate, cipher specs, conn. id.
    let header = msg.get(..11).ok_or(ERR)?;
    if header[0] != 4 {
        return Err(ERR);
    }
    let version = u16::from_be_bytes([header[3], header[4]]);
    let cert_len = usize::from(u16::from_be_bytes([header[5], header[6]]));
    let specs_len = usize::from(u16::from_be_bytes([header[7], header[8]]));
    let specs = msg.get(11 + cert_len..11 + cert_len + specs_len);
    // The server lists the specs it accepts; the client picks in CLIENT-MASTER-KEY. Report
    // the first, which is the server's preference.
    let first = specs
        .and_then(|s| s.get(..3))
        .map(|s| u32::from_be_bytes([0, s[0], s[1], s[2]]));
    Ok(ServerHello {
        record_version: SSL2,
        legacy_version: version,
        // A spec with a zero first byte names a TLS suite; SSLv2's own specs have no u16 code.
        cipher_suite: first.filter(|c| *c <= 0xffff).map_or(0, |c| c as u16),
        sslv2_cipher_spec: first,
        sslv2_format: true,
        ..ServerHello::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal TLS 1.2 ClientHello body laid out per RFC 5246 7.4.1.2 with SNI "a.b",
    /// supported_versions {GREASE, 1.3, 1.2} and ALPN "h2".
    fn client_hello_body() -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[7u8; 32]);
        b.push(0); // session id
        b.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f]);
        b.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        exts.extend_from_slice(&[0, 0, 0, 8, 0, 6, 0, 0, 3, b'a', b'.', b'b']);
        exts.extend_from_slice(&[0, 43, 0, 7, 6, 0x3a, 0x3a, 3, 4, 3, 3]);
        exts.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(&exts);
        b
    }

    #[test]
    fn client_hello_fields() {
        let hello = client_hello(&client_hello_body(), 0x0301).unwrap();
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.cipher_suites, vec![0x1301, 0xc02f]);
        assert_eq!(hello.extensions, vec![0, 43, 16]);
        assert_eq!(hello.sni.as_deref(), Some("a.b"));
        assert_eq!(hello.alpn, vec!["h2".to_string()]);
        assert_eq!(hello.supported_versions, vec![0x3a3a, 0x0304, 0x0303]);
        assert_eq!(hello.max_version(), 0x0304);
    }

    #[test]
    fn truncated_hellos_never_panic() {
        let body = client_hello_body();
        for len in 0..body.len() {
            let _ = client_hello(&body[..len], 0x0301);
            let _ = server_hello(&body[..len], 0x0301);
            let _ = sslv2_client_hello(&body[..len]);
            let _ = sslv2_server_hello(&body[..len]);
        }
    }

    #[test]
    fn hello_retry_request_is_recognised() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&HRR_RANDOM);
        body.extend_from_slice(&[0, 0x13, 0x02, 0, 0, 6, 0, 43, 0, 2, 3, 4]);
        let hello = server_hello(&body, 0x0303).unwrap();
        assert!(hello.hrr);
        assert_eq!(hello.selected_version(), 0x0304);
        assert_eq!(hello.cipher_suite, 0x1302);
    }
}
