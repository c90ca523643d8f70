//! The fingerprints a record carries for its hellos (JA3 string, JA3 and JA4 of the
//! ClientHello; JA3S and JA4S of the ServerHello), computed once per distinct hello per
//! thread.
//!
//! A busy server sees the same few client programs thousands of times: their hellos differ in
//! random, session id and key shares, never in the fields the fingerprints read. So the memo
//! is keyed by exactly those fields, written into one byte string; a repeated hello costs
//! that key and one lookup instead of the decimal and hex lists, sorting and digests of
//! [`super::fingerprint`], which computes every miss.

use std::cell::RefCell;
use std::collections::HashMap;

use super::fingerprint::{self, Transport};
use super::hello::{ClientHello, ServerHello};

/// Most distinct hellos remembered per thread and side; a memo is emptied when it is full.
const MEMO_CAP: usize = 1024;

/// What a `client_hello` record carries besides the hello's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFingerprints {
    pub ja3_full: String,
    pub ja3: String,
    pub ja4: String,
}

/// What a `server_hello` record carries besides the hello's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFingerprints {
    pub ja3s: String,
    pub ja4s: String,
}

type Memo<V> = HashMap<Box<[u8]>, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Memos {
    /// The key being built, reused from one hello to the next.
    key: Vec<u8>,
    client: Memo<ClientFingerprints>,
    server: Memo<ServerFingerprints>,
}

thread_local! {
    static MEMOS: RefCell<Memos> = RefCell::default();
}

/// JA3 string, JA3 and JA4 of a ClientHello carried by `transport`.
pub fn client(ch: &ClientHello, transport: Transport) -> ClientFingerprints {
    MEMOS.with_borrow_mut(|memos| {
        let Memos { key, client, .. } = memos;
        client_key(key, ch, transport);
        lookup(client, key, || {
            let ja3_full = fingerprint::ja3_string(ch);
            ClientFingerprints {
                ja3: fingerprint::ja3_of_string(&ja3_full),
                ja3_full,
                ja4: fingerprint::ja4(ch, transport),
            }
        })
    })
}

/// JA3S and JA4S of a ServerHello carried by `transport`.
pub fn server(sh: &ServerHello, transport: Transport) -> ServerFingerprints {
    MEMOS.with_borrow_mut(|memos| {
        let Memos { key, server, .. } = memos;
        server_key(key, sh, transport);
        lookup(server, key, || ServerFingerprints {
            ja3s: fingerprint::ja3s(sh),
            ja4s: fingerprint::ja4s(sh, transport),
        })
    })
}

/// The value memoised under `key`, or `compute`'s, remembered.
fn lookup<V: Clone>(memo: &mut Memo<V>, key: &[u8], compute: impl FnOnce() -> V) -> V {
    if let Some(hit) = memo.get(key) {
        return hit.clone();
    }
    if memo.len() >= MEMO_CAP {
        memo.clear();
    }
    let value = compute();
    memo.insert(key.into(), value.clone());
    value
}

/// Every ClientHello field that JA3 or JA4 reads, each list preceded by its length so that
/// no two different hellos write the same key.
fn client_key(key: &mut Vec<u8>, ch: &ClientHello, transport: Transport) {
    key.clear();
    key.push(transport_code(transport));
    key.extend_from_slice(&ch.legacy_version.to_le_bytes());
    key.push(u8::from(ch.sslv2_format));
    push_list(key, &ch.sslv2_cipher_specs, |k, v| {
        k.extend_from_slice(&v.to_le_bytes())
    });
    for list in [
        &ch.cipher_suites,
        &ch.extensions,
        &ch.supported_groups,
        &ch.signature_algorithms,
        &ch.supported_versions,
    ] {
        push_u16_list(key, list);
    }
    key.extend_from_slice(&(ch.ec_point_formats.len() as u32).to_le_bytes());
    key.extend_from_slice(&ch.ec_point_formats);
    key.push(u8::from(ch.sni.is_some()));
    // JA4 reads the first ALPN value's bytes: the raw ones when the text is lossy.
    let alpn = ch
        .alpn_first_raw
        .as_deref()
        .or(ch.alpn.first().map(|s| s.as_bytes()));
    push_optional_bytes(key, alpn);
}

/// Every ServerHello field that JA3S or JA4S reads.
fn server_key(key: &mut Vec<u8>, sh: &ServerHello, transport: Transport) {
    key.clear();
    key.push(transport_code(transport));
    key.extend_from_slice(&sh.legacy_version.to_le_bytes());
    key.extend_from_slice(&sh.selected_version().to_le_bytes());
    key.extend_from_slice(&sh.cipher_suite.to_le_bytes());
    push_u16_list(key, &sh.extensions);
    let alpn = sh
        .alpn_raw
        .as_deref()
        .or(sh.alpn.as_deref().map(str::as_bytes));
    push_optional_bytes(key, alpn);
}

fn transport_code(transport: Transport) -> u8 {
    match transport {
        Transport::Tcp => 0,
        Transport::Quic => 1,
        Transport::Dtls => 2,
    }
}

