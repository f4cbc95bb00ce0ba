//! Redirects followed by fetchpool itself, and proxies read as curl reads them.
//!
//! Each test runs its own small loopback servers (std only): a [`Site`]
//! answers from a route table, keeps connections alive and records every
//! request; a [`TunnelProxy`] records the `CONNECT` lines (and
//! `Proxy-Authorization`) it receives and relays each tunnel to 127.0.0.1
//! only. Proxy variables are set only in the child's environment (the
//! harness removes the inherited ones). No assertion depends on timing.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::{Running, command, kind, refused_port, run};

/// How long a test server waits on an idle connection.
const IDLE: Duration = Duration::from_secs(20);

/// One request as a test server read it; header names lowercased.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: HashMap<String, String>,
}

/// An answer: status, headers, body.
struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A redirect with `location` sent as raw bytes (None: no header).
    fn redirect(status: u16, location: Option<&[u8]>) -> Reply {
        Reply {
            status,
            headers: location
                .map(|l| vec![("Location".to_owned(), l.to_vec())])
                .unwrap_or_default(),
            body: b"moved\n".to_vec(),
        }
    }
}

type Routes = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers from `routes`
/// (by exact target, path and query) and records what it received.
struct Site {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Site {
    fn start(routes: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let routes: Arc<Routes> = Arc::new(routes);
        {
            let (seen, connections, stop) = (seen.clone(), connections.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (seen, routes) = (seen.clone(), routes.clone());
                    thread::spawn(move || serve(stream, &seen, &*routes));
                }
            });
        }
        Site {
            port,
            seen,
            connections,
            stop,
        }
    }

    fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{target}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The targets received, in order.
    fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }

    /// The one request received for `target`.
    fn only(&self, target: &str) -> Seen {
        let mut hits: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| s.target == target)
            .collect();
        assert_eq!(hits.len(), 1, "requests for {target}: {:?}", self.targets());
        hits.remove(0)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request head; None at end of stream or on garbage.
fn read_head(reader: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(Seen {
        method,
        target,
        headers,
    })
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, routes: &Routes) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_head(&mut reader) {
        // No test sends a request body, but a POST without one still comes
        // chunked (ureq): read its last chunk, or it would be taken for the
        // next request line, and the connection closed under the client.
        if request
            .headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let mut chunk = String::new();
            while reader.read_line(&mut chunk).is_ok_and(|n| n > 0) && chunk.trim() != "" {
                chunk.clear();
            }
        }
        seen.lock().unwrap().push(request.clone());
        let reply = routes(&request);
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status).into_bytes();
        for (name, value) in &reply.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let body: &[u8] = if request.method == "HEAD" {
            b""
        } else {
            &reply.body
        };
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", reply.body.len()).as_bytes());
        out.extend_from_slice(body);
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// A `CONNECT` proxy on 127.0.0.1: records each request head it gets and
/// relays a tunnel to the requested port of 127.0.0.1 (nowhere else).
struct TunnelProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl TunnelProxy {
    fn start() -> TunnelProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        {
            let (seen, connections) = (seen.clone(), connections.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let seen = seen.clone();
                    thread::spawn(move || tunnel(stream, &seen));
                }
            });
        }
        TunnelProxy {
            port,
            seen,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The request lines received, as `METHOD target`.
    fn lines(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }
}

