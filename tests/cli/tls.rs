//! TLS trust: a self-signed CA given with --cacert, SSL_CERT_FILE, wrong host
//! and dates, https to a plain port.

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

fn tls_server(cert: &Cert) -> TestServer {
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
    let server = TestServer::start_tls(Arc::new(config));
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
