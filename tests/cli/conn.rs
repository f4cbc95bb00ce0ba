//! The connection layer: dead keep-alive connections, response-head limits,
//! TLS trust (self-signed CA:TRUE via --cacert, SSL_CERT_FILE, wrong host,
//! expired), https to a plain port, and per-result timings.
//!
//! Servers here are raw `std::net` listeners on 127.0.0.1 (plain, or TLS
//! through rustls with certificates made by rcgen in the test), so each can
//! misbehave exactly as needed. None makes a timing assertion.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use super::server::TestServer;
use super::{Running, command, count_kinds, kind, lines, run, run_stdin};

/// What a raw server does after writing its answer.
#[derive(Clone, Copy)]
enum After {
    /// Wait for the next request on the connection.
    KeepAlive,
    /// Close the connection after a short pause, without saying so in the
    /// answer: the client's next request is by then in the receive queue, so
    /// the close is a reset (the dead keep-alive connection of real servers).
    CloseSoon,
}

/// A raw HTTP/1.1 server on 127.0.0.1: `answer` maps each request head to
/// the bytes to write. Stops when dropped.
struct RawServer {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

type Answer = dyn Fn(&str) -> Vec<u8> + Send + Sync;

impl RawServer {
    fn start(after: After, answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> RawServer {
        Self::start_with(after, None, Arc::new(answer))
    }

    fn start_tls(config: Arc<rustls::ServerConfig>) -> RawServer {
        Self::start_with(
            After::KeepAlive,
            Some(config),
            Arc::new(|_: &str| ok(b"tls\n")),
        )
    }

    fn start_with(
        after: After,
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: Arc<Answer>,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop2, conns2) = (Arc::clone(&stop), Arc::clone(&connections));
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                conns2.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let answer = Arc::clone(&answer);
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => serve(stream, after, &*answer),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(conn, stream), after, &*answer);
                    }
                });
            }
        });
        RawServer {
            port,
            stop,
            connections,
            accept: Some(accept),
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves requests on one connection until the client leaves.
fn serve(mut stream: impl Read + Write, after: After, answer: &Answer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        if stream.write_all(&answer(&head)).is_err() || stream.flush().is_err() {
            return;
        }
        if let After::CloseSoon = after {
            thread::sleep(Duration::from_millis(2));
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A 200 answer with `body`, kept alive.
fn ok(body: &[u8]) -> Vec<u8> {
    let mut a = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    a.extend_from_slice(body);
    a
}

fn json_run(args: &[&str]) -> super::Run {
    let mut all = vec!["--json", "-q"];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn dead_keep_alive_connections_are_resent_not_retried() {
    let server = RawServer::start(After::CloseSoon, |_| ok(b"ok\n"));
    let urls: Vec<String> = (0..2000)
        .map(|i| server.url("http", &format!("/k?i={i}")))
        .collect();
    let r = run_stdin(&["--json", "-q", "-j", "1", "--retries", "0"], lines(&urls));
    let results = r.results();
    assert_eq!(results.len(), 2000);
    let kinds = count_kinds(&results);
    assert_eq!(kinds.get("none"), Some(&2000), "{kinds:?}");
    assert!(
        results
            .iter()
            .all(|v| v["attempts"] == 1 && v["ok"] == true)
    );
    r.assert_code(0);
    // The server closed every connection after one answer.
    assert!(server.connections() >= 2000);
}

#[test]
fn response_heads_up_to_64_kib_are_accepted() {
    let server = RawServer::start(After::KeepAlive, |head| {
        let len = if head.contains("/h20") {
            20_000
        } else {
            70_000
        };
        let big = "a".repeat(len);
        let mut a =
            format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 3\r\n\r\n").into_bytes();
        a.extend_from_slice(b"ok\n");
        a
    });
    let r = json_run(&[&server.url("http", "/h20")]);
    let v = r.single();
    assert_eq!(
        (v["ok"].as_bool(), v["status"].as_u64()),
        (Some(true), Some(200)),
        "{v}"
    );
    assert_eq!(v["bytes"], 3);

    let r = json_run(&[&server.url("http", "/h70")]);
    let v = r.single();
    assert_eq!(kind(&v), Some("protocol"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("64 KiB"), "{message}");
}

#[test]
fn timings_say_how_the_connection_went() {
    let server = TestServer::start();
    let urls = [server.url("/ok?i=1"), server.url("/ok?i=2")];
    let r = json_run(&["-j", "1", &urls[0], &urls[1]]);
    let by = r.by_seq();
    let (first, second) = (&by[&0]["timings"], &by[&1]["timings"]);
    assert_eq!(first["reused"], false, "{first}");
    assert!(first["connect_ms"].is_number(), "{first}");
    assert!(
        first["tls_ms"].is_null() && first["ttfb_ms"].is_number(),
        "{first}"
    );
    assert_eq!(second["reused"], true, "{second}");
    assert!(
        second["connect_ms"].is_null() && second["tls_ms"].is_null(),
        "{second}"
    );
    assert!(second["ttfb_ms"].is_number(), "{second}");
    assert_eq!(server.connections(), 1);

    let r = run(&[
        "-j",
        "1",
        "--format",
        "{seq} {reused} [{tls_ms}]",
        &urls[0],
        &urls[1],
    ]);
    assert_eq!(r.lines(), ["0 false []", "1 true []"]);
}

// ------------------------------------------------------------ TLS

/// A certificate and its key, made for the test.
struct Cert {
    der: CertificateDer<'static>,
    pem: String,
    key: Vec<u8>,
}

/// A self-signed certificate for `names`, marked CA:TRUE as `openssl req
/// -x509` makes it.
fn self_signed_ca(names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> Cert {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    tweak(&mut params);
    let cert = params.self_signed(&key).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key: key.serialize_der(),
    }
}

/// A CA and a leaf for 127.0.0.1 that it signed.
fn ca_and_leaf() -> (Cert, Cert) {
    let ca = self_signed_ca(&[], |p| {
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "fetchpool test CA");
    });
    let ca_key = KeyPair::from_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(ca.key.clone()).into(),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    )
    .unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fetchpool test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let leaf = Cert {
        der: leaf.der().clone(),
        pem: leaf.pem(),
        key: leaf_key.serialize_der(),
    };
    (ca, leaf)
}

fn tls_server(cert: &Cert) -> RawServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )
        .unwrap();
    RawServer::start_tls(Arc::new(config))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs with the given environment variables set (and the trust store
/// variables cleared unless given).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> super::Run {
    let mut cmd = command(args);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running::spawn(cmd, None).finish()
}

#[test]
fn self_signed_ca_cert_given_with_cacert_is_trusted_as_the_servers_own() {
    let cert = self_signed_ca(&["127.0.0.1"], |_| {});
    let server = tls_server(&cert);
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "self.pem", &cert.pem);
    let urls = [server.url("https", "/a"), server.url("https", "/b")];
    let r = run_env(
        &[
            "--json", "-q", "-j", "1", "--cacert", &pem, &urls[0], &urls[1],
        ],
        &[],
    );
    let by = r.by_seq();
    assert_eq!(by[&0]["ok"], true, "{}", by[&0]);
    assert_eq!(by[&1]["ok"], true, "{}", by[&1]);
    assert!(by[&0]["timings"]["tls_ms"].is_number(), "{}", by[&0]);
    assert_eq!(by[&1]["timings"]["reused"], true, "{}", by[&1]);
    assert!(by[&1]["timings"]["tls_ms"].is_null(), "{}", by[&1]);

    // Without --cacert it is refused.
    let r = run_env(&["--json", "-q", &urls[0]], &[]);
    assert_eq!(kind(&r.single()), Some("tls"));
}

#[test]
fn a_pinned_cert_still_needs_the_right_host_name_and_dates() {
    let dir = tempfile::tempdir().unwrap();
    let other = self_signed_ca(&["other.invalid"], |_| {});
    let server = tls_server(&other);
    let pem = write(dir.path(), "other.pem", &other.pem);
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &server.url("https", "/")],
        &[],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("host name"), "{message}");

    let expired = self_signed_ca(&["127.0.0.1"], |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let server = tls_server(&expired);
    let pem = write(dir.path(), "expired.pem", &expired.pem);
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &server.url("https", "/")],
        &[],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
}

