//! `--compressed`: what is asked for, what is decoded, and what is counted,
//! hashed, saved and limited (the decoded body; `wire_bytes` as sent).

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::run;
use crate::server::{Reply, Request, TestServer};
use crate::support::single_request;

const TEXT: &[u8] = b"the same line, again and again, compresses well\n";

fn text() -> Vec<u8> {
    TEXT.repeat(100)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A brotli stream of one uncompressed meta-block (RFC 7932, 9.2).
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    let m = data.len() - 1;
    let mut out = vec![
        ((m & 0xf) << 4) as u8,
        ((m >> 4) & 0xff) as u8,
        0x10 | ((m >> 12) & 0xf) as u8,
    ];
    out.extend_from_slice(data);
    out.push(0x03);
    out
}

/// The coding and encoded body of `path`: `/gzip`, `/deflate`, `/br`,
/// `/zstd` are [`text`] so encoded; `/bomb` is 10 MB of zeros gzipped;
/// `/broken` claims gzip and is not; anything else is [`text`] as it is.
fn encoded(path: &str) -> Option<(&'static str, Vec<u8>)> {
    let body = text();
    Some(match path {
        "/gzip" => ("gzip", gzip(&body)),
        "/deflate" => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
            z.write_all(&body).unwrap();
            ("deflate", z.finish().unwrap())
        }
        "/br" => ("br", brotli_stored(&body)),
        "/zstd" => (
            "zstd",
            ruzstd::encoding::compress_to_vec(
                &body[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        ),
        "/bomb" => ("gzip", gzip(&vec![0; 10_000_000])),
        "/broken" => ("gzip", b"this is not gzip".to_vec()),
        _ => return None,
    })
}

/// Answers with [`encoded`], whatever the request asked for. The bodies
/// are encoded here, once: the encoders need more stack than the server's
/// connection threads have.
fn server() -> TestServer {
    let paths = ["/gzip", "/deflate", "/br", "/zstd", "/bomb", "/broken"];
    let bodies: std::collections::HashMap<&str, (&str, Vec<u8>)> = paths
        .iter()
        .filter_map(|p| Some((*p, encoded(p)?)))
        .collect();
    TestServer::routed(move |r: &Request| match bodies.get(r.target.as_str()) {
        Some((coding, wire)) => Reply::ok(wire.clone()).header("Content-Encoding", coding),
        None => Reply::ok(text()),
    })
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn each_coding_is_asked_for_and_decoded() {
    let server = server();
    let paths = ["/gzip", "/deflate", "/br", "/zstd", "/plain"];
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let mut args = vec!["--json", "--sha256", "--ordered", "--compressed"];
    args.extend(urls.iter().map(String::as_str));
    let out = run(&args);
    out.assert_code(0);
    let expected = hex(&text());
    for (r, path) in out.results().iter().zip(paths) {
        assert_eq!(r["bytes"], text().len(), "{path}: {r}");
        assert_eq!(r["sha256"], expected.as_str(), "{path}");
        let wire = encoded(path).map_or(text().len(), |(_, w)| w.len());
        assert_eq!(r["wire_bytes"], wire, "{path}: {r}");
    }
    for r in server.requests() {
        assert_eq!(r.header("accept-encoding"), Some("gzip, deflate, br, zstd"));
    }
}

#[test]
fn without_compressed_nothing_is_asked_or_decoded() {
    let server = server();
    let out = run(&["--json", "--sha256", &server.url("/gzip")]);
    out.assert_code(0);
    let r = out.single();
    let wire = gzip(&text());
    assert_eq!(r["bytes"], wire.len());
    assert_eq!(r["wire_bytes"], wire.len());
    assert_eq!(r["sha256"], hex(&wire).as_str());
    assert_eq!(single_request(&server).header("accept-encoding"), None);
}

#[test]
fn saved_files_hold_the_decoded_body() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--json",
        "--compressed",
        "-o",
        dir.path().to_str().unwrap(),
        &server.url("/br"),
    ]);
    out.assert_code(0);
    let saved = out.single()["saved_to"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read(saved).unwrap(), text());
}

#[test]
fn a_decompression_bomb_stops_at_max_size_and_bad_data_is_protocol() {
    let server = server();
    let out = run(&[
        "--compressed",
        "--max-size",
        "1M",
        "--format",
        "{bytes} {wire_bytes} {error}",
        &server.url("/bomb"),
        &server.url("/broken"),
    ]);
    out.assert_code(1);
    let lines = out.lines();
    let bomb = lines.iter().find(|l| l.contains("too_large")).unwrap();
    let fields: Vec<&str> = bomb.split(' ').collect();
    assert_eq!(fields[0].parse::<u64>().unwrap(), (1 << 20) + 1, "{bomb}");
    assert!(fields[1].parse::<u64>().unwrap() < 20_000, "{bomb}");
    let broken = lines.iter().find(|l| l.contains("protocol")).unwrap();
    assert!(broken.contains("does not decode"), "{broken}");
}
