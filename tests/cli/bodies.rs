//! Request bodies, methods and basic auth, as a recording server saw them:
//! the method, the headers, the body and its framing.

use crate::run;
use crate::server::{Framing, Reply, Request, TestServer};
use crate::support::single_request;

/// A server that answers 200 `ok`, and redirects `/rNNN` to `/landed`
/// with status NNN (`/rNNN?to=URL`: to that URL).
fn site() -> TestServer {
    TestServer::routed(|r: &Request| {
        let path = r.target.split('?').next().unwrap_or("");
        match path.strip_prefix("/r").and_then(|s| s.parse::<u16>().ok()) {
            Some(status) => {
                let to = r
                    .target
                    .split_once("?to=")
                    .map_or("/landed".to_owned(), |(_, to)| to.to_owned());
                Reply::redirect(status, Some(to.as_bytes()))
            }
            None => Reply::ok(b"ok"),
        }
    })
}

#[test]
fn data_is_a_post_with_content_length_and_a_form_type() {
    let server = site();
    let out = run(&["--json", "-d", "a=1&b=2", &server.url("/form")]);
    out.assert_code(0);
    let r = single_request(&server);
    assert_eq!(r.method, "POST");
    assert_eq!(r.body, b"a=1&b=2");
    assert_eq!(r.framing, Framing::Length(7));
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn body_files_are_read_once_and_sent_to_every_url() {
    let server = site();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, "x=1\r\ny=2\n").unwrap();
    let at = format!("@{}", file.display());
    run(&["-q", "-d", &at, &server.url("/a"), &server.url("/b")]).assert_code(0);
    run(&["-q", "--data-binary", &at, &server.url("/c")]).assert_code(0);
    let all = server.requests();
    assert_eq!(all.len(), 3);
    for r in &all[..2] {
        assert_eq!(r.body, b"x=1y=2", "{r:?}");
    }
    assert_eq!(all[2].body, b"x=1\r\ny=2\n");
    assert_eq!(all[2].header("content-length"), Some("9"));
    let missing = run(&["-d", "@/nonexistent/body", &server.url("/")]);
    missing.assert_code(2);
    assert!(
        missing
            .stderr
            .contains("--data: cannot read /nonexistent/body"),
        "{}",
        missing.stderr
    );
}

#[test]
fn json_body_sets_json_types_and_h_wins() {
    let server = site();
    run(&["-q", "--json-body", "{\"a\":1}", &server.url("/j")]).assert_code(0);
    run(&[
        "-q",
        "-H",
        "content-type: text/plain",
        "-X",
        "PUT",
        "-d",
        "hi",
        &server.url("/t"),
    ])
    .assert_code(0);
    let all = server.requests();
    assert_eq!(all[0].method, "POST");
    assert_eq!(all[0].body, b"{\"a\":1}");
    assert_eq!(all[0].header("content-type"), Some("application/json"));
    assert_eq!(all[0].header("accept"), Some("application/json"));
    assert_eq!(all[1].method, "PUT");
    let types: Vec<_> = all[1]
        .headers
        .iter()
        .filter(|(n, _)| n == "content-type")
        .collect();
    assert_eq!(types.len(), 1, "{:?}", all[1].headers);
    assert_eq!(all[1].header("content-type"), Some("text/plain"));
}

#[test]
fn bodyless_post_put_patch_send_content_length_zero() {
    let server = site();
    for method in ["POST", "PUT", "PATCH"] {
        run(&["-q", "-X", method, &server.url("/")]).assert_code(0);
    }
    run(&["-q", &server.url("/")]).assert_code(0);
    let all = server.requests();
    for r in &all[..3] {
        assert_eq!(r.framing, Framing::Length(0), "{r:?}");
        assert_eq!(r.header("content-length"), Some("0"), "{r:?}");
        assert_eq!(r.header("transfer-encoding"), None, "{r:?}");
    }
    assert_eq!(all[3].method, "GET");
    assert_eq!(all[3].framing, Framing::None);
}