fn tunnel(stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let Ok(mut client) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let Some(request) = read_head(&mut reader) else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    let port = request
        .target
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    let (true, Some(port)) = (request.method == "CONNECT", port) else {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    // Bytes the reader already buffered belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    if upstream.write_all(&buffered).is_err() {
        return;
    }
    let Ok(mut upstream_reader) = upstream.try_clone() else {
        return;
    };
    let down = thread::spawn(move || {
        let _ = io::copy(&mut upstream_reader, &mut client);
        let _ = client.shutdown(Shutdown::Write);
    });
    let mut client_reader = reader.into_inner();
    let _ = io::copy(&mut client_reader, &mut upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = down.join();
}

/// Runs fetchpool with `--json` and quick deadlines on `urls`, with `env`
/// set in the child only; returns the results in input order and the run.
fn fetch(env: &[(&str, &str)], flags: &[&str], urls: &[String]) -> (Vec<Value>, crate::Run) {
    let mut args: Vec<String> = ["--json", "--ordered", "-m", "5", "--connect-timeout", "2"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(flags.iter().map(|s| (*s).to_owned()));
    args.extend(urls.iter().cloned());
    let mut cmd = command(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Running::spawn(cmd, None).finish();
    let results = run.results();
    assert_eq!(results.len(), urls.len(), "stderr:\n{}", run.stderr);
    (results, run)
}

fn message(r: &Value) -> &str {
    r["error"]["message"].as_str().unwrap_or("")
}

#[test]
fn locations_resolve_against_the_request_url_on_one_connection() {
    let site = Site::start(|req| {
        let port = req.headers.get("host").cloned().unwrap_or_default();
        match req.target.as_str() {
            "/a/b" => Reply::redirect(302, Some(b"?page=2")),
            "/a/b?page=2" => Reply::redirect(301, Some(b"../../../../x")),
            "/x" => Reply::redirect(307, Some(format!("//{port}/p#frag").as_bytes())),
            "/p" => Reply::redirect(308, Some(b"c/./d/../e?q=%41 b")),
            "/c/e?q=%41%20b" => Reply::ok("done"),
            _ => Reply {
                status: 404,
                ..Reply::ok("")
            },
        }
    });
    let (results, run) = fetch(&[], &[], &[site.url("/a/b")]);
    run.assert_code(0);
    let r = &results[0];
    assert_eq!(
        site.targets(),
        ["/a/b", "/a/b?page=2", "/x", "/p", "/c/e?q=%41%20b"]
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["bytes"], 4, "{r}");
    assert_eq!(r["final_url"], site.url("/c/e?q=%41%20b"), "{r}");
    assert_eq!(r["url"], site.url("/a/b"), "{r}");
    // Each redirect body was drained: the connection was reused.
    assert_eq!(site.connections(), 1);
}

#[test]
fn no_redirect_no_final_url_and_zero_max_returns_the_3xx() {
    let site = Site::start(|req| match req.target.as_str() {
        "/r" => Reply::redirect(302, Some(b"/ok")),
        "/304" => Reply::redirect(304, Some(b"/ok")),
        _ => Reply::ok("ok"),
    });
    let (results, _) = fetch(&[], &[], &[site.url("/ok"), site.url("/304")]);
    assert!(results[0]["final_url"].is_null(), "{}", results[0]);
    // 304 is not a redirect to follow, whatever its Location says.
    assert_eq!(results[1]["status"], 304);
    assert!(results[1]["final_url"].is_null(), "{}", results[1]);
    let (results, run) = fetch(&[], &["--max-redirects", "0"], &[site.url("/r")]);
    run.assert_code(0);
    let r = &results[0];
    assert_eq!(r["status"], 302, "{r}");
    assert!(r["error"].is_null() && r["final_url"].is_null(), "{r}");
    // The first two were fetched at once, in either order.
    let mut targets = site.targets();
    targets[..2].sort();
    assert_eq!(targets, ["/304", "/ok", "/r"]);
}

#[test]
fn too_many_redirects_is_an_error_naming_the_flag() {
    let site = Site::start(|_| Reply::redirect(302, Some(b"/loop")));
    let (results, run) = fetch(&[], &["--max-redirects", "2"], &[site.url("/start")]);
    run.assert_code(1);
    let r = &results[0];
    assert_eq!(kind(r), Some("redirects"), "{r}");
    assert_eq!(r["status"], 302, "{r}");
    assert_eq!(message(r), "more than 2 redirects (--max-redirects)");
    assert_eq!(r["final_url"], site.url("/loop"), "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    assert_eq!(site.targets(), ["/start", "/loop", "/loop"]);
}

#[test]
fn only_http_and_https_targets_are_followed() {
    // A Latin-1 Location is followed, percent-encoded (tests/cli/framing.rs).
    let cases: [(&str, Option<&[u8]>, &str); 9] = [
        ("/file", Some(b"file:///etc/passwd"), "file:///etc/passwd"),
        ("/js", Some(b"javascript:alert(1)"), "javascript:alert(1)"),
        ("/data", Some(b"data:text/html,hi"), "data:text/html,hi"),
        (
            "/unix",
            Some(b"unix:/run/docker.sock"),
            "unix:/run/docker.sock",
        ),
        (
            "/ftp",
            Some(b"ftp://u:hunter2@127.0.0.1/"),
            "ftp://u:***@127.0.0.1/",
        ),
        ("/empty", Some(b""), "empty Location"),
        ("/missing", None, "without a Location"),
        ("/port", Some(b"http://127.0.0.1:99999/"), "127.0.0.1:99999"),
        ("/v6", Some(b"http://[::1/"), "[::1"),
    ];
    let table: HashMap<String, Option<Vec<u8>>> = cases
        .iter()
        .map(|(p, l, _)| ((*p).to_owned(), l.map(<[u8]>::to_vec)))
        .collect();
    let site = Site::start(move |req| match table.get(&req.target) {
        Some(location) => Reply::redirect(303, location.as_deref()),
        None => Reply::ok("followed"),
    });
    let urls: Vec<String> = cases.iter().map(|(p, _, _)| site.url(p)).collect();
    let (results, run) = fetch(&[], &[], &urls);
    run.assert_code(1);
    for ((path, _, needle), r) in cases.iter().zip(&results) {
        assert_eq!(kind(r), Some("redirects"), "{path}: {r}");
        assert_eq!(r["status"], 303, "{path}: {r}");
        assert!(message(r).contains(needle), "{path}: {r}");
        assert!(r["final_url"].is_null(), "{path}: {r}");
    }
    run.assert_absent("hunter2");
    // Nothing was followed: each path was asked for once, and nothing else.
    let mut targets = site.targets();
    targets.sort();
    let mut expected: Vec<String> = cases.iter().map(|(p, _, _)| (*p).to_owned()).collect();
    expected.sort();
    assert_eq!(targets, expected);
}

#[test]
fn hostile_locations_never_reach_the_terminal_raw() {
    let long = format!("/{}", "a".repeat(9000));
    let long_location = long.clone().into_bytes();
    let site = Site::start(move |req| match req.target.as_str() {
        "/bidi-host" => Reply::redirect(302, Some("http://exa\u{202e}lpmxe.com/".as_bytes())),
        "/bidi-path" => Reply::redirect(302, Some("/\u{202e}gpj.exe".as_bytes())),
        "/long" => Reply::redirect(302, Some(&long_location)),
        "/creds" => Reply::redirect(302, Some(b"http://user:hunter2@127.0.0.1:0/")),
        "/backslash" => Reply::redirect(302, Some(b"\\\\127.0.0.1:1\\x")),
        _ => Reply::ok("ok"),
    });
    let urls: Vec<String> = ["/bidi-host", "/bidi-path", "/long", "/creds"]
        .iter()
        .map(|p| site.url(p))
        .collect();
    let mut args = vec!["-m".to_owned(), "5".to_owned()];
    args.extend(urls.iter().cloned());
    let text = run(&args);
    for out in [text.stdout_text(), text.stderr.clone()] {
        assert!(!out.contains('\u{202e}'), "{out}");
        assert!(!out.contains("hunter2"), "{out}");
    }
    let (results, _) = fetch(&[], &[], &urls);
    assert_eq!(kind(&results[0]), Some("redirects"), "{}", results[0]);
    assert!(message(&results[0]).contains("\\u{202e}"), "{}", results[0]);
    // In a path it is percent-encoded, as browsers send it.
    assert_eq!(results[1]["status"], 200, "{}", results[1]);
    assert_eq!(
        results[1]["final_url"],
        site.url("/%E2%80%AEgpj.exe"),
        "{}",
        results[1]
    );
    assert_eq!(results[2]["status"], 200, "{}", results[2]);
    assert!(site.targets().contains(&long), "long target not received");
    assert_eq!(kind(&results[3]), Some("redirects"), "{}", results[3]);
    assert!(message(&results[3]).contains("user:***@"), "{}", results[3]);
    // `\\host` is `//host` to a browser: another host, followed (and here refused).
    let (results, _) = fetch(&[], &["--retries", "0"], &[site.url("/backslash")]);
    assert_eq!(kind(&results[0]), Some("connect"), "{}", results[0]);
    assert_eq!(results[0]["final_url"], "http://127.0.0.1:1/x");
}

#[test]
fn methods_change_as_in_browsers() {
    let site = Site::start(|req| match req.target.as_str() {
        "/303" => Reply::redirect(303, Some(b"/after303")),
        "/301" => Reply::redirect(301, Some(b"/after301")),
        "/302" => Reply::redirect(302, Some(b"/after302")),
        "/307" => Reply::redirect(307, Some(b"/after307")),
        "/308" => Reply::redirect(308, Some(b"/after308")),
        _ => Reply::ok("ok"),
    });
    let urls: Vec<String> = ["/303", "/301", "/302", "/307", "/308"]
        .iter()
        .map(|p| site.url(p))
        .collect();
    let flags = ["-X", "POST", "-H", "Content-Type: text/plain"];
    let (results, _) = fetch(&[], &flags, &urls);
    for r in &results {
        assert_eq!(r["status"], 200, "{r}");
    }
    for (target, method, content_type) in [
        ("/after303", "GET", None),
        ("/after301", "GET", None),
        ("/after302", "GET", None),
        ("/after307", "POST", Some("text/plain")),
        ("/after308", "POST", Some("text/plain")),
    ] {
        let seen = site.only(target);
        assert_eq!(seen.method, method, "{target}");
        assert_eq!(
            seen.headers.get("content-type").map(String::as_str),
            content_type,
            "{target}"
        );
    }
    let (_, _) = fetch(&[], &["-X", "PUT"], &[site.url("/302")]);
    let (_, _) = fetch(&[], &["-X", "HEAD"], &[site.url("/303")]);
    let methods: Vec<String> = site
        .seen()
        .into_iter()
        .filter(|s| s.target == "/after302" || s.target == "/after303")
        .map(|s| s.method)
        .collect();
    assert_eq!(methods, ["GET", "GET", "PUT", "HEAD"]);
}

#[test]
fn credentials_go_only_to_the_origin_given() {
    let other = Site::start(|_| Reply::ok("other"));
    let other_url = other.url("/landing");
    let site = Site::start(move |req| match req.target.as_str() {
        "/start" => Reply::redirect(302, Some(b"/same")),
        "/same" => Reply::redirect(302, Some(other_url.as_bytes())),
        _ => Reply::ok("ok"),
    });
    let url = format!("http://u:hunter2@127.0.0.1:{}/start", site.port);
    let flags = ["-H", "Cookie: c=secret", "-H", "X-Other: kept"];
    let (results, run) = fetch(&[], &flags, &[url]);
    run.assert_code(0);
    let r = &results[0];
    assert_eq!(r["final_url"], other.url("/landing"), "{r}");
    assert_eq!(
        r["url"],
        format!("http://u:***@127.0.0.1:{}/start", site.port)
    );
    for target in ["/start", "/same"] {
        let seen = site.only(target);
        // base64("u:hunter2")
        assert_eq!(
            seen.headers.get("authorization").map(String::as_str),
            Some("Basic dTpodW50ZXIy"),
            "{target}"
        );
        assert_eq!(
            seen.headers.get("cookie").map(String::as_str),
            Some("c=secret")
        );
    }
    let landed = other.only("/landing");
    assert_eq!(landed.headers.get("authorization"), None, "{landed:?}");
    assert_eq!(landed.headers.get("cookie"), None, "{landed:?}");
    assert_eq!(
        landed.headers.get("x-other").map(String::as_str),
        Some("kept")
    );
    run.assert_absent("hunter2");
}

#[test]
fn http_proxy_is_used_for_http_urls_unless_no_proxy_says() {
    let site = Site::start(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let urls: Vec<String> = (0..3).map(|i| site.url(&format!("/p{i}"))).collect();
    let (results, run) = fetch(&[("http_proxy", &proxy.url())], &["-j", "1"], &urls);
    run.assert_code(0);
    for r in &results {
        assert_eq!(r["status"], 200, "{r}");
    }
    // ureq tunnels plain http too: CONNECT, then the request inside.
    assert_eq!(proxy.lines(), [format!("CONNECT 127.0.0.1:{}", site.port)]);
    assert_eq!(site.targets(), ["/p0", "/p1", "/p2"]);
    // One tunnel, kept alive for all three requests.
    assert_eq!(proxy.connections.load(Ordering::SeqCst), 1);

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
    let site = Site::start(|_| Reply::ok("ok"));
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
    let site = Site::start(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let url = format!("https://127.0.0.1:{}/tls", site.port);
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
    let connect = format!("CONNECT 127.0.0.1:{}", site.port);
    assert_eq!(proxy.lines(), [connect.clone(), connect]);
}

#[test]
fn proxy_flags_override_the_environment() {
    let site = Site::start(|_| Reply::ok("ok"));
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
fn proxy_credentials_are_sent_to_the_proxy_and_shown_nowhere() {
    let site = Site::start(|_| Reply::ok("ok"));
    let proxy = TunnelProxy::start();
    let with_creds = format!("http://user:hunter2@127.0.0.1:{}", proxy.port);
    let (results, run) = fetch(&[("http_proxy", &with_creds)], &[], &[site.url("/x")]);
    run.assert_code(0);
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    let seen = &proxy.seen()[0];
    // base64("user:hunter2")
    assert_eq!(
        seen.headers.get("proxy-authorization").map(String::as_str),
        Some("Basic dXNlcjpodW50ZXIy")
    );
    assert_eq!(site.only("/x").headers.get("proxy-authorization"), None);

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

    let socks = "socks5://user:hunter2@127.0.0.1:1080";
    let mut cmd = command(["--json", &site.url("/z")]);
    cmd.env("all_proxy", socks);
    let bad = Running::spawn(cmd, None).finish();
    bad.assert_code(2);
    assert!(bad.stderr.contains("all_proxy"), "{}", bad.stderr);
    bad.assert_absent("hunter2");
    assert_eq!(site.targets(), ["/x"]);
}

#[test]
fn redirects_are_routed_hop_by_hop() {
    // The first host goes through the proxy, the second is in no_proxy.
    let direct = Site::start(|_| Reply::ok("direct"));
    let direct_url = format!("http://localhost:{}/end", direct.port);
    let site = Site::start(move |_| Reply::redirect(302, Some(direct_url.as_bytes())));
    let proxy = TunnelProxy::start();
    let env = [
        ("http_proxy", proxy.url()),
        ("no_proxy", "localhost".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // localhost may resolve to ::1 first; the site listens on 127.0.0.1 only.
    let (results, _) = fetch(&env, &[], &[site.url("/start")]);
    let r = &results[0];
    assert_eq!(
        proxy.lines(),
        [format!("CONNECT 127.0.0.1:{}", site.port)],
        "{r}"
    );
    assert_eq!(site.targets(), ["/start"]);
    assert_eq!(
        r["final_url"],
        format!("http://localhost:{}/end", direct.port)
    );
    if r["status"] == 200 {
        assert_eq!(direct.targets(), ["/end"]);
    }
}
