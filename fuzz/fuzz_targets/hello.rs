#![no_main]
//! Hello parsing (TLS and SSLv2 formats), fingerprints and the JSON record of each hello.

use libfuzzer_sys::fuzz_target;
use tlscensus::record::{ClientHelloRecord, ServerHelloRecord};
use tlscensus::tls::fingerprint::{self, Transport};
use tlscensus::tls::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let record_version = 0x0300 | u16::from(selector & 7);
    match selector >> 6 {
        0 | 2 => {
            let result = if selector >> 6 == 0 {
                parse::client_hello(body, record_version)
            } else {
                parse::sslv2_client_hello(body)
            };
            if let Ok(hello) = result {
                let _ = fingerprint::ja4_r(&hello, Transport::Quic);
                let _ = fingerprint::ja4_o(&hello, Transport::Dtls);
                let _ = fingerprint::ja4_ro(&hello, Transport::Tcp);
                let record = ClientHelloRecord::new(&hello);
                serde_json::to_string(&record).unwrap();
            }
        }
        _ => {
            let result = if selector >> 6 == 1 {
                parse::server_hello(body, record_version)
            } else {
                parse::sslv2_server_hello(body)
            };
            if let Ok(hello) = result {
                let _ = fingerprint::ja3s_string(&hello);
                let _ = fingerprint::ja4s_r(&hello, Transport::Tcp);
                let record = ServerHelloRecord::new(&hello, selector & 8 != 0);
                serde_json::to_string(&record).unwrap();
            }
        }
    }
});