#[test]
fn any_method_token_is_sent_as_given() {
    let server = site();
    let out = run(&["--json", "-X", "PROPFIND", &server.url("/dav")]);
    out.assert_code(0);
    assert_eq!(out.single()["status"], 200);
    run(&["-q", "-X", "purge", "-d", "x", &server.url("/p")]).assert_code(0);
    run(&["-q", "-X", "DELETE", &server.url("/d")]).assert_code(0);
    let all = server.requests();
    assert_eq!(all[0].method, "PROPFIND");
    assert_eq!(all[0].header("content-length"), None);
    assert_eq!(all[1].method, "PURGE");
    assert_eq!(all[1].body, b"x");
    assert_eq!(all[2].method, "DELETE");
    for bad in [&["-X", "CONNECT"][..], &["-X", "HEAD", "-d", "x"]] {
        let mut args = bad.to_vec();
        let url = server.url("/");
        args.push(&url);
        let out = run(&args);
        out.assert_code(2);
        assert!(
            out.stderr.starts_with("fetchpool: error: "),
            "{}",
            out.stderr
        );
    }
    assert_eq!(server.requests().len(), 3, "a usage error sent something");
}

#[test]
fn redirects_change_the_method_as_curl_does() {
    let server = site();
    for status in [301, 302, 303, 307, 308] {
        let url = server.url(&format!("/r{status}"));
        run(&["-q", "-d", "k=v", &url]).assert_code(0);
    }
    let all = server.requests();
    assert_eq!(all.len(), 10);
    for (pair, status) in all.chunks(2).zip([301, 302, 303, 307, 308]) {
        assert_eq!(pair[0].method, "POST");
        assert_eq!(pair[0].body, b"k=v");
        let next = &pair[1];
        if status < 307 {
            assert_eq!(next.method, "GET", "{status}");
            assert!(next.body.is_empty(), "{status}");
            assert_eq!(next.header("content-type"), None, "{status}");
            assert_eq!(next.header("content-length"), None, "{status}");
        } else {
            assert_eq!(next.method, "POST", "{status}");
            assert_eq!(next.body, b"k=v", "{status}");
            assert_eq!(next.header("content-length"), Some("3"), "{status}");
        }
    }
    // A PUT keeps its method and body on a 302, loses both on a 303.
    run(&["-q", "-X", "PUT", "-d", "z", &server.url("/r302")]).assert_code(0);
    run(&["-q", "-X", "PUT", "-d", "z", &server.url("/r303")]).assert_code(0);
    let all = server.requests();
    assert_eq!(
        (all[11].method.as_str(), &all[11].body[..]),
        ("PUT", &b"z"[..])
    );
    assert_eq!(
        (all[13].method.as_str(), &all[13].body[..]),
        ("GET", &b""[..])
    );
}

#[test]
fn basic_auth_goes_to_the_origin_only_and_is_never_shown() {
    let other = site();
    let server = site();
    let away = format!("/r307?to={}", other.url("/x"));
    // -u wins over credentials in the URL.
    let with_userinfo = server.url("/r302").replace("http://", "http://bob:url-pw@");
    let out = run(&[
        "--json",
        "-v",
        "-u",
        "alice:s3cr3t-pw",
        &with_userinfo,
        &server.url(&away),
    ]);
    out.assert_code(0);
    out.assert_absent("s3cr3t-pw");
    out.assert_absent("url-pw");
    out.assert_absent("YWxpY2U6czNjcjN0LXB3");
    let expected = "Basic YWxpY2U6czNjcjN0LXB3";
    let here = server.requests();
    assert_eq!(here.len(), 3);
    for r in &here {
        assert_eq!(r.header("authorization"), Some(expected), "{r:?}");
    }
    assert_eq!(single_request(&other).header("authorization"), None);
    let no_tty = run(&["-u", "alice", &server.url("/")]);
    no_tty.assert_code(2);
    assert!(
        no_tty.stderr.contains("stdin is not a terminal"),
        "{}",
        no_tty.stderr
    );
}
