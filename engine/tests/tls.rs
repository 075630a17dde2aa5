//! TLS on the client port (`--tls-cert-file`, `--tls-key-file`) against the real binary, with a
//! throwaway CA made by `openssl` and a rustls client: wss subscriptions and https publishes,
//! signed REST calls, TLS 1.2 and 1.3 with ALPN http/1.1, what is dropped and counted (plain
//! HTTP, a client refusing the certificate, handshakes that never finish), SIGHUP reloading the
//! certificate (and keeping the old one when the new file is broken), and the start errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};

/// A client connection over TLS.
type Tls = StreamOwned<ClientConnection, TcpStream>;

/// The CA's directory, its certificate and the paths the server is started with (copies, so
/// a test can replace them and send SIGHUP).
struct Pki {
    dir: PathBuf,
    ca: String,
    cert: String,
    key: String,
}

impl Pki {
    fn new(test: &str) -> Pki {
        let (dir, ca) = tls_material(test);
        let cert = dir.join("live.crt");
        let key = dir.join("live.key");
        std::fs::copy(dir.join("server.crt"), &cert).unwrap();
        std::fs::copy(dir.join("server.key"), &key).unwrap();
        Pki {
            ca,
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            dir,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The server's arguments for TLS with the live files.
    fn args(&self) -> Vec<&str> {
        vec!["--tls-cert-file", &self.cert, "--tls-key-file", &self.key]
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first certificate of a PEM file, as DER.
fn first_cert(path: &str) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

/// A rustls client trusting `ca` (or nothing, `None`), offering ALPN http/1.1 and the given
/// protocol versions.
fn client_config(
    ca: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        roots.add(first_cert(ca)).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A client of both versions trusting the test CA.
fn trusting(pki: &Pki) -> Arc<ClientConfig> {
    client_config(Some(&pki.ca), rustls::DEFAULT_VERSIONS)
}

/// Connects and finishes the TLS handshake with 127.0.0.1 as the server name; `Err` with the
/// handshake's error.
fn try_tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<Tls, String> {
    let tcp = tcp_connect(addr);
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(tls)
}

fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Tls {
    try_tls_connect(addr, config).unwrap_or_else(|e| panic!("{e}"))
}

/// One request over a new TLS connection; its response.
fn https(addr: SocketAddr, config: &Arc<ClientConfig>, request: &str) -> HttpResponse {
    let mut tls = tls_connect(addr, config);
    tls.write_all(request.as_bytes()).unwrap();
    let mut rest = Vec::new();
    read_http_response(&mut tls, &mut rest).unwrap_or_else(|e| panic!("{request}: {e}"))
}

/// A Pusher connection over TLS, `connection_established` read.
fn wss_pusher(addr: SocketAddr, config: &Arc<ClientConfig>) -> WsClient<Tls> {
    let tls = tls_connect(addr, config);
    WsClient::upgrade_over(tls, &pusher_path(APP_KEY, Some("7")))
        .unwrap_or_else(|e| panic!("upgrade over TLS: {e}"))
        .established()
}

/// A port nothing listens on now (for `--metrics-port`, which may not be 0 next to `--port 0`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TLS server with `--metrics-port` (plain); returns it and the metrics address.
fn start_tls_server(pki: &Pki, extra: &[&str]) -> (Server, SocketAddr) {
    let metrics_port = free_port().to_string();
    let mut args = pki.args();
    args.extend(["--metrics-port", &metrics_port]);
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port.parse::<u16>().unwrap()));
    (server, metrics)
}

/// The sum over shards of a counter, read over the plain metrics port.
fn counter(metrics: SocketAddr, name: &str) -> u64 {
    let body = http_get(metrics, "/metrics").body_text();
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until `counter` reaches `want` (a shard counts when it drops the socket).
fn wait_counter(metrics: SocketAddr, name: &str, want: u64) {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let now = counter(metrics, name);
        if now == want {
            return;
        }
        assert!(
            now < want && Instant::now() < deadline,
            "{name} is {now}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A signed REST request (`body` empty for a GET) with `Connection: close`.
fn signed(method: &str, path: &str, params: &[(&str, &str)], body: &str, secret: &str) -> String {
    signed_request(method, path, params, body, secret, false)
}

/// A signed REST request; `keep_alive` false: `Connection: close`.
fn signed_request(
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &str,
    secret: &str,
    keep_alive: bool,
) -> String {
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let query = ringcast_core::pusher::rest::sign_query(
        method,
        path,
        params,
        body.as_bytes(),
        APP_KEY,
        secret,
        now_s,
    );
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "{method} {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    )
}

const HANDSHAKE_FAILURES: &str = "ringcast_tls_handshake_failures_total";

#[test]
fn a_wss_subscriber_gets_an_event_published_over_https() {
    let pki = Pki::new("wss");
    let (server, _metrics) = start_tls_server(&pki, &[]);
    let config = trusting(&pki);
    let mut subscriber = wss_pusher(server.addr, &config);
    subscriber.subscribe_ok("news", None);
    let published = https(
        server.addr,
        &config,
        &publish_request("news", "breaking", None, false),
    );
    assert_eq!(published.status, 200, "{}", published.body_text());
    assert_eq!(published.body_text(), "{}");
    let event = subscriber.expect_event("breaking");
    assert_eq!(event["channel"], "news", "{event}");
    assert_eq!(event["data"], "breaking", "{event}");
    // Client messages over TLS too: a ping is answered with the pong and nothing before it.
    subscriber.ping_pong();
    subscriber.close_cleanly();
}

#[test]
fn signed_rest_calls_work_over_tls_and_wrong_signatures_are_refused() {
    let pki = Pki::new("rest");
    let (server, _metrics) = start_tls_server(&pki, &[]);
    let config = trusting(&pki);
    let mut subscriber = wss_pusher(server.addr, &config);
    subscriber.subscribe_ok("orders", None);

    let path = format!("/apps/{APP_ID}/channels");
    let listed = https(
        server.addr,
        &config,
        &signed("GET", &path, &[("filter_by_prefix", "ord")], "", APP_SECRET),
    );
    assert_eq!(listed.status, 200, "{}", listed.body_text());
    let body: Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(body, json!({"channels": {"orders": {}}}));

    let path = format!("/apps/{APP_ID}/channels/orders");
    let info = https(
        server.addr,
        &config,
        &signed(
            "GET",
            &path,
            &[("info", "subscription_count")],
            "",
            APP_SECRET,
        ),
    );
    assert_eq!(info.status, 200, "{}", info.body_text());
    let body: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(body["subscription_count"], 1, "{body}");

    let path = format!("/apps/{APP_ID}/events");
    let forged = https(
        server.addr,
        &config,
        &signed(
            "POST",
            &path,
            &[],
            r#"{"name":"x","channel":"orders","data":"forged"}"#,
            "not-the-secret",
        ),
    );
    assert_eq!(forged.status, 401, "{}", forged.body_text());
    subscriber.ping_pong(); // nothing was delivered before the pong
}

#[test]
fn tls_1_2_and_1_3_are_both_served_with_alpn_http_1_1() {
    let pki = Pki::new("versions");
    let (server, _metrics) = start_tls_server(&pki, &[]);
    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(Some(&pki.ca), &[version]);
        let mut tls = tls_connect(server.addr, &config);
        assert_eq!(tls.conn.protocol_version(), Some(want));
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let response = read_http_response(&mut tls, &mut rest).unwrap();
        assert_eq!(response.status, 200, "{want:?}");
    }
}

#[test]
fn a_client_offering_only_h2_is_refused_and_one_offering_no_alpn_is_served() {
    let pki = Pki::new("alpn");
    let (server, metrics) = start_tls_server(&pki, &[]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = |alpn: Vec<Vec<u8>>| {
        let mut roots = RootCertStore::empty();
        roots.add(first_cert(&pki.ca)).unwrap();
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        Arc::new(config)
    };
    let err = match try_tls_connect(server.addr, &config(vec![b"h2".to_vec()])) {
        Ok(_) => panic!("a client offering only h2 finished a handshake"),
        Err(err) => err,
    };
    assert!(err.contains("NoApplicationProtocol"), "{err}");
    wait_counter(metrics, HANDSHAKE_FAILURES, 1);
    // No ALPN at all (Node.js, many WebSocket clients): served, nothing negotiated.
    let mut tls = tls_connect(server.addr, &config(Vec::new()));
    assert_eq!(tls.conn.alpn_protocol(), None);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(read_http_response(&mut tls, &mut rest).unwrap().status, 200);
}

#[test]
fn plain_http_to_the_tls_port_is_dropped_and_counted_and_the_metrics_port_stays_plain() {
    let pki = Pki::new("plain");
    let (mut server, metrics) = start_tls_server(&pki, &[]);
    assert_eq!(counter(metrics, HANDSHAKE_FAILURES), 0);

    let mut plain = tcp_connect(server.addr);
    plain
        .write_all(b"GET /apps/test-app/channels HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    loop {
        let mut chunk = [0u8; 1024];
        match plain.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the plain client was not dropped: {e}; got {:?}",
                lossy(&got)
            ),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "dropped only after {:?}",
        started.elapsed()
    );
    assert!(
        !got.starts_with(b"HTTP/"),
        "a plain HTTP answer on the TLS port: {:?}",
        lossy(&got)
    );
    wait_counter(metrics, HANDSHAKE_FAILURES, 1);

    // The node is fine: TLS clients are served, the metrics port answers plain HTTP.
    let config = trusting(&pki);
    let mut subscriber = wss_pusher(server.addr, &config);
    subscriber.ping_pong();
    assert!(server.is_running());
    assert_eq!(http_get(metrics, "/metrics").status, 200);
    assert_eq!(counter(metrics, HANDSHAKE_FAILURES), 1);
}

#[test]
fn a_client_that_refuses_the_certificate_is_dropped_and_counted() {
    let pki = Pki::new("refuse");
    let (server, metrics) = start_tls_server(&pki, &[]);
    // Trusts no CA: the client rejects the server's certificate and sends an alert.
    let untrusting = client_config(None, rustls::DEFAULT_VERSIONS);
    let err = match try_tls_connect(server.addr, &untrusting) {
        Ok(_) => panic!("a client that trusts nothing finished a handshake"),
        Err(err) => err,
    };
    assert!(err.contains("UnknownIssuer"), "{err}");
    wait_counter(metrics, HANDSHAKE_FAILURES, 1);
    let mut subscriber = wss_pusher(server.addr, &trusting(&pki));
    subscriber.ping_pong();
}

#[test]
fn tls_output_keeps_its_order_and_a_tls_reader_that_stops_reading_is_cut() {
    let pki = Pki::new("backpressure");
    let (server, metrics) = start_tls_server(&pki, &["--max-outbound-bytes", "65536"]);
    let config = trusting(&pki);
    // Stops reading after its subscription: its socket fills, then its queue passes the cap.
    let mut stalled = wss_pusher(server.addr, &config);
    stalled.subscribe_ok("flood", None);
    // Reads everything: coalesced writes of many frames become many TLS records.
    let mut reader = wss_pusher(server.addr, &config);
    reader.subscribe_ok("flood", None);
    let reading = std::thread::spawn(move || {
        let mut seen: Vec<u64> = Vec::new();
        loop {
            let event = reader.next_json();
            match event["event"].as_str() {
                Some("flood") => {
                    let data: Value =
                        serde_json::from_str(event["data"].as_str().unwrap()).unwrap();
                    seen.push(data["n"].as_u64().unwrap());
                }
                Some("done") => return seen,
                other => panic!("unexpected event {other:?}: {event}"),
            }
        }
    });

    let mut publisher = tls_connect(server.addr, &config);
    let path = format!("/apps/{APP_ID}/events");
    let padding = "x".repeat(9_000);
    let mut published = 0u64;
    let mut publish = |name: &str, data: String| {
        let body = json!({"name": name, "channel": "flood", "data": data}).to_string();
        let request = signed_request("POST", &path, &[], &body, APP_SECRET, true);
        publisher.write_all(request.as_bytes()).unwrap();
        let mut rest = Vec::new();
        let response = read_http_response(&mut publisher, &mut rest).unwrap();
        assert_eq!(response.status, 200, "{}", response.body_text());
    };
    // Far more than the loopback socket buffers of the stalled reader hold.
    while published < 4_000 {
        publish("flood", json!({"n": published, "pad": padding}).to_string());
        published += 1;
        if published.is_multiple_of(200)
            && counter(metrics, "ringcast_slow_consumer_disconnects_total") == 1
        {
            break;
        }
    }
    publish("done", "{}".into());
    let seen = reading.join().unwrap();
    assert_eq!(
        seen,
        (0..published).collect::<Vec<_>>(),
        "the reading subscriber got every event, in order"
    );
    assert_eq!(
        counter(metrics, "ringcast_slow_consumer_disconnects_total"),
        1,
        "the stalled TLS reader was cut as a slow consumer after {published} events"
    );
    drop(stalled);
}

/// Reads from `stream` until the server closes it; the time from `since` until then.
fn time_until_dropped(stream: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    loop {
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk) {
            Ok(0) => return since.elapsed(),
            Ok(n) => panic!("the server sent {n} bytes to a half-finished handshake"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return since.elapsed(), // reset
        }
        assert!(since.elapsed() < limit, "still open after {limit:?}");
    }
}

#[test]
fn handshakes_that_never_finish_are_dropped_at_the_deadline_and_counted() {
    let pki = Pki::new("deadline");
    // The HTTP deadline far away: what drops these sockets is the TLS one (5 s).
    let (server, metrics) = start_tls_server(&pki, &["--handshake-timeout", "60"]);
    let addr = server.addr;
    let limit = Duration::from_secs(9);

    // Connects and sends nothing.
    let silent = std::thread::spawn(move || {
        let mut stream = tcp_connect(addr);
        time_until_dropped(&mut stream, Instant::now(), limit)
    });

    // Sends a real ClientHello one byte every 400 ms (it would take far longer than 5 s).
    let mut hello = Vec::new();
    let name = ServerName::IpAddress(addr.ip().into());
    let mut conn = ClientConnection::new(trusting(&pki), name).unwrap();
    conn.write_tls(&mut hello).unwrap();
    assert!(
        hello.len() > 100,
        "a ClientHello is longer than {}",
        hello.len()
    );
    let trickle = std::thread::spawn(move || {
        let mut stream = tcp_connect(addr);
        let since = Instant::now();
        for byte in hello {
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            stream
                .set_read_timeout(Some(Duration::from_millis(400)))
                .unwrap();
            let mut chunk = [0u8; 512];
            match stream.read(&mut chunk) {
                Ok(0) => return since.elapsed(),
                Ok(n) => panic!("the server answered {n} bytes to a partial ClientHello"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return since.elapsed(),
            }
            assert!(since.elapsed() < limit, "still open after {limit:?}");
        }
        time_until_dropped(&mut stream, since, limit)
    });

    for (what, dropped_after) in [("silent", silent), ("trickling", trickle)] {
        let dropped_after = dropped_after.join().unwrap();
        assert!(
            dropped_after >= Duration::from_millis(4_500) && dropped_after < Duration::from_secs(8),
            "the {what} client was dropped after {dropped_after:?}, not at the 5 s deadline"
        );
    }
    wait_counter(metrics, HANDSHAKE_FAILURES, 2);
    // A client that finishes its handshake in time is served as usual.
    let mut subscriber = wss_pusher(server.addr, &trusting(&pki));
    subscriber.ping_pong();
}

/// The number of times the log says `text`.
fn log_count(server: &Server, text: &str) -> usize {
    server.log().matches(text).count()
}

/// Sends SIGHUP and waits until the log says `text` once more than before.
fn sighup_and_wait(server: &Server, text: &str) {
    let before = log_count(server, text);
    server.sighup();
    let deadline = Instant::now() + READ_TIMEOUT;
    while log_count(server, text) == before {
        assert!(
            Instant::now() < deadline,
            "no {text:?} after SIGHUP:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The end-entity certificate a new TLS client is shown (a fresh client: one that resumed an
/// earlier session would be shown no certificate and report the session's).
fn served_cert(addr: SocketAddr, pki: &Pki) -> CertificateDer<'static> {
    let tls = tls_connect(addr, &trusting(pki));
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_file_is_broken() {
    let pki = Pki::new("reload");
    let (mut server, _metrics) = start_tls_server(&pki, &[]);
    let config = trusting(&pki);
    let first = first_cert(&pki.path("server.crt"));
    assert_eq!(served_cert(server.addr, &pki), first);
    let mut before_reload = wss_pusher(server.addr, &config);
    before_reload.subscribe_ok("reloads", None);

    // A new certificate and key (new serial, new subject) in place of the live files.
    issue_server_cert(&pki.dir, "next", "ringcast-next");
    std::fs::copy(pki.path("next.key"), &pki.key).unwrap();
    std::fs::copy(pki.path("next.crt"), &pki.cert).unwrap();
    let next = first_cert(&pki.cert);
    assert_ne!(next, first);
    sighup_and_wait(&server, "TLS certificate reloaded");
    assert_eq!(
        served_cert(server.addr, &pki),
        next,
        "new handshakes get the new certificate"
    );
    let mut after_reload = wss_pusher(server.addr, &config);
    after_reload.subscribe_ok("reloads", None);

    // A broken certificate file: the current certificate stays, with one line saying why.
    std::fs::write(&pki.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    sighup_and_wait(&server, "TLS certificate not reloaded");
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS certificate not reloaded"))
        .unwrap();
    assert!(line.contains(&pki.cert), "the line names the file: {line}");
    assert_eq!(served_cert(server.addr, &pki), next);

    // Connections from before either reload were never dropped.
    let published = https(
        server.addr,
        &config,
        &publish_request("reloads", "still-here", None, false),
    );
    assert_eq!(published.status, 200, "{}", published.body_text());
    for client in [&mut before_reload, &mut after_reload] {
        let event = client.expect_event("still-here");
        assert_eq!(event["channel"], "reloads");
    }
    assert!(server.is_running());
}

/// Runs ringcast with `args`, expecting it to refuse to start; returns its stderr.
fn failed_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--shards",
            "1",
        ])
        .args(args)
        .env_clear()
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .output()
        .expect("ringcast runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn a_missing_or_wrong_key_or_certificate_is_a_start_error_naming_the_file() {
    let pki = Pki::new("start");
    issue_server_cert(&pki.dir, "other", "someone-else");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let missing = pki.path("missing.pem");
    assert!(!Path::new(&missing).exists());

    let stderr = failed_start(&["--tls-cert-file", &pki.cert]);
    assert!(
        stderr.contains(&format!(
            "--tls-cert-file {} needs --tls-key-file",
            pki.cert
        )),
        "{stderr}"
    );
    let stderr = failed_start(&["--tls-key-file", &pki.key]);
    assert!(
        stderr.contains(&format!("--tls-key-file {} needs --tls-cert-file", pki.key)),
        "{stderr}"
    );
    let other_key = pki.path("other.key");
    let stderr = failed_start(&["--tls-cert-file", &pki.cert, "--tls-key-file", &other_key]);
    assert!(
        stderr.contains(&format!(
            "--tls-key-file {other_key} is not the key of the certificate in --tls-cert-file {}",
            pki.cert
        )),
        "{stderr}"
    );
    let stderr = failed_start(&["--tls-cert-file", &missing, "--tls-key-file", &pki.key]);
    assert!(
        stderr.contains(&format!("cannot read --tls-cert-file {missing}")),
        "{stderr}"
    );
    let stderr = failed_start(&["--tls-cert-file", &pki.cert, "--tls-key-file", &missing]);
    assert!(
        stderr.contains(&format!("cannot read --tls-key-file {missing}")),
        "{stderr}"
    );
    let stderr = failed_start(&["--tls-cert-file", &garbage, "--tls-key-file", &pki.key]);
    assert!(
        stderr.contains(&format!("--tls-cert-file {garbage}")),
        "{stderr}"
    );
    let stderr = failed_start(&["--tls-cert-file", &pki.cert, "--tls-key-file", &garbage]);
    assert!(
        stderr.contains(&format!("--tls-key-file {garbage}")),
        "{stderr}"
    );
    // The key given as the certificate and the other way round.
    let stderr = failed_start(&["--tls-cert-file", &pki.key, "--tls-key-file", &pki.cert]);
    assert!(
        stderr.contains(&format!("--tls-cert-file {}", pki.key)),
        "{stderr}"
    );
}
