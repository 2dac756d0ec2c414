//! TLS: the real binary with `--tls-cert/--tls-key` and a certificate made here, the Rust client
//! over `wss://` trusting it, what fails when a client does not (plain `ws://`, an unknown
//! issuer, a client that never says hello) and that none of it disturbs the others;
//! `Server::serve_tls` in process, with its shutdown.

use crate::harness::*;
use objectsync::client::{Client, ClientError, ConnectOptions, Event};
use objectsync::model::Change;
use objectsync::TlsConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The header timeout the binary is given: the deadline of a handshake too.
const HEADER_TIMEOUT_MS: u64 = 300;

/// A self-signed certificate for 127.0.0.1 and localhost, and its key, as PEM files in a
/// temporary directory.
struct Certificate {
    dir: tempfile::TempDir,
    pem: String,
}

impl Certificate {
    fn new() -> Certificate {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = made.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &pem).expect("write the certificate");
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).expect("write the key");
        Certificate { dir, pem }
    }
    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    /// Options of a client that trusts this certificate.
    fn trusted(&self) -> ConnectOptions {
        ConnectOptions { tls_roots_pem: Some(self.pem.clone().into_bytes()), ..ConnectOptions::default() }
    }
}

/// The real `objectsync` binary serving the demo rooms in memory over TLS.
struct Binary;

impl Binary {
    fn start(cert: &Path, key: &Path) -> ServerProcess {
        ServerProcess::spawn(
            Command::new(env!("CARGO_BIN_EXE_objectsync"))
                .args(["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent"])
                .args(["--limit", &format!("http_header_timeout_ms={HEADER_TIMEOUT_MS}")])
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key),
        )
    }
}

/// `b` sees the node `a` creates, and `a` has it acknowledged.
async fn create_and_see(a: &mut Client, b: &mut Client, x: i64) {
    let node = a.new_object_id();
    within(a.act(vec![create_node(&node, x)])).await.expect("the create is acknowledged");
    match next_non_presence(b).await {
        Event::Update { changes, .. } => {
            assert!(matches!(&changes[..], [Change::Create { id, .. }] if *id == node), "{changes:?}")
        }
        e => panic!("expected the update of {node}, got {e:?}"),
    }
    assert!(b.mirror().get(&node).is_some(), "{node} is in the other client's mirror");
}

#[tokio::test]
async fn a_client_that_trusts_the_certificate_acts_over_wss() {
    let cert = Certificate::new();
    let server = Binary::start(&cert.cert_path(), &cert.key_path());
    let url = server.url_with("wss", "tls");
    let mut a = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    let mut b = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    create_and_see(&mut a, &mut b, 1).await;
}

#[tokio::test]
async fn plain_and_untrusting_clients_fail_cleanly_and_the_server_keeps_serving() {
    let cert = Certificate::new();
    let server = Binary::start(&cert.cert_path(), &cert.key_path());
    let url = server.url_with("wss", "tls");
    let mut a = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");

    // Plain WebSocket to the TLS port: the server reads no ClientHello and closes.
    let plain = within(Client::connect(&server.url_with("ws", "tls"), ConnectOptions::default())).await;
    assert!(matches!(plain, Err(ClientError::Connection(_))), "{plain:?}");
    // The public roots do not vouch for a self-signed certificate.
    let untrusting = within(Client::connect(&url, ConnectOptions::default())).await;
    match untrusting {
        Err(ClientError::Connection(why)) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
    // Roots that are not PEM are the caller's mistake, said before connecting.
    let garbage = ConnectOptions { tls_roots_pem: Some(b"not a certificate".to_vec()), ..ConnectOptions::default() };
    let refused = within(Client::connect(&url, garbage)).await;
    assert!(matches!(refused, Err(ClientError::TlsRoots(_))), "{refused:?}");

    // The session opened before is untouched, and new ones still come in.
    let mut b = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    create_and_see(&mut a, &mut b, 2).await;
}

#[tokio::test]
async fn a_connection_that_never_says_hello_is_closed_after_the_header_timeout() {
    let cert = Certificate::new();
    let server = Binary::start(&cert.cert_path(), &cert.key_path());
    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let mut byte = [0u8; 1];
    // Closed by the server: end of stream (or a reset), never a byte from the server first.
    match within(silent.read(&mut byte)).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the server sent {n} bytes to a client that said nothing"),
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(HEADER_TIMEOUT_MS - 50), "closed after {waited:?}: before the deadline");
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    // Meanwhile and after, a real client is served.
    let url = server.url_with("wss", "tls");
    let mut a = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    let mut b = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    create_and_see(&mut a, &mut b, 3).await;
}

#[test]
fn the_binary_will_not_start_with_a_key_of_another_certificate_and_names_the_files() {
    let cert = Certificate::new();
    let other = Certificate::new();
    let out = Command::new(env!("CARGO_BIN_EXE_objectsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--memory", "--tls-cert"])
        .arg(cert.cert_path())
        .arg("--tls-key")
        .arg(other.key_path())
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it listened: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let names = |p: PathBuf| stderr.contains(&*p.to_string_lossy());
    assert!(stderr.contains("is not the private key of"), "{stderr}");
    assert!(names(cert.cert_path()) && names(other.key_path()), "{stderr}");
}

/// The library's way: `Server::serve_tls` with a `TlsConfig`; shutdown closes sessions with
/// 1001 and returns.
#[tokio::test]
async fn serve_tls_serves_the_router_and_shuts_down() {
    let cert = Certificate::new();
    let tls = TlsConfig::from_pem_files(cert.cert_path(), cert.key_path()).expect("the certificate and key");
    let server = TestServer::builder().build().expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_tls(listener, tls).await }
    });
    let url = format!("wss://{addr}/ws/tls");
    let mut a = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    let mut b = within(Client::connect(&url, cert.trusted())).await.expect("connect over wss");
    create_and_see(&mut a, &mut b, 4).await;
    server.shutdown();
    assert_eq!(until_closed(&mut a).await.0, 1001);
    within(serving).await.expect("the serving task").expect("serve_tls ends without error");
}
