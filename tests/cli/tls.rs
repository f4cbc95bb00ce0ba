//! TLS trust: a self-signed CA given with --cacert, SSL_CERT_FILE, wrong host
//! and dates, https to a plain port; bodies that end with the connection
//! (close_notify); failures said in words (a chain too long, a server with
//! only an old TLS version).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use crate::server::{Reply, TestServer, raw};
use crate::support::json_run;
use crate::{Running, command, kind};

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
    ca_and_leaf_with(|_| {})
}

/// [`ca_and_leaf`], the leaf's parameters changed by `tweak` first.
fn ca_and_leaf_with(tweak: impl FnOnce(&mut CertificateParams)) -> (Cert, Cert) {
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
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    tweak(&mut leaf_params);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let leaf = Cert {
        der: leaf.der().clone(),
        pem: leaf.pem(),
        key: leaf_key.serialize_der(),
    };
    (ca, leaf)
}

fn tls_server(cert: &Cert) -> TestServer {
    let server = TestServer::start_tls(server_config(vec![cert.der.clone()], &cert.key));
    server.route("*", |_| Reply::ok("tls\n"));
    server
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs with the given environment variables set (and the trust store
/// variables cleared unless given).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> crate::Run {
    let mut cmd = command(args);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running::spawn(cmd, None).finish()
}

#[test]
fn a_pinned_cert_still_needs_the_right_host_name_and_dates() {
    let dir = tempfile::tempdir().unwrap();
    let other = self_signed_ca(&["other.invalid"], |_| {});
    let server = tls_server(&other);
    let pem = write(dir.path(), "other.pem", &other.pem);
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &server.https_url("/")],
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
        &["--json", "-q", "--cacert", &pem, &server.https_url("/")],
        &[],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
}

#[test]
fn https_to_a_plain_http_port_is_tls() {
    // Answers whatever arrives as a plain HTTP server does: 400, close.
    let server = raw::listen(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = s.shutdown(Shutdown::Write);
        let _ = s.read(&mut buf);
    });
    let r = json_run(&[&server.url("https", "/")]);
    let v: Value = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    assert_eq!(
        v["error"]["message"], "the server does not speak TLS on this port",
        "{v}"
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn self_signed_ca_cert_given_with_cacert_is_trusted_as_the_servers_own() {
    let cert = self_signed_ca(&["127.0.0.1"], |_| {});
    let server = tls_server(&cert);
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "self.pem", &cert.pem);
    let urls = [server.https_url("/a"), server.https_url("/b")];
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
    // Every trust route alike: the same file as SSL_CERT_FILE (curl accepts
    // both).
    let r = run_env(&["--json", "-q", &urls[0]], &[("SSL_CERT_FILE", &pem)]);
    let v = r.single();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn ssl_cert_file_is_the_trust_store() {
    let (ca, leaf) = ca_and_leaf();
    let server = tls_server(&leaf);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let url = server.https_url("/");
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

/// webpki's CaUsedAsEndEntity, which the fetcher finds by downcast: made
/// through ureq itself, so a second rustls-webpki in the tree (whose error
/// type would no longer match) fails this test, not only the CI check.
#[test]
fn a_ca_certificate_presented_as_the_servers_own_is_named() {
    // Signed by a trusted CA, but itself marked CA:TRUE and not trusted on
    // its own: webpki refuses it as the server's own.
    let (ca, leaf) = ca_and_leaf_with(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained));
    let server = tls_server(&leaf);
    let dir = tempfile::tempdir().unwrap();
    let store = write(dir.path(), "store.pem", &ca.pem);
    let r = run_env(
        &["--json", "-q", &server.https_url("/")],
        &[("SSL_CERT_FILE", &store)],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("CA:TRUE"), "{message}");
}

#[test]
fn verbose_traces_the_tls_handshake_and_the_certificate() {
    let (_ca, leaf) = ca_and_leaf();
    let server = tls_server(&leaf);
    let out = crate::run(&["-q", "-v", "-k", &server.https_url("/ok")]);
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

/// A TLS server on a raw listener: answers one request with `answer`, then
/// closes the connection, with close_notify first when `notify`.
fn tls_closing(cert: &Cert, answer: &'static [u8], notify: bool) -> raw::RawListener {
    let config = server_config(vec![cert.der.clone()], &cert.key);
    raw::listen(move |tcp| {
        let Ok(session) = rustls::ServerConnection::new(Arc::clone(&config)) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(session, tcp);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tls.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = tls.write_all(answer);
        if notify {
            tls.conn.send_close_notify();
        }
        let _ = tls.flush();
        // rustls sends nothing more when dropped: without close_notify the
        // peer sees a bare TCP close.
        let _ = tls.sock.shutdown(Shutdown::Both);
    })
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

#[test]
fn a_tls_body_delimited_by_the_close_needs_close_notify() {
    let cert = self_signed_ca(&["127.0.0.1"], |_| {});
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "self.pem", &cert.pem);
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789";

    let cut = tls_closing(&cert, ANSWER, false);
    let r = run_env(
        &[
            "--json",
            "-q",
            "--sha256",
            "--cacert",
            &pem,
            &cut.url("https", "/"),
        ],
        &[],
    );
    let v = r.single();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(kind(&v), Some("io"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("without TLS close_notify"), "{v}");
    assert!(v["sha256"].is_null(), "{v}");
    assert_eq!(cut.connections(), 1, "not retried");

    // The same bytes ended by close_notify are whole.
    let whole = tls_closing(&cert, ANSWER, true);
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &whole.url("https", "/")],
        &[],
    );
    let v = r.single();
    assert_eq!(
        (v["ok"].clone(), v["bytes"].clone()),
        (true.into(), 10.into()),
        "{v}"
    );
    // A body with a length needs no close_notify.
    let sized = tls_closing(
        &cert,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        false,
    );
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &sized.url("https", "/")],
        &[],
    );
    assert_eq!(r.single()["ok"], true);
}

