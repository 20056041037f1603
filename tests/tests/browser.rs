//! The report in a real browser: headless Chromium renders it to a screenshot without console
//! messages. `.ci/run` installs Debian's `chromium` and sets ECHOSEG_REQUIRE_BROWSER=1, so there
//! the test cannot pass by skipping; elsewhere, without Chromium, it says it skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::PathBuf;
use std::process::Command;

use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

fn chromium() -> Option<PathBuf> {
    let candidates = [std::env::var("ECHOSEG_CHROMIUM").ok(), Some("/usr/bin/chromium".into()), Some("/usr/bin/chromium-browser".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

#[test]
fn chromium_renders_the_report_without_console_messages() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("ECHOSEG_REQUIRE_BROWSER").is_none(), "ECHOSEG_REQUIRE_BROWSER is set but no Chromium was found");
        eprintln!("skipped: no Chromium (install Debian's `chromium`, or set ECHOSEG_CHROMIUM)");
        return;
    };
    let scratch = Scratch::new("browser");
    let path = scratch.write("tiny.toml", TINY_MANIFEST);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let shot = scratch.path().join("report.png");
    // The flags keep Chromium off the network and out of any profile, as a closed CI machine needs.
    let out = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--window-size=1200,3000"])
        .arg(format!("--user-data-dir={}", scratch.path().join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank 1200 × 3000 page compresses to a few kB; text, tables and figures do not.
    assert!(png.len() > 100_000, "the screenshot is suspiciously small: {} bytes", png.len());
}