#[test]
fn ssl_cert_file_is_the_trust_store() {
    let (ca, leaf) = ca_and_leaf();
    let server = tls_server(&leaf);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let url = server.url("https", "/");
    let r = run_env(&["--json", "-q", &url], &[("SSL_CERT_FILE", &ca_file)]);
    let v = r.single();
    assert_eq!(v["ok"], true, "{v}");
    // Without it, the CA is unknown.
    let r = run_env(&["--json", "-q", &url], &[]);
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    // An empty store: the bundled roots stand in (which do not know it).
    let empty = write(dir.path(), "empty.pem", "");
    let r = run_env(&["--json", "-q", &url], &[("SSL_CERT_FILE", &empty)]);
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown authority"), "{message}");
    // -k needs no trust at all.
    let r = run_env(&["--json", "-q", "-k", &url], &[]);
    assert_eq!(r.single()["ok"], true);
}

#[test]
fn https_to_a_plain_http_port_is_tls() {
    // Answers whatever arrives as a plain HTTP server does: 400, close.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = s.shutdown(Shutdown::Write);
        let _ = s.read(&mut buf);
    });
    let r = json_run(&[&format!("https://127.0.0.1:{port}/")]);
    let v: Value = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    assert_eq!(
        v["error"]["message"], "the server does not speak TLS on this port",
        "{v}"
    );
    server.join().unwrap();
}

#[test]
fn a_redirect_to_a_long_url_is_followed() {
    // The target's request line (about 20 KB) is longer than the request
    // that led to it: the output buffer has to grow on the way.
    let long = format!("/long?{}", "a".repeat(20_000));
    let location = long.clone();
    let server = RawServer::start(After::KeepAlive, move |head| {
        if head.starts_with("GET /start ") {
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        } else if head.starts_with(&format!("GET {location} ")) {
            ok(b"arrived\n")
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    let v = json_run(&[&server.url("http", "/start")]).single();
    assert_eq!(
        (v["ok"].as_bool(), v["status"].as_u64()),
        (Some(true), Some(200)),
        "{v}"
    );
    assert_eq!(v["bytes"], 8);
    assert!(
        v["final_url"].as_str().unwrap().contains("/long?aaaa"),
        "{v}"
    );
    assert_eq!(v["attempts"], 1);
}

#[test]
fn verbose_traces_the_tls_handshake_and_the_certificate() {
    let (_ca, leaf) = ca_and_leaf();
    let server = tls_server(&leaf);
    let out = run(&["-q", "-v", "-k", &server.url("https", "/")]);
    out.assert_code(0);
    let tls = out
        .stderr
        .lines()
        .find(|l| l.starts_with("[0] * TLSv1_3 "))
        .unwrap_or_else(|| panic!("no TLS line:\n{}", out.stderr));
    assert!(tls.contains("issuer CN=fetchpool test CA"), "{tls}");
    assert!(tls.contains("; expires "), "{tls}");
    assert!(tls.contains("TLS13_"), "{tls}");
}