fn push_list<T>(key: &mut Vec<u8>, list: &[T], mut push: impl FnMut(&mut Vec<u8>, &T)) {
    key.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for value in list {
        push(key, value);
    }
}

/// [`push_list`] of 16-bit values, written into room made once: a hello's lists hold a
/// hundred values or more, and growing the key value by value was most of a hit's cost.
fn push_u16_list(key: &mut Vec<u8>, list: &[u16]) {
    key.extend_from_slice(&(list.len() as u32).to_le_bytes());
    let start = key.len();
    key.resize(start + 2 * list.len(), 0);
    for (room, value) in key[start..].chunks_exact_mut(2).zip(list) {
        room.copy_from_slice(&value.to_le_bytes());
    }
}

fn push_optional_bytes(key: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => key.push(0),
        Some(bytes) => {
            key.push(1);
            key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            key.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hellos that differ, each in one field a fingerprint reads.
    fn client_variants() -> Vec<ClientHello> {
        let base = ClientHello {
            legacy_version: 0x0303,
            supported_versions: vec![0x0304, 0x0303],
            cipher_suites: vec![0x1301, 0xc02f, 0x002f],
            extensions: vec![0x0000, 0x0010, 0x000a, 0x000b, 0x000d, 0x002b],
            sni: Some("example.org".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            supported_groups: vec![0x001d, 0x0017],
            ec_point_formats: vec![0],
            signature_algorithms: vec![0x0403, 0x0804],
            ..Default::default()
        };
        let mut out = vec![base.clone()];
        let mut vary = |change: &dyn Fn(&mut ClientHello)| {
            let mut hello = base.clone();
            change(&mut hello);
            out.push(hello);
        };
        vary(&|h| h.legacy_version = 0x0301);
        vary(&|h| h.supported_versions = vec![0x0303]);
        vary(&|h| h.cipher_suites.reverse());
        vary(&|h| h.cipher_suites.push(0x0035));
        vary(&|h| h.extensions.swap(2, 3));
        vary(&|h| {
            h.extensions.remove(0);
            h.sni = None;
        });
        vary(&|h| h.sni = None);
        vary(&|h| h.alpn = vec!["http/1.1".into()]);
        vary(&|h| h.alpn_first_raw = Some(vec![0x68, 0xff]));
        vary(&|h| h.supported_groups.push(0x0018));
        vary(&|h| h.ec_point_formats = vec![0, 1]);
        vary(&|h| h.signature_algorithms.reverse());
        vary(&|h| {
            h.sslv2_format = true;
            h.sslv2_cipher_specs = vec![0x0700c0, 0x00002f];
        });
        // Lists that a key without lengths would confuse: [a][b, c] and [a, b][c].
        vary(&|h| {
            h.cipher_suites = vec![0x1301, 0xc02f];
            h.extensions.insert(0, 0x002f);
        });
        out
    }

    #[test]
    fn client_fingerprints_are_those_of_the_hello_whether_remembered_or_not() {
        for transport in [Transport::Tcp, Transport::Quic] {
            // Twice over: the second round is answered from the memo.
            for _ in 0..2 {
                for hello in client_variants() {
                    let ja3_full = fingerprint::ja3_string(&hello);
                    assert_eq!(
                        client(&hello, transport),
                        ClientFingerprints {
                            ja3: fingerprint::ja3(&hello),
                            ja3_full,
                            ja4: fingerprint::ja4(&hello, transport),
                        },
                        "{hello:?} over {transport:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn server_fingerprints_are_those_of_the_hello_whether_remembered_or_not() {
        let base = ServerHello {
            legacy_version: 0x0303,
            supported_version: Some(0x0304),
            cipher_suite: 0x1301,
            extensions: vec![0x002b, 0x0033],
            ..Default::default()
        };
        let mut hellos = vec![base.clone()];
        for change in [
            &(|h: &mut ServerHello| h.supported_version = None) as &dyn Fn(&mut ServerHello),
            &|h| h.legacy_version = 0x0301,
            &|h| h.cipher_suite = 0x1302,
            &|h| h.extensions.reverse(),
            &|h| h.alpn = Some("h2".into()),
            &|h| {
                h.alpn = Some("h\u{fffd}".into());
                h.alpn_raw = Some(vec![0x68, 0xff]);
            },
        ] {
            let mut hello = base.clone();
            change(&mut hello);
            hellos.push(hello);
        }
        for transport in [Transport::Tcp, Transport::Quic] {
            for _ in 0..2 {
                for hello in &hellos {
                    assert_eq!(
                        server(hello, transport),
                        ServerFingerprints {
                            ja3s: fingerprint::ja3s(hello),
                            ja4s: fingerprint::ja4s(hello, transport),
                        },
                        "{hello:?} over {transport:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_memo_stays_bounded() {
        let mut hello = client_variants().remove(0);
        for n in 0..(MEMO_CAP as u16 + 10) {
            hello.cipher_suites = vec![n];
            let _ = client(&hello, Transport::Tcp);
        }
        MEMOS.with_borrow(|memos| assert!(memos.client.len() <= MEMO_CAP));
    }
}
