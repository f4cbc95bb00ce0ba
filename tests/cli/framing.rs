//! Response framing (RFC 9112 sections 6 and 7), TLS endings, proxies'
//! refusals, redirect details and TLS messages in words.
//!
//! Each test runs a raw `std::net` server on 127.0.0.1 (plain, or TLS
//! through rustls with certificates made by rcgen) that writes exactly the
//! bytes under test and counts the requests it saw, so a retry shows as a
//! second request. No assertion depends on timing. Where fetchpool's verdict
//! differs from curl's on the same bytes, the test says so and why.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use super::{Running, command, kind, run};

/// What the server does once it has written its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Closes the connection (over TLS: without close_notify).
    Close,
    /// Over TLS: sends close_notify, then closes.
    CloseNotify,
    /// Waits for the next request on the connection.
    KeepOpen,
}

type Answer = dyn Fn(&str) -> Vec<u8> + Send + Sync;

/// A raw server: answers each request head with `answer(head)`, then ends
/// as `end` says. Records every request head. Stops when dropped.
struct Raw {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Raw {
    fn start(end: End, answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Raw {
        Self::start_with(end, None, Arc::new(answer))
    }

    fn fixed(end: End, bytes: &[u8]) -> Raw {
        let bytes = bytes.to_vec();
        Self::start(end, move |_| bytes.clone())
    }

    fn start_with(end: End, tls: Option<Arc<rustls::ServerConfig>>, answer: Arc<Answer>) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (heads2, stop2) = (Arc::clone(&heads), Arc::clone(&stop));
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let (answer, heads, tls) = (Arc::clone(&answer), Arc::clone(&heads2), tls.clone());
                thread::spawn(move || match tls {
                    None => serve(stream, end, &*answer, &heads),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve_tls(
                            rustls::StreamOwned::new(conn, stream),
                            end,
                            &*answer,
                            &heads,
                        );
                    }
                });
            }
        });
        Raw {
            port,
            heads,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head; None when the client left.
fn read_head(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve(mut stream: TcpStream, end: End, answer: &Answer, heads: &Mutex<Vec<String>>) {
    while let Some(head) = read_head(&mut stream) {
        heads.lock().unwrap().push(head.clone());
        if stream.write_all(&answer(&head)).is_err() || end != End::KeepOpen {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve_tls(
    mut stream: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    end: End,
    answer: &Answer,
    heads: &Mutex<Vec<String>>,
) {
    while let Some(head) = read_head(&mut stream) {
        heads.lock().unwrap().push(head.clone());
        if stream.write_all(&answer(&head)).is_err() || stream.flush().is_err() {
            return;
        }
        match end {
            End::KeepOpen => continue,
            End::CloseNotify => {
                stream.conn.send_close_notify();
                let _ = stream.flush();
            }
            End::Close => {}
        }
        break;
    }
    // Dropping the stream closes TCP; rustls sends nothing on drop.
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// One run with `--json -q`; its only result.
fn fetch(args: &[&str]) -> Value {
    let mut all = vec!["--json", "-q"];
    all.extend_from_slice(args);
    run(&all).single()
}

fn message(r: &Value) -> &str {
    r["error"]["message"].as_str().unwrap_or("")
}

const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

// ------------------------------------------------------------ TLS endings

struct Cert {
    der: CertificateDer<'static>,
    pem: String,
    key: Vec<u8>,
}

fn self_signed_ca() -> Cert {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key: key.serialize_der(),
    }
}

fn server_config(chain: Vec<CertificateDer<'static>>, key: &[u8]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )
        .unwrap();
    Arc::new(config)
}

fn tls_server(cert: &Cert, end: End, answer: &[u8]) -> Raw {
    let answer = answer.to_vec();
    Raw::start_with(
        end,
        Some(server_config(vec![cert.der.clone()], &cert.key)),
        Arc::new(move |_: &str| answer.clone()),
    )
}

fn pem_file(dir: &tempfile::TempDir, pem: &str) -> String {
    let path = dir.path().join("trusted.pem");
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

#[test]
fn a_tls_body_delimited_by_the_close_needs_close_notify() {
    let cert = self_signed_ca();
    let dir = tempfile::tempdir().unwrap();
    let pem = pem_file(&dir, &cert.pem);
    let mut answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    answer.extend_from_slice(&[b'x'; 1000]);

    let cut = tls_server(&cert, End::Close, &answer);
    let r = fetch(&["--cacert", &pem, "--sha256", &cut.url("https", "/")]);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(kind(&r), Some("io"), "{r}");
    assert!(message(&r).contains("without TLS close_notify"), "{r}");
    assert!(r["sha256"].is_null(), "{r}");
    assert_eq!(cut.requests(), 1);

    // The same bytes ended by close_notify are whole.
    let whole = tls_server(&cert, End::CloseNotify, &answer);
    let r = fetch(&["--cacert", &pem, &whole.url("https", "/")]);
    assert_eq!(
        (r["ok"].clone(), r["bytes"].clone()),
        (true.into(), 1000.into()),
        "{r}"
    );
}

#[test]
fn a_tls_body_with_a_length_needs_no_close_notify() {
    let cert = self_signed_ca();
    let dir = tempfile::tempdir().unwrap();
    let pem = pem_file(&dir, &cert.pem);
    let server = tls_server(
        &cert,
        End::Close,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    let r = fetch(&["--cacert", &pem, "--sha256", &server.url("https", "/")]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["sha256"], HELLO_SHA256, "{r}");
}

#[test]
fn a_self_signed_ca_cert_is_trusted_alike_by_ssl_cert_file_and_cacert() {
    let cert = self_signed_ca();
    let dir = tempfile::tempdir().unwrap();
    let pem = pem_file(&dir, &cert.pem);
    let server = tls_server(
        &cert,
        End::KeepOpen,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    );
    let url = server.url("https", "/");
    let mut cmd = command(["--json", "-q", &url]);
    cmd.env("SSL_CERT_FILE", &pem).env_remove("SSL_CERT_DIR");
    let r = Running::spawn(cmd, None).finish().single();
    assert_eq!(r["ok"], true, "{r}");
    let r = fetch(&["--cacert", &pem, &url]);
    assert_eq!(r["ok"], true, "{r}");
}

// ------------------------------------------------------------ chunked

#[test]
fn bare_lf_chunk_lines_are_protocol_at_once_and_not_retried() {
    // curl reads these bytes as "hello"; RFC 9112 section 7.1 ends chunk
    // lines with CRLF, and reading a bare LF there is the parser
    // disagreement request smuggling lives on.
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n";
    for end in [End::Close, End::KeepOpen] {
        let server = Raw::fixed(end, bytes);
        let r = fetch(&["--retries", "2", "-m", "30", &server.url("http", "/")]);
        assert_eq!(kind(&r), Some("protocol"), "{r}");
        assert!(message(&r).contains("bare LF"), "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        assert_eq!(server.requests(), 1);
    }
}

#[test]
fn chunk_data_longer_than_its_size_is_protocol() {
    let server = Raw::fixed(
        End::KeepOpen,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    );
    let r = fetch(&["--retries", "2", &server.url("http", "/")]);
    assert_eq!(kind(&r), Some("protocol"), "{r}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn chunk_extensions_of_any_length_are_accepted() {
    let long = "x".repeat(3000);
    let bytes = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
         2;ilovew3;somuchlove=aretheseparametersfor\r\nhe\r\n\
         3;{long}=\"v\"\r\nllo\r\n0;last\r\n\r\n"
    );
    let server = Raw::fixed(End::KeepOpen, bytes.as_bytes());
    let url = server.url("http", "/");
    let r = fetch(&["--sha256", &url]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["sha256"], HELLO_SHA256, "{r}");
    // The connection stays usable: the second request reuses it.
    let run = run(&["--json", "-q", "-j", "1", &url, &url]);
    let by = run.by_seq();
    assert_eq!(by[&1]["ok"], true, "{}", by[&1]);
    assert_eq!(by[&1]["timings"]["reused"], true, "{}", by[&1]);
}

#[test]
fn a_last_coding_other_than_chunked_is_read_to_the_close() {
    // RFC 9112 section 6.3: the body ends at the close; it is saved as
    // sent (fetchpool decodes no coding). curl dechunks these instead
    // (and then fails on gzip).
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    for te in [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked, deflate\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    ] {
        let mut bytes = format!("HTTP/1.1 200 OK\r\n{te}\r\n").into_bytes();
        bytes.extend_from_slice(body);
        let server = Raw::fixed(End::Close, &bytes);
        let r = fetch(&["--retries", "2", &server.url("http", "/")]);
        assert_eq!(r["ok"], true, "{te:?}: {r}");
        assert_eq!(r["bytes"], body.len(), "{te:?}: {r}");
        assert_eq!(server.requests(), 1);
    }
}

#[test]
fn transfer_encoding_in_an_http10_response_is_protocol() {
    // RFC 9112 section 6.1: such framing is faulty. curl dechunks it.
    let server = Raw::fixed(
        End::Close,
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let r = fetch(&["--sha256", &server.url("http", "/")]);
    assert_eq!(kind(&r), Some("protocol"), "{r}");
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["sha256"].is_null(), "{r}");
}

#[test]
fn an_unasked_switching_protocols_is_protocol() {
    let server = Raw::fixed(
        End::KeepOpen,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    let r = fetch(&["--retries", "2", &server.url("http", "/")]);
    assert_eq!(kind(&r), Some("protocol"), "{r}");
    assert!(message(&r).contains("101"), "{r}");
    assert_eq!(server.requests(), 1);
}

// ------------------------------------------------------------ retries

#[test]
fn a_retry_after_too_large_to_hold_is_final() {
    let server = Raw::fixed(
        End::KeepOpen,
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999999999999\r\n\
          Content-Length: 0\r\n\r\n",
    );
    let r = fetch(&["--retries", "2", &server.url("http", "/")]);
    assert_eq!(
        (r["status"].clone(), r["ok"].clone()),
        (503.into(), false.into()),
        "{r}"
    );
    assert_eq!(r["attempts"], 1, "{r}");
    assert_eq!(server.requests(), 1);
}

// ------------------------------------------------------------ proxies

#[test]
fn a_proxy_that_refuses_the_tunnel_is_kind_proxy_and_final() {
    for (answer, status) in [
        (
            &b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\
               Content-Length: 0\r\n\r\n"[..],
            "407",
        ),
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"[..],
            "403",
        ),
    ] {
        let proxy = Raw::fixed(End::Close, answer);
        let r = fetch(&[
            "--retries",
            "2",
            "--proxy",
            &proxy.url("http", ""),
            "http://127.0.0.1:9/",
        ]);
        assert_eq!(kind(&r), Some("proxy"), "{r}");
        assert!(message(&r).contains(status), "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        let heads = proxy.heads();
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(heads[0].starts_with("CONNECT 127.0.0.1:9 "), "{heads:?}");
    }
}

#[test]
fn proxy_authorization_is_not_sent_to_another_origin() {
    let other = Raw::fixed(
        End::KeepOpen,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let target = other.url("http", "/there");
    let first = Raw::start(End::KeepOpen, move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    });
    let r = fetch(&[
        "-H",
        "Proxy-Authorization: Basic c2VjcmV0",
        &first.url("http", "/here"),
    ]);
    assert_eq!(r["ok"], true, "{r}");
    let has = |heads: Vec<String>| {
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("proxy-authorization"))
    };
    assert!(has(first.heads()), "{:?}", first.heads());
    assert_eq!(other.requests(), 1);
    assert!(!has(other.heads()), "{:?}", other.heads());
}

// ------------------------------------------------------------ redirects

#[test]
fn two_different_locations_are_protocol() {
    let server = Raw::fixed(
        End::KeepOpen,
        b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
    );
    let r = fetch(&[&server.url("http", "/")]);
    assert_eq!(kind(&r), Some("protocol"), "{r}");
    assert_eq!(server.requests(), 1);
    // The same one twice is that one.
    let server = Raw::start(End::KeepOpen, |head| {
        if head.starts_with("GET /a ") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        }
    });
    let r = fetch(&[&server.url("http", "/")]);
    assert_eq!(r["ok"], true, "{r}");
}

#[test]
fn a_latin1_location_is_percent_encoded_and_followed() {
    let server = Raw::start(End::KeepOpen, |head| {
        if head.starts_with("GET /caf%E9 ") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    let r = fetch(&[&server.url("http", "/")]);
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["final_url"].as_str().unwrap_or("").ends_with("/caf%E9"),
        "{r}"
    );
}

// ------------------------------------------------------------ TLS messages

/// No message shows a library's Debug rendering.
fn assert_in_words(r: &Value) {
    let m = message(r);
    assert!(!m.is_empty(), "{r}");
    for debug in ["Other(", "OtherError(", "{ ", "Some("] {
        assert!(!m.contains(debug), "Debug text in {m:?}");
    }
}

#[test]
fn a_chain_too_long_to_follow_is_said_in_words() {
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "root");
    let root = root_params.clone().self_signed(&root_key).unwrap();
    let mut issuer = Issuer::new(root_params, root_key);
    let mut intermediates = Vec::new();
    for i in 0..10 {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("intermediate {i}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.clone().signed_by(&key, &issuer).unwrap();
        intermediates.push(cert.der().clone());
        issuer = Issuer::new(params, key);
    }
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let mut chain = vec![leaf.der().clone()];
    chain.extend(intermediates.into_iter().rev());
    let server = Raw::start_with(
        End::KeepOpen,
        Some(server_config(chain, &leaf_key.serialize_der())),
        Arc::new(|_: &str| b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = pem_file(&dir, &root.pem());
    let r = fetch(&["--cacert", &pem, &server.url("https", "/")]);
    assert_eq!(kind(&r), Some("tls"), "{r}");
    assert!(message(&r).contains("chain is too long"), "{r}");
    assert_in_words(&r);
}

#[test]
fn a_server_with_only_an_old_tls_version_is_said_in_words() {
    // What a TLS 1.1-only server answers a TLS 1.2+ ClientHello: a fatal
    // protocol_version alert (level 2, description 70).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut hello = [0u8; 512];
        let _ = stream.read(&mut hello);
        let _ = stream.write_all(&[0x15, 0x03, 0x02, 0x00, 0x02, 0x02, 0x46]);
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.read(&mut hello);
    });
    let r = fetch(&["--retries", "0", &format!("https://127.0.0.1:{port}/")]);
    server.join().unwrap();
    assert_eq!(kind(&r), Some("tls"), "{r}");
    assert!(message(&r).contains("old TLS version"), "{r}");
    assert_in_words(&r);
}
