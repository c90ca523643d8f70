//! Protocols seen in front of, around, or carrying a TLS handshake.
//!
//! * [`proxy`]: the HAProxy PROXY protocol header (v1 text, v2 binary) a load balancer puts
//!   before the client's first byte, naming the original client;
//! * [`starttls`]: the plaintext start of SMTP, IMAP and POP3 sessions, to tell whether the
//!   server offered STARTTLS (or STLS, or Exchange's X-ANONYMOUSTLS), whether the client asked
//!   for it, and what the server answered;
//! * [`openvpn`]: OpenVPN's TCP control channel, which carries a TLS byte stream.
//!
//! All are pure parsers over borrowed bytes: no I/O, no `unsafe`, no panics on any input.

pub mod imap_id;
pub mod openvpn;
pub mod proxy;
pub mod starttls;