/// No library's Debug rendering in a message.
fn assert_in_words(message: &str) {
    assert!(!message.is_empty());
    for debug in ["Other(", "OtherError(", "{ ", "Some("] {
        assert!(!message.contains(debug), "Debug text in {message:?}");
    }
}

#[test]
fn a_chain_too_long_to_follow_is_said_in_words() {
    let named = |name: String| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
    };
    let root_key = KeyPair::generate().unwrap();
    let root = named("root".into()).self_signed(&root_key).unwrap();
    let mut issuer = Issuer::new(named("root".into()), root_key);
    let mut intermediates = Vec::new();
    for i in 0..10 {
        let key = KeyPair::generate().unwrap();
        let cert = named(format!("intermediate {i}"))
            .signed_by(&key, &issuer)
            .unwrap();
        intermediates.push(cert.der().clone());
        issuer = Issuer::new(named(format!("intermediate {i}")), key);
    }
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let mut chain = vec![leaf.der().clone()];
    chain.extend(intermediates.into_iter().rev());
    let server = TestServer::start_tls(server_config(chain, &leaf_key.serialize_der()));
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "root.pem", &root.pem());
    let r = run_env(
        &["--json", "-q", "--cacert", &pem, &server.https_url("/ok")],
        &[],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("chain is too long"), "{v}");
    assert_in_words(message);
}

#[test]
fn a_server_with_only_an_old_tls_version_is_said_in_words() {
    // What a TLS 1.1-only server answers a TLS 1.2+ ClientHello: a fatal
    // protocol_version alert (level 2, description 70).
    let server = raw::listen(|mut tcp| {
        let mut hello = [0u8; 512];
        let _ = tcp.read(&mut hello);
        let _ = tcp.write_all(&[0x15, 0x03, 0x02, 0x00, 0x02, 0x02, 0x46]);
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.read(&mut hello);
    });
    let r = run_env(
        &["--json", "-q", "--retries", "0", &server.url("https", "/")],
        &[],
    );
    let v = r.single();
    assert_eq!(kind(&v), Some("tls"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("old TLS version"), "{v}");
    assert_in_words(message);
}
