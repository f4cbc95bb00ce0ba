//! The chaotic server of the invariant checker: two hosts (two ports on
//! 127.0.0.1) answering each request at random (whole bodies of three
//! framings, slow ones, statuses, pushback, redirects, cut bodies, resets,
//! garbage, hangs), each path's body and `ETag` changing now and then, and
//! a record of every body sent whole.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sha;
use crate::raw::{RawServer, Req, Stopped, Then, respond};

/// What the chaotic server shares between its two hosts.
pub struct Chaos {
    rng: Mutex<fastrand::Rng>,
    full: bool,
    /// Each path's current version (its body and ETag).
    versions: Mutex<HashMap<String, u32>>,
    /// The SHA-256 of every body sent whole.
    pub whole: Mutex<HashSet<String>>,
    /// Both hosts' base URLs, for cross-host redirects.
    bases: Mutex<[String; 2]>,
}

/// The body of `path` at `version`: its length depends on the path only.
fn body_of(path: &str, version: u32) -> Vec<u8> {
    let len = path.bytes().map(usize::from).sum::<usize>() * 7 % 3000;
    format!("{path} v{version};")
        .bytes()
        .cycle()
        .take(len)
        .collect()
}

/// One answer being made: the request's path, its current body and ETag.
struct Answer<'a> {
    host: usize,
    req: &'a Req,
    etag: String,
    version: u32,
    body: Vec<u8>,
}

