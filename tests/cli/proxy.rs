//! Proxies, read as curl reads them: the environment, --proxy and --noproxy,
//! CONNECT tunnels and proxy credentials.

use crate::server::proxy::TunnelProxy;
use crate::server::{Reply, TestServer};
use crate::support::{fetch, message};
use crate::{Running, command, kind, refused_port};

#[test]
fn http_proxy_is_used_for_http_urls_unless_no_proxy_says() {
    let site = TestServer::routed(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let urls: Vec<String> = (0..3).map(|i| site.url(&format!("/p{i}"))).collect();
    let (results, run) = fetch(&[("http_proxy", &proxy.url())], &["-j", "1"], &urls);
    run.assert_code(0);
    for r in &results {
        assert_eq!(r["status"], 200, "{r}");
    }
    // ureq tunnels plain http too: CONNECT, then the request inside.
    assert_eq!(
        proxy.lines(),
        [format!("CONNECT 127.0.0.1:{}", site.port())]
    );
    assert_eq!(site.targets(), ["/p0", "/p1", "/p2"]);
    // One tunnel, kept alive for all three requests.
    assert_eq!(proxy.connections(), 1);

    for no_proxy in [
        ("no_proxy", "127.0.0.1"),
        ("NO_PROXY", " example.com , 127.0.0.1"),
        ("no_proxy", "*"),
        ("no_proxy", "127.0.0.0/8"),
    ] {
        let env = [
            ("http_proxy", proxy.url()),
            (no_proxy.0, no_proxy.1.to_owned()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (results, _) = fetch(&env, &[], &[site.url("/direct")]);
        assert_eq!(results[0]["status"], 200, "{no_proxy:?}: {}", results[0]);
    }
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.lines());
}

#[test]
fn https_proxy_and_uppercase_http_proxy_are_not_for_http_urls() {
    let site = TestServer::routed(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY"] {
        let (results, _) = fetch(&[(var, &proxy.url())], &[], &[site.url("/direct")]);
        assert_eq!(results[0]["status"], 200, "{var}: {}", results[0]);
    }
    assert!(proxy.seen().is_empty(), "{:?}", proxy.lines());
    // all_proxy is for both schemes.
    let (results, _) = fetch(&[("ALL_PROXY", &proxy.url())], &[], &[site.url("/all")]);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.lines());
}

#[test]
fn https_urls_use_https_proxy_not_http_proxy() {
    // The site speaks plain HTTP, so the TLS handshake fails either way:
    // what counts is whether the proxy was asked for the tunnel.
    let site = TestServer::routed(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let url = format!("https://127.0.0.1:{}/tls", site.port());
    let flags = ["--retries", "0"];
    let (results, _) = fetch(
        &[("http_proxy", &proxy.url())],
        &flags,
        std::slice::from_ref(&url),
    );
    assert!(results[0]["ok"] == false, "{}", results[0]);
    assert!(proxy.seen().is_empty(), "{:?}", proxy.lines());
    for var in ["https_proxy", "HTTPS_PROXY"] {
        let (results, _) = fetch(&[(var, &proxy.url())], &flags, std::slice::from_ref(&url));
        assert!(results[0]["ok"] == false, "{}", results[0]);
    }
    let connect = format!("CONNECT 127.0.0.1:{}", site.port());
    assert_eq!(proxy.lines(), [connect.clone(), connect]);
}

#[test]
fn proxy_credentials_are_sent_to_the_proxy_and_shown_nowhere() {
    let site = TestServer::routed(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let with_creds = format!("http://user:hunter2@127.0.0.1:{}", proxy.port());
    let (results, run) = fetch(&[("http_proxy", &with_creds)], &[], &[site.url("/x")]);
    run.assert_code(0);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let seen = &proxy.seen()[0];
    // base64("user:hunter2")
    assert_eq!(
        seen.header("proxy-authorization"),
        Some("Basic dXNlcjpodW50ZXIy")
    );
    assert_eq!(site.only("/x").header("proxy-authorization"), None);

    let dead = format!("http://user:hunter2@127.0.0.1:{}", refused_port());
    let (results, run) = fetch(
        &[("http_proxy", &dead)],
        &["--retries", "0"],
        &[site.url("/y")],
    );
    let r = &results[0];
    assert_eq!(kind(r), Some("connect"), "{r}");
    assert!(
        message(r).contains(&dead.replace("user:hunter2@", "")),
        "{r}"
    );
    run.assert_absent("hunter2");

    // A proxy variable that cannot be used fails the URLs it serves.
    let socks = "socks4://user:hunter2@127.0.0.1:1080";
    let mut cmd = command(["--json", &site.url("/z")]);
    cmd.env("all_proxy", socks);
    let bad = Running::spawn(cmd, None).finish();
    bad.assert_code(1);
    assert!(
        bad.stdout_text().contains("all_proxy"),
        "{}",
        bad.stdout_text()
    );
    bad.assert_absent("hunter2");
    assert_eq!(site.targets(), ["/x"]);
}

#[test]
fn proxy_flags_override_the_environment() {
    let site = TestServer::routed(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let dead = format!("http://127.0.0.1:{}", refused_port());
    let env = [("http_proxy", dead.as_str())];
    let (results, _) = fetch(&env, &["--proxy", &proxy.url()], &[site.url("/flag")]);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    assert_eq!(proxy.seen().len(), 1);
    let flags = ["--proxy", &proxy.url(), "--noproxy", "localhost, 127.0.0.1"];
    let (results, _) = fetch(&[], &flags, &[site.url("/noproxy")]);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let (results, _) = fetch(&env, &["--proxy", ""], &[site.url("/none")]);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.lines());
    assert_eq!(site.targets(), ["/flag", "/noproxy", "/none"]);
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_kind_proxy_and_not_retried() {
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
        let proxy = TestServer::routed(move |_| Reply::raw(answer).close());
        let target = format!("http://127.0.0.1:{}/", refused_port());
        let (results, _) = fetch(
            &[],
            &["--retries", "2", "--proxy", &proxy.url("")],
            &[target],
        );
        let r = &results[0];
        assert_eq!(kind(r), Some("proxy"), "{r}");
        assert!(message(r).contains(status), "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        let seen = proxy.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].method, "CONNECT", "{seen:?}");
    }
}
