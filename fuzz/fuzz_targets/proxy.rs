#![no_main]
//! PROXY protocol header parsing. Beyond no panics: a header's length lies within the input,
//! the header alone parses the same, and no prefix of a header is ever called `NotProxy`
//! (the promise that lets a header split over segments be found).

use libfuzzer_sys::fuzz_target;
use tlscensus::proto::proxy::{self, Parse};

fuzz_target!(|data: &[u8]| {
    let result = proxy::parse(data);
    if let Parse::Header { len, proxied } = result {
        assert!(len > 0 && len <= data.len());
        assert_eq!(
            proxy::parse(&data[..len]),
            Parse::Header { len, proxied },
            "the header alone parses differently"
        );
        for cut in 1..len {
            let prefix = proxy::parse(&data[..cut]);
            assert!(
                matches!(prefix, Parse::NeedMore | Parse::Malformed(_)),
                "prefix of {cut} bytes of a {len}-byte header: {prefix:?}"
            );
        }
        let _ = proxy::tlvs(&data[..len]).count();
    }
});