impl Chaos {
    fn pick(&self, weights: &[(u32, &'static str)]) -> &'static str {
        let total: u32 = weights.iter().map(|w| w.0).sum();
        let mut n = self.rng.lock().unwrap().u32(0..total);
        for &(w, name) in weights {
            if n < w {
                return name;
            }
            n -= w;
        }
        weights[0].1
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.lock().unwrap().f64() < p
    }

    fn sent_whole(&self, body: &[u8]) {
        self.whole.lock().unwrap().insert(sha(body));
    }

    /// A whole answer in one piece (its body is recorded as sent whole).
    fn send(
        &self,
        s: &mut TcpStream,
        status: u16,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> io::Result<Then> {
        self.sent_whole(body);
        respond(s, status, headers, body)
    }

    fn answer(
        &self,
        host: usize,
        req: &Req,
        s: &mut TcpStream,
        stop: &Stopped,
    ) -> io::Result<Then> {
        let mut weights = vec![
            (30, "ok"),
            (8, "chunked"),
            (5, "close"),
            (4, "slow"),
            (6, "404"),
            (6, "500"),
            (3, "503"),
            (2, "408"),
            (2, "204"),
            (5, "redirect"),
            (1, "loop"),
            (4, "cut"),
            (3, "reset"),
            (1, "garbage"),
        ];
        // Without FULL, no pushback: it slows its host down for seconds
        // (the adaptive rate), too long for the suite.
        if self.full {
            weights.extend([(1, "hang"), (3, "503ra"), (4, "429")]);
        }
        let version = {
            let mut v = self.versions.lock().unwrap();
            let e = v.entry(req.target.clone()).or_insert(0);
            if self.chance(0.1) {
                *e += 1;
            }
            *e
        };
        let a = Answer {
            host,
            req,
            etag: format!("\"{}-{version}\"", req.target.len()),
            version,
            body: body_of(&req.target, version),
        };
        match self.pick(&weights) {
            kind @ ("ok" | "chunked" | "close" | "slow") => self.body(kind, &a, s, stop),
            kind => self.other(kind, &a, s),
        }
    }

    /// A 200 with the path's body, whole, in one of several framings.
    fn body(&self, kind: &str, a: &Answer, s: &mut TcpStream, stop: &Stopped) -> io::Result<Then> {
        let etag = &a.etag;
        let validators = [
            ("ETag", etag.clone()),
            (
                "Last-Modified",
                format!("Tue, 01 Jul 2025 00:00:{:02} GMT", a.version % 60),
            ),
        ];
        if a.req.header("if-none-match") == Some(etag.as_str()) {
            return respond(s, 304, &validators[..1], b"");
        }
        self.sent_whole(&a.body);
        if let Some(from) = self.resumable(a) {
            let len = a.body.len();
            let range = format!("bytes {from}-{}/{len}", len - 1);
            return respond(
                s,
                206,
                &[("ETag", etag.clone()), ("Content-Range", range)],
                &a.body[from..],
            );
        }
        match kind {
            "ok" => respond(s, 200, &validators, &a.body),
            "chunked" => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nETag: {etag}\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .into_bytes();
                for piece in a.body.chunks(700) {
                    out.extend(format!("{:x}\r\n", piece.len()).bytes());
                    out.extend(piece);
                    out.extend(b"\r\n");
                }
                out.extend(b"0\r\n\r\n");
                s.write_all(&out)?;
                Ok(Then::KeepAlive)
            }
            "close" => {
                s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
                s.write_all(&a.body)?;
                Ok(Then::Close)
            }
            _ => {
                let len = a.body.len();
                write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
                let pause = Duration::from_millis(if self.full { 60 } else { 5 });
                for piece in a.body.chunks(len / 4 + 1) {
                    if !stop.sleep(pause) {
                        return Ok(Then::Close);
                    }
                    s.write_all(piece)?;
                }
                Ok(Then::KeepAlive)
            }
        }
    }

    /// Where a `Range: bytes=N-` with an `If-Range` naming the current
    /// body asks to resume it, when this answer honours it (half the time).
    fn resumable(&self, a: &Answer) -> Option<usize> {
        let from = a
            .req
            .header("range")?
            .strip_prefix("bytes=")?
            .strip_suffix('-')?;
        let from: usize = from.parse().ok()?;
        let fits = a.req.header("if-range") == Some(a.etag.as_str()) && from < a.body.len();
        (fits && self.chance(0.5)).then_some(from)
    }

    /// Anything but a whole 200: statuses, redirects and faults.
    fn other(&self, kind: &str, a: &Answer, s: &mut TcpStream) -> io::Result<Then> {
        let path = &a.req.target;
        match kind {
            "404" => self.send(s, 404, &[], b"not found"),
            "500" => self.send(s, 500, &[], b"oops"),
            "503" => self.send(s, 503, &[], b"busy"),
            "503ra" => self.send(s, 503, &[("Retry-After", "0".into())], b"busy"),
            "429" => {
                let after = if self.chance(0.3) { "1" } else { "0" };
                self.send(s, 429, &[("Retry-After", after.into())], b"slow down")
            }
            "408" => self.send(s, 408, &[], b"timeout"),
            "204" => self.send(s, 204, &[], b""),
            "redirect" => {
                let to = if self.chance(0.5) {
                    format!("{}{path}r", self.bases.lock().unwrap()[1 - a.host])
                } else {
                    format!("{path}r")
                };
                self.send(s, 302, &[("Location", to)], b"moved")
            }
            "loop" => self.send(s, 302, &[("Location", path.clone())], b"again"),
            "cut" => {
                // With the ETag, the client may keep the part to resume.
                let len = a.body.len().max(10);
                let etag = &a.etag;
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {len}\r\n\r\n"
                )?;
                s.write_all(&a.body[..a.body.len() / 2])?;
                Ok(Then::Close)
            }
            "reset" => Ok(Then::Reset),
            "garbage" => {
                s.write_all(b"SSH-2.0-nope\r\n\r\n")?;
                Ok(Then::Close)
            }
            _ => Ok(Then::Hang),
        }
    }
}

/// Two hosts (two ports) answering from one [`Chaos`].
pub struct Hosts {
    pub servers: [RawServer; 2],
    pub chaos: Arc<Chaos>,
}

impl Hosts {
    pub fn start(seed: u64, full: bool) -> Hosts {
        let chaos = Arc::new(Chaos {
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0xC4A0)),
            full,
            versions: Mutex::default(),
            whole: Mutex::default(),
            bases: Mutex::default(),
        });
        let serve = |host: usize| {
            let c = Arc::clone(&chaos);
            RawServer::start(move |req, s, stop| c.answer(host, req, s, stop))
        };
        let servers = [serve(0), serve(1)];
        *chaos.bases.lock().unwrap() = [servers[0].url(""), servers[1].url("")];
        Hosts { servers, chaos }
    }

    /// Requests both hosts have read so far.
    pub fn requests(&self) -> usize {
        self.servers.iter().map(|s| s.seen().len()).sum()
    }
}
