//! The report's one pass over the census gives what its separate walks give: the classified
//! clients and their service totals (`Census::clients_and_services` against
//! `Census::clients` and `Census::services`), the software hints found while classifying
//! (against `software::hints` per client), the capture's end from the clients (against
//! `Census::capture_end`'s walk) and the rows in the order their documentation gives
//! (sorted here with std's sort on the documented key). Over every capture of the corpus,
//! counted by the pipeline's workers as `tlscensus read` counts them.

mod common;

use tlscensus::census::{self, software, Census};
use tlscensus::pipeline::Reading;

fn corpus_census(threads: usize) -> Census {
    common::counted_by_workers(&common::all_captures(), threads, Reading::Map).0
}

#[test]
fn one_pass_gives_what_the_separate_walks_give() {
    for threads in [1, 2] {
        let census = corpus_census(threads);
        assert!(
            census.clients.len() > 100,
            "{} clients",
            census.clients.len()
        );

        let (clients, services) = census.clients_and_services();
        let separate = census.clients();
        assert_eq!(format!("{clients:?}"), format!("{separate:?}"));
        assert_eq!(services, census.services(&separate));

        let mut hinted = 0;
        for c in &clients {
            assert_eq!(c.software, software::hints(c.client), "{:?}", c.key);
            hinted += usize::from(!c.software.is_empty());
        }
        assert!(hinted > 0, "the corpus has clients with software hints");

        assert!(census.capture_end().is_some());
        assert_eq!(Census::capture_end_of(&clients), census.capture_end());

        let rows = census::rows(&clients);
        let mut want: Vec<(census::Category, bool, usize, &str)> = clients
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.client
                    .services
                    .iter()
                    .zip(&c.per_service)
                    .map(move |((name, _), on)| {
                        (on.found.primary(), !on.would_fail, i, name.as_str())
                    })
            })
            .collect();
        want.sort();
        let got: Vec<(census::Category, bool, usize, &str)> = rows
            .iter()
            .map(|r| (r.primary(), !r.would_fail, r.client_index, r.service))
            .collect();
        assert_eq!(got, want);
    }
}
