//! TLS and SSL handshake parsing: record layer, ClientHello/ServerHello summaries, the
//! server's certificate, fingerprints.

pub mod certificate;
pub mod extensions;
pub mod fingerprint;
pub mod hello;
pub mod hello_fingerprints;
pub mod parse;
pub mod stream;
