//! TLS and SSL handshake parsing: record layer, ClientHello/ServerHello summaries, fingerprints.

pub mod fingerprint;
pub mod hello;
pub mod parse;
pub mod stream;
