//! Headless Chromium for the HTML report's tests: find the browser, run it with a fresh
//! profile, and read what the page logged and fetched.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Debian's `chromium` (or `CHROMIUM`, or another Chrome on the PATH).
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Chromium headless with the profile `profile`, none of its background traffic, and its
/// log (with the page's console) on standard error.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-sync",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    cmd
}

/// Run Chromium headless with a fresh profile; kill it after two minutes.
pub fn run_chromium(browser: &Path, work: &Path, tag: &str, args: &[String]) -> Output {
    let profile = work.join(format!("profile-{tag}"));
    let mut cmd = headless(browser, &profile);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let id = child.id();
    let start = Instant::now();
    let handle = std::thread::spawn(move || child.wait_with_output());
    while !handle.is_finished() {
        if start.elapsed() > Duration::from_secs(120) {
            // Our own child, by its id.
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    handle.join().unwrap().expect("chromium output")
}

/// Open `url` in headless Chromium, whose profile saves downloads to a fresh directory
/// without asking, and wait (two minutes at most) for the page to download `name`: its
/// bytes, and Chromium's standard error. The browser is stopped then, by its id.
pub fn download(
    browser: &Path,
    work: &Path,
    tag: &str,
    url: &str,
    name: &str,
) -> (Vec<u8>, Vec<u8>) {
    let profile = work.join(format!("profile-{tag}"));
    let downloads = work.join(format!("downloads-{tag}"));
    for dir in [&profile, &downloads] {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(profile.join("Default")).unwrap();
    std::fs::create_dir_all(&downloads).unwrap();
    let prefs = serde_json::json!({
        "download": {"default_directory": downloads, "prompt_for_download": false}
    });
    std::fs::write(profile.join("Default/Preferences"), prefs.to_string()).unwrap();
    let stderr_path = work.join(format!("stderr-{tag}.txt"));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = headless(browser, &profile)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start chromium");
    let target = downloads.join(name);
    let start = Instant::now();
    let done = |dir: &Path| {
        // Chromium writes `NAME.crdownload` (or a temporary name) and renames it when done.
        target.is_file()
            && std::fs::read_dir(dir).unwrap().all(|e| {
                !e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".crdownload")
            })
    };
    while !done(&downloads) && start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Our own child, by its id: asked to stop, then made to.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let stop = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if stop.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read(&stderr_path).unwrap();
    let bytes = std::fs::read(&target).unwrap_or_else(|e| {
        panic!(
            "chromium downloaded no {name} in {:?} ({e}):\n{}",
            start.elapsed(),
            String::from_utf8_lossy(&log)
        )
    });
    (bytes, log)
}

/// Console lines Chromium logged for the page (`INFO:CONSOLE...`).
pub fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// URLs the page asked for, from a Chromium net log: request jobs started on behalf of a
/// document (the browser's own background requests have no origin, "not an origin").
pub fn page_requests(netlog: &Path) -> Vec<String> {
    let log: Value = serde_json::from_str(&std::fs::read_to_string(netlog).unwrap())
        .expect("chromium net log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == start_job)
        .filter(|e| e["params"]["initiator"] != "not an origin")
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|url| !url.starts_with("file:") && !url.starts_with("data:"))
        .map(str::to_string)
        .collect()
}
