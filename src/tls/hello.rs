//! Owned summaries of the hellos: what travels from the parser to fingerprints and records.
//!
//! Values are kept as the wire said them (GREASE included, wire order); whoever builds a
//! fingerprint or a report filters. Version numbers are the 16-bit protocol codes
//! (0x0002 SSLv2, 0x0300 SSLv3, 0x0301 TLS 1.0 ... 0x0304 TLS 1.3).

/// SSL 2.0 protocol code, as carried in an SSLv2-format CLIENT-HELLO / SERVER-HELLO.
pub const SSL2: u16 = 0x0002;

/// RFC 8701: GREASE values are 0x?A?A with both bytes equal.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// A ClientHello, TLS or SSLv2 format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// Version in the record header that carried the hello (0x0002 for SSLv2-format records).
    pub record_version: u16,
    /// The hello's own (legacy) `client_version`.
    pub legacy_version: u16,
    /// True when the hello came in the SSLv2 record format (RFC 6101 appendix E.1).
    pub sslv2_format: bool,
    /// `supported_versions` extension contents (RFC 8446 4.2.1), wire order, GREASE kept.
    pub supported_versions: Vec<u16>,
    /// Cipher suites, wire order, GREASE kept. SSLv2 3-byte cipher specs whose first byte is 0
    /// are carried as the TLS suite they name; the others are kept in `sslv2_cipher_specs`.
    pub cipher_suites: Vec<u16>,
    /// SSLv2 3-byte cipher specs as they appeared (empty for TLS-format hellos).
    pub sslv2_cipher_specs: Vec<u32>,
    /// Extension types in wire order, GREASE kept.
    pub extensions: Vec<u16>,
    /// server_name (host_name entry), if present.
    pub sni: Option<String>,
    /// ALPN protocol names in wire order (lossy UTF-8).
    pub alpn: Vec<String>,
    /// The first ALPN protocol name as raw bytes. JA4 renders non-alphanumeric bytes in hex,
    /// which the lossy `alpn` strings cannot give back; when `None`, fingerprints use
    /// `alpn[0]`'s UTF-8 bytes.
    pub alpn_first_raw: Option<Vec<u8>>,
    /// supported_groups, wire order, GREASE kept.
    pub supported_groups: Vec<u16>,
    /// ec_point_formats, wire order.
    pub ec_point_formats: Vec<u8>,
    /// signature_algorithms, wire order, GREASE kept.
    pub signature_algorithms: Vec<u16>,
    /// Groups of the key_share entries, wire order, GREASE kept.
    pub key_share_groups: Vec<u16>,
}

impl ClientHello {
    /// The highest version offered: the largest non-GREASE `supported_versions` entry when the
    /// extension is present, else the legacy version.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// A ServerHello (or HelloRetryRequest), TLS or SSLv2 format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub record_version: u16,
    /// The hello's own (legacy) `server_version`.
    pub legacy_version: u16,
    /// `supported_versions` extension value (RFC 8446 4.2.1), if present.
    pub supported_version: Option<u16>,
    pub cipher_suite: u16,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// The ALPN protocol the server selected.
    pub alpn: Option<String>,
    /// The selected ALPN protocol as raw bytes (see `ClientHello::alpn_first_raw`); when
    /// `None`, fingerprints use `alpn`'s UTF-8 bytes.
    pub alpn_raw: Option<Vec<u8>>,
    /// HelloRetryRequest, recognised by the RFC 8446 4.1.3 special random.
    pub hrr: bool,
    /// An SSLv2 SERVER-HELLO.
    pub sslv2_format: bool,
    /// For an SSLv2 SERVER-HELLO, the first (preferred) 3-byte cipher spec it lists.
    pub sslv2_cipher_spec: Option<u32>,
}

impl ServerHello {
    /// The version the server selected: `supported_versions` when present, else legacy.
    pub fn selected_version(&self) -> u16 {
        self.supported_version.unwrap_or(self.legacy_version)
    }
}
