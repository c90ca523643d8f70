#![no_main]
//! The TLS record and handshake stream, fed in arbitrary pieces. A stream that starts like
//! TLS must give the same events and end state whatever the piece sizes: only TCP decides
//! where pieces are cut. (A stream that starts as plaintext looks for TLS at the start of
//! each piece by design, so there only the absence of panics is checked.)

use libfuzzer_sys::fuzz_target;
use tlscensus::tls::stream::{looks_like_tls, Event, TlsStream};
use tlscensus_fuzz::{pieces, Bytes};

struct Outcome {
    events: Vec<Event>,
    end: Option<tlscensus::tls::stream::End>,
    plaintext: bool,
    started: bool,
    mid_message: bool,
}

fn run(chunks: &[&[u8]], compat_ccs: bool) -> Outcome {
    let mut stream = TlsStream::new();
    if compat_ccs {
        stream.allow_compat_ccs();
    }
    let mut events = Vec::new();
    for chunk in chunks {
        stream.feed(chunk, &mut |e| events.push(e));
    }
    Outcome {
        events,
        end: stream.end(),
        plaintext: stream.is_plaintext(),
        started: stream.started_tls(),
        mid_message: stream.mid_message(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let control = input.u8();
    let sizes = input.take(usize::from(control & 0x0f));
    let stream = input.rest();
    let compat_ccs = control & 0x10 != 0;
    let whole = run(&[stream], compat_ccs);
    let split = run(&pieces(stream, sizes), compat_ccs);
    if looks_like_tls(stream) == Some(true) {
        assert_eq!(whole.events, split.events, "events depend on piece sizes");
        assert_eq!(whole.end, split.end);
        assert_eq!(whole.plaintext, split.plaintext);
        assert_eq!(whole.started, split.started);
        assert_eq!(whole.mid_message, split.mid_message);
    }
});
