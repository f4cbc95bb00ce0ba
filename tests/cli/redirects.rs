//! Redirects followed by fetchpool itself: resolution, methods, schemes,
//! limits, hostile locations.

use std::collections::HashMap;

use crate::server::proxy::TunnelProxy;
use crate::server::{Reply, TestServer};
use crate::support::{fetch, fetch_one, json_args, json_run, message, url_of};
use crate::{kind, run};

#[test]
fn redirects_are_followed_and_final_url_is_set_only_then() {
    let server = TestServer::start();
    let run = run(&json_args(
        &[],
        &[server.url("/redirect/2"), server.url("/ok")],
    ));
    run.assert_code(0);
    let results = run.by_seq();
    let redirected = &results[&0];
    assert_eq!(redirected["status"], 200, "{redirected}");
    assert_eq!(redirected["bytes"], 3, "{redirected}");
    assert_eq!(redirected["final_url"], server.url("/ok"), "{redirected}");
    assert_eq!(url_of(redirected), server.url("/redirect/2"));
    assert!(results[&1]["final_url"].is_null(), "{}", results[&1]);
    assert_eq!(server.hits("/redirect/2"), 1);
    assert_eq!(server.hits("/redirect/1"), 1);
}

#[test]
fn self_redirect_stops_at_max_redirects() {
    let server = TestServer::start();
    let url = server.url("/fault/self-redirect");
    let r = fetch_one(&url, &["--max-redirects", "3"]);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(kind(&r), Some("redirects"), "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    // The spec is silent on the status here: the last 3xx, or none.
    assert!(matches!(r["status"].as_u64(), None | Some(302)), "{r}");
    assert!(server.hits("/fault/self-redirect") <= 4);
}

#[test]
fn a_redirect_to_a_long_url_is_followed() {
    // The target's request line (about 20 KB) is longer than the request
    // that led to it: the output buffer has to grow on the way.
    let long = format!("/long?{}", "a".repeat(20_000));
    let location = long.clone();
    let server = TestServer::routed(move |req| {
        if req.target == "/start" {
            Reply::redirect(302, Some(location.as_bytes()))
        } else if req.target == location {
            Reply::ok("arrived\n")
        } else {
            Reply::status(404)
        }
    });
    let v = json_run(&[&server.url("/start")]).single();
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
fn hostile_locations_never_reach_the_terminal_raw() {
    let long = format!("/{}", "a".repeat(9000));
    let long_location = long.clone().into_bytes();
    let site = TestServer::routed(move |req| match req.target.as_str() {
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
fn locations_resolve_against_the_request_url_on_one_connection() {
    let site = TestServer::routed(|req| {
        let port = req.header("host").unwrap_or_default().to_owned();
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
fn methods_change_as_in_browsers() {
    let site = TestServer::routed(|req| match req.target.as_str() {
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
        assert_eq!(seen.header("content-type"), content_type, "{target}");
    }
    let (_, _) = fetch(&[], &["-X", "PUT"], &[site.url("/302")]);
    let (_, _) = fetch(&[], &["-X", "HEAD"], &[site.url("/303")]);
    let methods: Vec<String> = site
        .requests()
        .into_iter()
        .filter(|s| s.target == "/after302" || s.target == "/after303")
        .map(|s| s.method)
        .collect();
    assert_eq!(methods, ["GET", "GET", "PUT", "HEAD"]);
}

#[test]
fn no_redirect_no_final_url_and_zero_max_returns_the_3xx() {
    let site = TestServer::routed(|req| match req.target.as_str() {
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
    let site = TestServer::routed(move |req| match table.get(&req.target) {
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
fn redirects_are_routed_hop_by_hop() {
    // The first host goes through the proxy, the second is in no_proxy.
    let direct = TestServer::routed(|_| Reply::ok("direct"));
    let direct_url = format!("http://localhost:{}/end", direct.port());
    let site = TestServer::routed(move |_| Reply::redirect(302, Some(direct_url.as_bytes())));
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
        [format!("CONNECT 127.0.0.1:{}", site.port())],
        "{r}"
    );
    assert_eq!(site.targets(), ["/start"]);
    assert_eq!(
        r["final_url"],
        format!("http://localhost:{}/end", direct.port())
    );
    if r["status"] == 200 {
        assert_eq!(direct.targets(), ["/end"]);
    }
}

#[test]
fn too_many_redirects_is_an_error_naming_the_flag() {
    let site = TestServer::routed(|_| Reply::redirect(302, Some(b"/loop")));
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
fn two_different_locations_are_protocol_and_one_repeated_is_followed() {
    let server = TestServer::routed(|req| match req.path() {
        "/two" => Reply::redirect(302, Some(b"/a")).header("Location", "/b"),
        "/same" => Reply::redirect(302, Some(b"/a")).header("Location", "/a"),
        _ => Reply::ok("arrived\n"),
    });
    let r = fetch_one(&server.url("/two"), &[]);
    assert_eq!(kind(&r), Some("protocol"), "{r}");
    assert!(message(&r).contains("two different Location"), "{r}");
    let r = fetch_one(&server.url("/same"), &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(server.targets(), ["/two", "/same", "/a"]);
}

#[test]
fn a_latin1_location_is_percent_encoded_and_followed() {
    // As browsers and curl do (curl writes %e9: the same URL).
    let server = TestServer::routed(|req| match req.path() {
        "/start" => Reply::redirect(302, Some(b"/caf\xe9")),
        _ => Reply::ok("arrived\n"),
    });
    let r = fetch_one(&server.url("/start"), &[]);
    assert_eq!(r["ok"], true, "{r}");
    let final_url = r["final_url"].as_str().unwrap_or("");
    assert!(final_url.ends_with("/caf%E9"), "{r}");
    assert_eq!(server.targets(), ["/start", "/caf%E9"]);
}
