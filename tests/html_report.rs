//! The HTML report opened in headless Chromium: it must render its charts and its client
//! table, log nothing to the console (no script errors, no Content Security Policy
//! violations) and make no network request. The screenshot is kept in
//! `target/html_report/census.png` for a human to look at.
//!
//! Chromium is Debian's `chromium` (`.ci/run` installs it); set `CHROMIUM` to use another
//! binary. Without one the test is skipped with a message, except under CI (`CI` set),
//! where a missing browser is a failure.

mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

use browser::{chromium, console_lines, page_requests, run_chromium};

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn html_report_renders_in_chromium_without_errors_or_network() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium not found and CI is set: .ci/run installs Debian's chromium");
        }
        eprintln!(
            "SKIPPED html_report: no chromium found (apt-get install chromium, or set CHROMIUM)"
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = root.join("target/html_report");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    // The census of every capture in pcaps/: several services, every category.
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    let page = work.join("census.html");
    let csv = work.join("census.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .args(&files)
        .arg("--report")
        .arg(&page)
        .arg("--report")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: no reference to anything outside the file.
    // (A service label such as "https: other 17" in a chart title is text, not a reference.)
    for needle in [
        "src=", "href=", "url(", "@import", "https://", "ftp://", "//cdn",
    ] {
        assert!(!html.contains(needle), "the page references {needle}");
    }
    let namespaces = html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(
        html.matches("http://").count(),
        namespaces,
        "only SVG namespaces use http:"
    );

    let url = format!("file://{}", page.display());

    // 1. As delivered (with its Content Security Policy): screenshot and console.
    let shot = work.join("census.png");
    let netlog = work.join("netlog-shot.json");
    // Headless Chromium occasionally exits without writing the screenshot on a loaded
    // machine; a second or third start settles it (each with a fresh profile).
    let mut out = None;
    for attempt in 0..3 {
        let run = run_chromium(
            &browser,
            &work,
            &format!("shot{attempt}"),
            &[
                "--window-size=1400,2400".into(),
                format!("--screenshot={}", shot.display()),
                format!("--log-net-log={}", netlog.display()),
                url.clone(),
            ],
        );
        let written = shot.is_file();
        out = Some(run);
        if written {
            break;
        }
    }
    let out = out.expect("chromium ran");
    let console = console_lines(&out.stderr);
    assert!(
        console.is_empty(),
        "console output:\n{}",
        console.join("\n")
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "chromium wrote no screenshot ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(png_size(&png), (1400, 2400));
    // A blank page compresses to a few kilobytes; charts and a table do not.
    assert!(png.len() > 40_000, "screenshot is only {} bytes", png.len());
    assert_eq!(page_requests(&netlog), Vec::<String>::new());

    // 2. With the policy stripped, so that any reference would really be fetched: the DOM
    //    after the page's script ran, and the network log.
    let bare = work.join("census-no-csp.html");
    let start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let end = start + html[start..].find('>').unwrap() + 1;
    std::fs::write(&bare, format!("{}{}", &html[..start], &html[end..])).unwrap();
    let netlog = work.join("netlog-dom.json");
    let out = run_chromium(
        &browser,
        &work,
        "dom",
        &[
            "--window-size=1400,2400".into(),
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
            format!("file://{}", bare.display()),
        ],
    );
    let console = console_lines(&out.stderr);
    assert!(
        console.is_empty(),
        "console output:\n{}",
        console.join("\n")
    );
    assert_eq!(page_requests(&netlog), Vec::<String>::new());
    let dom = String::from_utf8(out.stdout).unwrap();
    // The page's script marks the body once it has measured the charts and the table.
    assert!(
        dom.contains("data-ready=\"yes\""),
        "charts or table not laid out"
    );
    assert!(dom.contains("data-charts=\"2\""), "expected two charts");
    assert!(
        dom.contains(&format!("data-rows=\"{rows}\"")),
        "expected {rows} table rows"
    );
    assert!(dom.contains("id=\"chart-services\"") && dom.contains("id=\"chart-timeline\""));
    assert!(
        dom.matches("<rect").count() >= rows,
        "charts have too few bars"
    );
    // At-risk first: the first client row is legacy-only.
    let body = &dom[dom.find("<table id=\"clients\"").unwrap()..];
    let first_row = &body[body.find("<tbody>").unwrap()..];
    assert!(
        first_row[..first_row.find("</tr>").unwrap()].contains("legacy-only"),
        "first row is not at risk"
    );
}
