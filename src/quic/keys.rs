//! Initial keys (RFC 9001 5.2, RFC 9369 3.3): an HKDF-Extract of the client's first
//! Destination Connection ID with the version's salt, then HKDF-Expand-Label (RFC 8446 7.1)
//! to each sender's secret, and from it the AEAD key, IV and header-protection key.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::version::Version;

/// Which endpoint sent the packets the keys open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

/// The keys that open one sender's Initial packets.
#[derive(Clone)]
pub struct InitialKeys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    header_protection: Aes128,
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are public (derived from the wire), but their bytes help nobody reading a
        // debug dump.
        f.write_str("InitialKeys")
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 7.1), into `out`.
fn expand_label(secret: &Hkdf<Sha256>, label: &str, out: &mut [u8]) {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let len = (out.len() as u16).to_be_bytes();
    let info = [&len[..], &[full.len() as u8], &full, &[0u8]].concat();
    // Lengths here are at most 32 bytes, far below HKDF's 255 * 32 limit.
    secret
        .expand(&info, out)
        .expect("HKDF output length within limits");
}

/// The 32-byte Initial secret of `sender` for a connection whose client first wrote `dcid`.
pub fn initial_secret(version: &Version, dcid: &[u8], sender: Sender) -> [u8; 32] {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(version.salt), dcid);
    let mut secret = [0u8; 32];
    let label = match sender {
        Sender::Client => "client in",
        Sender::Server => "server in",
    };
    expand_label(&initial, label, &mut secret);
    secret
}

impl InitialKeys {
    pub fn new(version: &Version, dcid: &[u8], sender: Sender) -> Self {
        let secret = initial_secret(version, dcid, sender);
        let secret = Hkdf::<Sha256>::from_prk(&secret).expect("32-byte PRK");
        let (key_label, iv_label, hp_label) = if version.v2_labels {
            ("quicv2 key", "quicv2 iv", "quicv2 hp")
        } else {
            ("quic key", "quic iv", "quic hp")
        };
        let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&secret, key_label, &mut key);
        expand_label(&secret, iv_label, &mut iv);
        expand_label(&secret, hp_label, &mut hp);
        InitialKeys {
            aead: Aes128Gcm::new(&key.into()),
            iv,
            header_protection: Aes128::new(&hp.into()),
        }
    }

    /// The header-protection mask of a 16-byte ciphertext sample (RFC 9001 5.4.3).
    pub fn mask(&self, sample: &[u8; 16]) -> [u8; 16] {
        let mut block = (*sample).into();
        self.header_protection.encrypt_block(&mut block);
        block.into()
    }

    /// Decrypt `payload` (ciphertext then 16-byte tag) in place for packet number
    /// `packet_number` with the unprotected header as associated data. On success `payload`
    /// holds the plaintext.
    pub fn open(&self, packet_number: u64, header: &[u8], payload: &mut Vec<u8>) -> bool {
        let Some(split) = payload.len().checked_sub(16) else {
            return false;
        };
        let tag = Tag::clone_from_slice(&payload[split..]);
        payload.truncate(split);
        let mut nonce = self.iv;
        for (byte, pn) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
            *byte ^= pn;
        }
        self.aead
            .decrypt_in_place_detached(Nonce::from_slice(&nonce), header, payload, &tag)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::test_hex as hex;
    use crate::quic::version::{V1, V2};

    /// RFC 9001 A.1 and RFC 9369 A.1: the secrets of DCID 0x8394c8f03e515708.
    #[test]
    fn initial_secrets_match_the_rfc_test_vectors() {
        let dcid = hex("8394c8f03e515708");
        let v1 = Version::of(V1).unwrap();
        assert_eq!(
            initial_secret(&v1, &dcid, Sender::Client).to_vec(),
            hex("c00cf151ca5be075ed0ebfb5c80323c4 2d6b7db67881289af4008f1f6c357aea")
        );
        assert_eq!(
            initial_secret(&v1, &dcid, Sender::Server).to_vec(),
            hex("3c199828fd139efd216c155ad844cc81 fb82fa8d7446fa7d78be803acdda951b")
        );
        let v2 = Version::of(V2).unwrap();
        assert_eq!(
            initial_secret(&v2, &dcid, Sender::Client).to_vec(),
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e2 83766aade7ecd0891f70f9ff7f4bf47b")
        );
        assert_eq!(
            initial_secret(&v2, &dcid, Sender::Server).to_vec(),
            hex("0263db1782731bf4588e7e4d93b74639 07cb8cd8200b5da55a8bd488eafc37c1")
        );
    }

    /// RFC 9001 A.2: the client's header-protection mask for its sample.
    #[test]
    fn header_protection_mask_matches_rfc9001() {
        let dcid = hex("8394c8f03e515708");
        let keys = InitialKeys::new(&Version::of(V1).unwrap(), &dcid, Sender::Client);
        let sample: [u8; 16] = hex("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
        assert_eq!(keys.mask(&sample)[..5], hex("437b9aec36")[..]);
        let v2 = InitialKeys::new(&Version::of(V2).unwrap(), &dcid, Sender::Client);
        let sample: [u8; 16] = hex("ffe67b6abcdb4298b485dd04de806071").try_into().unwrap();
        assert_eq!(v2.mask(&sample)[..5], hex("94a0c95e80")[..]);
    }
}
