#![no_main]
//! The plaintext mail dialogues (SMTP, IMAP, POP3): a script of client and server messages,
//! fed whole and again cut into pieces, must give the same answers.

use libfuzzer_sys::fuzz_target;
use tlscensus::proto::starttls::{Dialogue, MailProtocol};
use tlscensus_fuzz::{pieces, Bytes};

#[derive(Debug, PartialEq)]
struct Summary {
    taken: [usize; 2],
    offered: Option<&'static str>,
    requested: Option<&'static str>,
    reply: Option<String>,
    confirmed: bool,
    capabilities: bool,
    done: bool,
    tls_expected: bool,
}

fn run(protocol: MailProtocol, script: &[(bool, &[u8])], sizes: &[u8]) -> Summary {
    let mut dialogue = Dialogue::new(protocol);
    let mut taken = [0; 2];
    for &(from_client, message) in script {
        for piece in pieces(message, sizes) {
            let n = if from_client {
                dialogue.client_bytes(piece)
            } else {
                dialogue.server_bytes(piece)
            };
            assert!(n <= piece.len());
            taken[usize::from(from_client)] += n;
        }
    }
    Summary {
        taken,
        offered: dialogue.offered().map(|v| v.as_str()),
        requested: dialogue.requested().map(|v| v.as_str()),
        reply: dialogue.reply().map(|r| format!("{r:?}")),
        confirmed: dialogue.protocol_confirmed(),
        capabilities: dialogue.capabilities_seen(),
        done: dialogue.done(),
        tls_expected: dialogue.tls_expected(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let control = input.u8();
    let protocol = match control % 3 {
        0 => MailProtocol::Smtp,
        1 => MailProtocol::Imap,
        _ => MailProtocol::Pop3,
    };
    let sizes = input.take(usize::from(control >> 4));
    // Messages: a length byte (high bit: from the client), then that many bytes.
    let mut script = Vec::new();
    while !input.is_empty() {
        let head = input.u8();
        let len = usize::from(head & 0x7f) * 4;
        script.push((head & 0x80 != 0, input.take(len.max(1))));
    }
    let _ = Dialogue::guess(script.first().map_or(&[][..], |m| m.1));
    let whole = run(protocol, &script, &[]);
    let split = run(protocol, &script, sizes);
    assert_eq!(whole, split, "the dialogue depends on piece sizes");
});
