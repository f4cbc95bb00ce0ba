//! `--names`: the tree and flat layouts under `-o DIR`, hostile paths kept
//! inside DIR, collisions told apart in input order, and `--update` with
//! each layout.

use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::run;
use crate::server::{TestServer, echo_body};

/// Runs `urls` with `-o dir --names layout --json --sha256` and returns
/// each entry's `saved_to`, in input order, after checking every file
/// holds the bytes its hash names and lies inside `dir`.
fn saved(dir: &Path, layout: &str, urls: &[String], extra: &[&str]) -> Vec<String> {
    let d = dir.to_str().unwrap();
    let mut args: Vec<String> = [
        "--json",
        "--sha256",
        "--ordered",
        "-j",
        "4",
        "-o",
        d,
        "--names",
        layout,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.extend(urls.iter().cloned());
    let out = run(&args);
    out.assert_code(0);
    let inside = fs::canonicalize(dir).unwrap();
    out.results()
        .iter()
        .map(|r| {
            let path = r["saved_to"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned();
            let bytes = fs::read(&path).unwrap();
            let hash: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(r["sha256"].as_str(), Some(hash.as_str()), "{r}");
            assert!(
                fs::canonicalize(&path).unwrap().starts_with(&inside),
                "{path}"
            );
            path.strip_prefix(d)
                .unwrap()
                .trim_start_matches('/')
                .to_owned()
        })
        .collect()
}

#[test]
fn tree_names_follow_host_port_and_path() {
    let server = TestServer::start();
    server.serve_any();
    let dir = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1_{}", server.port());
    let urls: Vec<String> = ["/a/b.txt", "/a/", "/", "/x?q=1", "/a%20b/c"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let names = saved(dir.path(), "tree", &urls, &[]);
    let want: Vec<String> = ["a/b.txt", "a/index.html", "index.html", "x?q=1", "a b/c"]
        .iter()
        .map(|n| format!("{host}/{n}"))
        .collect();
    assert_eq!(names, want);
    let body = fs::read(dir.path().join(&want[0])).unwrap();
    assert_eq!(body, echo_body("/a/b.txt"));
}

#[test]
fn flat_names_never_overwrite_within_a_run() {
    let server = TestServer::start();
    server.serve_any();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = ["/x/a.txt", "/y/a.txt", "/z/a-2.txt", "/x/a.txt", "/w/"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let names = saved(dir.path(), "flat", &urls, &[]);
    assert_eq!(
        names,
        ["a.txt", "a-2.txt", "a-2-2.txt", "a-3.txt", "index.html"]
    );
    // Each file holds its own URL's body, whatever order the workers took.
    for (url, name) in urls.iter().zip(&names) {
        let path = url.split_once(&format!(":{}", server.port())).unwrap().1;
        assert_eq!(
            fs::read(dir.path().join(name)).unwrap(),
            echo_body(path),
            "{name}"
        );
    }
}

#[test]
fn hostile_paths_stay_inside_dir() {
    let server = TestServer::start();
    server.serve_any();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let long = "a".repeat(400);
    let hostile = [
        "/%2e%2e/%2e%2e/escape".to_owned(),
        "/..%2f..%2fescape".to_owned(),
        "/%2e%2e%2fescape".to_owned(),
        "/a/%00/%0a%1b[31m".to_owned(),
        "/.fetchpool-meta-x".to_owned(),
        "/CON".to_owned(),
        format!("/{long}/{long}.txt"),
    ];
    let urls: Vec<String> = hostile.iter().map(|p| server.url(p)).collect();
    for layout in ["tree", "flat"] {
        let names = saved(&dir, layout, &urls, &[]);
        for name in &names {
            for part in name.split('/') {
                assert!(
                    !part.starts_with('.') && part.len() <= 200,
                    "{layout}: {name}"
                );
            }
        }
    }
    // Nothing was written beside DIR.
    let beside: Vec<_> = fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);
}
