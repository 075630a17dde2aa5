//! Smoke tests of the load generator against the real ringcast binary: a tiny broadcast (50
//! subscribers over 2 worker processes, 20 publishes) must deliver every event exactly once and
//! leave `result.json` and `latency.hgrm` behind, over plain TCP and over TLS (`wss://`,
//! `https://`, a throwaway CA made with `openssl`); a tiny churn run must lose nothing by its
//! documented rule; a tiny presence storm must see every member event exactly once. Never
//! asserts speed.
//!
//! The server binary comes from `RINGCAST_BIN`, or else `debug/ringcast` / `release/ringcast`
//! under Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` of the workspace); build
//! it first with `cargo build -p ringcast`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, whichever way it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ringcast_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RINGCAST_BIN") {
        return PathBuf::from(p);
    }
    // Cargo's target directory: `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("ringcast");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "ringcast binary not found: set RINGCAST_BIN or run `cargo build -p ringcast` first \
         (looked in debug/ and release/ under {})",
        target.display()
    );
}

/// Starts ringcast on a free port; returns it and the port.
fn start_server() -> (Server, u16) {
    start_server_with(&[])
}

/// Starts ringcast on a free port with `extra` flags; returns it and the port.
fn start_server_with(extra: &[&str]) -> (Server, u16) {
    let mut child = Command::new(ringcast_bin())
        .args([
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--shards",
            "2",
        ])
        .args(["--app-id", "smoke-id", "--app-key", "smoke-key"])
        .args(["--app-secret", "smoke-secret"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringcast");
    let stderr = child.stderr.take().expect("ringcast stderr");
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let (Some(tx), Ok(port)) = (tx.take(), port.parse::<u16>()) {
                    let _ = tx.send(port);
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ringcast did not log `listening on 127.0.0.1:PORT`");
    (server, port)
}

#[test]
fn tiny_broadcast_delivers_everything_once() {
    let (server, port) = start_server();
    tiny_broadcast(
        &server,
        &format!("ws://127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{port}"),
        &[],
        "plain",
    );
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed, made with `openssl` in `dir`:
/// (ca.crt, server.crt, server.key).
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs (Debian: apt-get install openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=smoke-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    let path = |name: &str| dir.join(name).display().to_string();
    (path("ca.crt"), path("server.crt"), path("server.key"))
}

#[test]
fn tiny_broadcast_over_tls_delivers_everything_once() {
    let dir = std::env::temp_dir().join(format!(
        "ringcast-loadtest-smoke-pki-{}",
        std::process::id()
    ));
    let (ca, cert, key) = tls_files(&dir);
    let (server, port) = start_server_with(&["--tls-cert-file", &cert, "--tls-key-file", &key]);
    let result = tiny_broadcast(
        &server,
        &format!("wss://127.0.0.1:{port}"),
        &format!("https://127.0.0.1:{port}"),
        &["--ca-file", &ca],
        "tls",
    );
    assert_eq!(result["plan"]["tls"], true, "{result:#}");
    // Without the CA the generator refuses TLS URLs rather than trusting anything.
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast-loadtest"))
        .args(["--url", &format!("wss://127.0.0.1:{port}")])
        .args(["--rest", &format!("https://127.0.0.1:{port}")])
        .arg("--profile")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/broadcast.json"))
        .output()
        .expect("run ringcast-loadtest");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs --ca-file"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 50 subscribers over 2 workers, 20 publishes at `url` / `rest`: every event once, the files
/// written. Returns `result.json`.
fn tiny_broadcast(
    server: &Server,
    url: &str,
    rest: &str,
    extra: &[&str],
    label: &str,
) -> serde_json::Value {
    let out = std::env::temp_dir().join(format!(
        "ringcast-loadtest-smoke-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let profile = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/broadcast.json");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast-loadtest"))
        .args(["--url", url])
        .args(["--rest", rest])
        .args(extra)
        .args([
            "--app-id",
            "smoke-id",
            "--key",
            "smoke-key",
            "--secret",
            "smoke-secret",
        ])
        .arg("--profile")
        .arg(&profile)
        .args(["--connections", "50", "--workers", "2", "--rate", "20"])
        .args(["--duration-s", "1", "--warmup-s", "0", "--drain-s", "20"])
        .args(["--server-pid", &server.0.id().to_string()])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run ringcast-loadtest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadtest failed after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        started.elapsed()
    );
    assert!(stdout.contains("latency:"), "no summary:\n{stdout}");

    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).expect("result.json"))
            .expect("result.json is JSON");
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    assert_eq!(num(&result["subscribed"]), 50, "{result:#}");
    assert_eq!(num(&result["counters"]["connect_errors"]), 0);
    assert_eq!(num(&result["publish"]["measured_ok"]), 20, "{result:#}");
    assert_eq!(num(&result["publish"]["errors"]), 0);
    assert_eq!(num(&result["expected"]), 20 * 50);
    assert_eq!(num(&result["counters"]["delivered"]), 20 * 50, "{stdout}");
    assert_eq!(num(&result["lost"]), 0);
    assert_eq!(num(&result["counters"]["duplicates"]), 0);
    assert_eq!(num(&result["counters"]["reordered"]), 0);
    assert_eq!(num(&result["latency"]["count"]), 20 * 50);

    let hgrm = std::fs::read_to_string(out.join("latency.hgrm")).expect("latency.hgrm");
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(hgrm.contains("Total count    =         1000"), "{hgrm}");
    let _ = std::fs::remove_dir_all(&out);
    result
}

/// Runs the load generator with `profile` and `extra` flags against the server on `port`;
/// asserts it succeeded and returns its stdout and `result.json`.
fn run_profile(port: u16, profile: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let out = std::env::temp_dir().join(format!(
        "ringcast-loadtest-smoke-{profile}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let profile_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{profile}.json"));
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast-loadtest"))
        .args(["--url", &format!("ws://127.0.0.1:{port}")])
        .args(["--rest", &format!("http://127.0.0.1:{port}")])
        .args(["--app-id", "smoke-id", "--key", "smoke-key"])
        .args(["--secret", "smoke-secret"])
        .arg("--profile")
        .arg(&profile_path)
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run ringcast-loadtest");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadtest failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).expect("result.json"))
            .expect("result.json is JSON");
    assert!(out.join("latency.hgrm").is_file());
    let _ = std::fs::remove_dir_all(&out);
    (stdout, result)
}

#[test]
fn tiny_churn_loses_nothing_by_the_rule() {
    let (_server, port) = start_server();
    let (stdout, r) = run_profile(
        port,
        "churn",
        &[
            "--connections",
            "30",
            "--churn-per-s",
            "40",
            "--rate",
            "20",
            "--duration-s",
            "1",
            "--warmup-s",
            "0.5",
            "--drain-s",
            "1",
        ],
    );
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    assert_eq!(num(&r["initial_subscribed"]), 30, "{stdout}");
    assert_eq!(num(&r["connect_errors"]), 0, "{stdout}");
    assert_eq!(num(&r["disconnects"]), 0, "{stdout}");
    assert_eq!(num(&r["closed_before_subscribed"]), 0, "{stdout}");
    assert!(num(&r["churn_connects"]) > 0, "{stdout}");
    assert_eq!(num(&r["handshake"]["count"]), num(&r["churn_connects"]));
    assert_eq!(num(&r["published_ok"]), 20, "{stdout}");
    assert_eq!(num(&r["publish_errors"]), 0);
    assert!(num(&r["accounting"]["expected"]) > 0, "{stdout}");
    assert_eq!(num(&r["accounting"]["lost"]), 0, "{stdout}");
    assert_eq!(num(&r["duplicates"]), 0, "{stdout}");
}

#[test]
fn tiny_presence_storm_sees_each_member_event_once() {
    let (_server, port) = start_server();
    let (stdout, r) = run_profile(
        port,
        "presence",
        &[
            "--connections",
            "24",
            "--churn-per-s",
            "48",
            "--duration-s",
            "1",
            "--warmup-s",
            "0.5",
            "--drain-s",
            "10",
        ],
    );
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    // 24 connections = 12 users × 2 tabs, plus the observers of every channel.
    assert_eq!(num(&r["users"]), 12, "{stdout}");
    assert_eq!(num(&r["subscribed"]), 24 + num(&r["observers"]), "{stdout}");
    assert_eq!(num(&r["connect_errors"]), 0, "{stdout}");
    assert_eq!(num(&r["disconnects"]), 0, "{stdout}");
    assert_eq!(num(&r["rejoin_errors"]), 0, "{stdout}");
    assert_eq!(num(&r["succeeded_bad"]), 0, "{stdout}");
    let m = &r["members"];
    assert!(num(&m["added_expected"]) > 24, "{stdout}");
    assert!(num(&m["removed_expected"]) > 0, "{stdout}");
    assert_eq!(num(&m["extra"]), 0, "{stdout}");
    assert_eq!(num(&m["missing"]), 0, "{stdout}");
}
