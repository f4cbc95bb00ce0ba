//! The chaotic server of the invariant checker: two hosts (two ports on
//! 127.0.0.1) answering each request at random (whole bodies of three
//! framings, slow ones, statuses, pushback, redirects, cut bodies, resets,
//! garbage, stalls and hangs), each path's body and `ETag` changing now and
//! then, and a record of every body sent whole. Both hosts are the suite's
//! [`TestServer`], answering from one closure.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sha;
use crate::server::{Reply, Request, TestServer};

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

/// One answer being made: the request, the path's current body and ETag.
struct Answer<'a> {
    host: usize,
    req: &'a Request,
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

    fn answer(&self, host: usize, req: &Request) -> Reply {
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
        // Without FULL, no pushback (it slows its host down for seconds,
        // the adaptive rate) and nothing that can only time out.
        if self.full {
            weights.extend([(1, "hang"), (1, "stall"), (3, "503ra"), (4, "429")]);
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
        let reply = match self.pick(&weights) {
            kind @ ("ok" | "chunked" | "close" | "slow") => return self.body(kind, &a),
            kind => self.other(kind, &a),
        };
        // An answer the server builds itself is sent whole.
        if reply.raw.is_none() {
            self.sent_whole(&reply.body);
        }
        reply
    }

    /// A 200 with the path's body, whole, in one of several framings (or
    /// the rest of it, or a 304, when the request asks so).
    fn body(&self, kind: &str, a: &Answer) -> Reply {
        let etag = a.etag.as_str();
        if a.req.header("if-none-match") == Some(etag) {
            return Reply::status(304).header("ETag", etag);
        }
        self.sent_whole(&a.body);
        if let Some(from) = self.resumable(a) {
            let len = a.body.len();
            let reply = Reply {
                status: 206,
                ..Reply::ok(&a.body[from..])
            };
            return reply
                .header("ETag", etag)
                .header("Content-Range", format!("bytes {from}-{}/{len}", len - 1));
        }
        let date = format!("Tue, 01 Jul 2025 00:00:{:02} GMT", a.version % 60);
        match kind {
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
                Reply::raw(out)
            }
            "close" => {
                let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
                out.extend(&a.body);
                Reply::raw(out).close()
            }
            _ => {
                let pause = Duration::from_millis(if self.full { 60 } else { 5 });
                let reply = Reply::ok(a.body.clone())
                    .header("ETag", etag)
                    .header("Last-Modified", date);
                if kind == "slow" {
                    reply.delay(pause)
                } else {
                    reply
                }
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
    fn other(&self, kind: &str, a: &Answer) -> Reply {
        let path = &a.req.target;
        // Half a body, with the ETag that lets the client keep the part.
        let cut = || {
            let len = a.body.len().max(10);
            let etag = &a.etag;
            let mut out =
                format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {len}\r\n\r\n")
                    .into_bytes();
            out.extend(&a.body[..a.body.len() / 2]);
            Reply::raw(out)
        };
        match kind {
            "404" | "500" | "503" | "408" | "204" => Reply::status(kind.parse().unwrap()),
            "503ra" => Reply::status(503).header("Retry-After", "0"),
            "429" => {
                let after = if self.chance(0.3) { "1" } else { "0" };
                Reply::status(429).header("Retry-After", after)
            }
            "redirect" => {
                let to = if self.chance(0.5) {
                    format!("{}{path}r", self.bases.lock().unwrap()[1 - a.host])
                } else {
                    format!("{path}r")
                };
                Reply::redirect(302, Some(to.as_bytes()))
            }
            "loop" => Reply::redirect(302, Some(path.as_bytes())),
            "cut" => cut().close(),
            "stall" => cut().hold(),
            // A whole answer, then the connection dies under the client's
            // next request on it.
            "reset" => Reply::ok(a.body.clone()).close_soon(),
            "garbage" => Reply::raw(b"SSH-2.0-nope\r\n\r\n".to_vec()).close(),
            _ => Reply::raw(Vec::new()).hold(),
        }
    }
}

/// Two hosts (two ports) answering from one [`Chaos`].
pub struct Hosts {
    pub servers: [TestServer; 2],
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
            TestServer::routed(move |req| c.answer(host, req))
        };
        let servers = [serve(0), serve(1)];
        *chaos.bases.lock().unwrap() = [servers[0].url(""), servers[1].url("")];
        Hosts { servers, chaos }
    }

    /// Requests both hosts have read so far.
    pub fn requests(&self) -> usize {
        self.servers.iter().map(TestServer::total_requests).sum()
    }
}
