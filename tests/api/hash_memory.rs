//! SECURITY-CASES LG-03: a burst of parallel sign-ins against the real
//! binary keeps its peak memory bounded: password hashes run a few at a
//! time, in pooled buffers.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestBrowser, test_settings};

/// `tessera serve` as a child process, killed on drop.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real binary with generous throttles (the burst must reach
/// the hashers) and returns it with its address.
fn serve(database_url: &str, dir: &std::path::Path) -> (Served, String) {
    // The target directory may be shared between checkouts: a copy of this
    // checkout's binary can be named explicitly.
    let binary = std::env::var_os("TESSERA_TEST_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tessera").into());
    let mut child = Command::new(binary)
        .arg("serve")
        .env("TESSERA__DATABASE__URL", database_url)
        .env("TESSERA__KEYS__ENCRYPTION_KEY_FILE", dir.join("kek"))
        .env("TESSERA__SERVER__LISTEN", "127.0.0.1:0")
        .env("TESSERA__THROTTLE__IP_MAX_FAILURES", "100000")
        .env("TESSERA__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("TESSERA_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tessera is listening")
                && let Some(port) = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["port"].as_u64())
            {
                let _ = port_tx.send(port);
            }
        }
    });
    let served = Served(child);
    let port = port_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tessera reported its port");
    (served, format!("http://127.0.0.1:{port}"))
}

/// The process's peak resident set size (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

// SECURITY-CASES LG-03: 100 parallel sign-ins (distinct names, so no
// account lock stops them before the hash) stay under 150 MB at peak.
// Without the bound each one ran its own 19 MiB Argon2 at once (~1.9 GB).
#[tokio::test]
async fn a_burst_of_parallel_sign_ins_keeps_peak_memory_bounded() {
    let (settings, dir, _postgres) = test_settings();
    let (served, address) = serve(&settings.database.url, dir.path());
    let browsers: Vec<TestBrowser> = (0..100).map(|_| TestBrowser::new(&address)).collect();
    let attempts = browsers.iter().enumerate().map(|(i, browser)| async move {
        let response = browser.login(&format!("ghost{i}"), "wrong password").await;
        let status = response.status().as_u16();
        if status == 503 {
            assert!(response.headers().contains_key("retry-after"));
        }
        status
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "only 'incorrect' or 'busy, retry': {statuses:?}"
    );
    assert!(statuses.contains(&401), "{statuses:?}");
    let peak = peak_rss(served.0.id());
    eprintln!("peak RSS {} MiB", peak / (1024 * 1024));
    assert!(
        peak < 150 * 1024 * 1024,
        "peak RSS {} MiB under a burst of sign-ins",
        peak / (1024 * 1024)
    );
}
