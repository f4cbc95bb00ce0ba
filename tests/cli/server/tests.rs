//! The server checked with a raw std client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// A raw HTTP/1.1 client on one connection.
struct Raw {
    reader: BufReader<TcpStream>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Raw {
    fn connect(server: &TestServer) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, target: &str, extra: &str) {
        let req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
    }

    fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.to_string(), v.trim().to_string()));
        }
        Ok((status, headers))
    }

    /// A request with `headers` (each ending in CRLF) and `body` as given.
    fn with_body(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
        let head = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let (status, headers) = self.read_head().unwrap();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp.header("content-length").unwrap().parse().unwrap();
        resp.body = vec![0; len];
        self.reader.read_exact(&mut resp.body).unwrap();
        resp
    }

    fn get(&mut self, target: &str) -> Response {
        self.request("GET", target, "")
    }

    fn request(&mut self, method: &str, target: &str, extra: &str) -> Response {
        self.send(method, target, extra);
        let (status, headers) = self.read_head().unwrap();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if method != "HEAD" {
            let len: usize = resp.header("content-length").unwrap().parse().unwrap();
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body).unwrap();
        }
        resp
    }

    /// Reads until EOF; the error if the connection broke instead.
    fn rest(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        self.reader.read_to_end(&mut all)?;
        Ok(all)
    }
}

#[test]
fn keep_alive_routes_and_counters() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    let ok = c.request("GET", "/ok?i=1", "User-Agent: raw/1\r\nX-Test: 1\r\n");
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(c.get("/status/503").status, 503);
    let bytes = c.get("/bytes/1000");
    assert_eq!(bytes.body.len(), 1000);
    assert!(
        bytes
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == body_byte(i as u64))
    );
    assert_eq!(c.get("/bytes?n=7").body, b"abcdefg");
    let redirect = c.get("/redirect/2");
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (302, Some("/redirect/1"))
    );
    assert_eq!(c.get("/redirect/1").header("location"), Some("/ok"));
    let head = c.request("HEAD", "/bytes/50", "");
    assert_eq!(head.header("content-length"), Some("50"));
    assert_eq!(c.get("/nope").status, 404);
    assert_eq!(
        c.get("/fault/self-redirect").header("location"),
        Some("/fault/self-redirect")
    );

    assert_eq!(server.connections(), 1);
    assert_eq!(server.total_requests(), 9);
    assert_eq!(server.hits("/ok"), 1);
    assert_eq!(server.hits("/ok?i=1"), 1);
    assert_eq!(server.hits("/ok?i=2"), 0);
    let first = &server.requests()[0];
    assert_eq!(first.header("user-agent"), Some("raw/1"));
    assert_eq!(first.header("X-TEST"), Some("1"));
    assert_eq!(server.max_in_flight(), 1);
}

#[test]
fn connection_close_is_honoured() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    c.request("GET", "/ok", "Connection: close\r\n");
    assert!(c.rest().unwrap().is_empty());
}

#[test]
fn flaky_and_retry_after_count_per_id() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    let flaky: Vec<u16> = (0..4).map(|_| c.get("/fault/flaky503/a").status).collect();
    assert_eq!(flaky, [503, 503, 200, 200]);
    assert_eq!(c.get("/fault/flaky503/b").status, 503);
    let first = c.get("/fault/retry-after/a");
    assert_eq!(
        (first.status, first.header("retry-after")),
        (429, Some("1"))
    );
    assert_eq!(c.get("/fault/retry-after/a").status, 200);
    assert_eq!(c.get("/fault/retry-after/b").status, 429);
}

#[test]
fn hold_releases_batches_of_the_target() {
    let server = TestServer::start();
    server.set_hold_target(3);
    // Three clients, two requests each: two full batches, no stall.
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let mut c = Raw::connect(&server);
            thread::spawn(move || {
                for j in 0..2 {
                    assert_eq!(c.get(&format!("/hold?i={i}-{j}")).status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(server.hold_fallbacks(), 0, "a batch stalled");
    assert_eq!(server.hits("/hold"), 6);
    assert_eq!(server.max_in_flight(), 3);
}

#[test]
fn reset_sends_rst() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    c.send("GET", "/fault/reset", "");
    let err = c.rest().expect_err("expected a reset, got a clean EOF");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(server.hits("/fault/reset"), 1);
}

#[test]
fn garbage_short_and_big() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    c.send("GET", "/fault/garbage", "");
    assert_eq!(c.rest().unwrap(), b"SSH-2.0-nope\r\n\r\n");

    let mut c = Raw::connect(&server);
    c.send("GET", "/fault/short", "");
    let (status, headers) = c.read_head().unwrap();
    assert_eq!((status, headers[0].1.as_str()), (200, "1000"));
    assert_eq!(c.rest().unwrap().len(), 10);

    let mut c = Raw::connect(&server);
    assert_eq!(c.get("/big").body.len() as u64, BIG_LEN);
}

#[test]
fn hang_drip_endless_end_when_server_drops() {
    let server = TestServer::start();
    let mut clients: Vec<Raw> = [
        "/fault/hang",
        "/fault/drip",
        "/fault/endless",
        "/slow/60000",
    ]
    .iter()
    .map(|path| {
        let mut c = Raw::connect(&server);
        c.send("GET", path, "");
        c
    })
    .collect();
    let (status, _) = clients[1].read_head().unwrap();
    assert_eq!(status, 200);
    let mut first = [0u8; 1];
    clients[1].reader.read_exact(&mut first).unwrap();
    assert_eq!(first[0], body_byte(0));
    let (_, headers) = clients[2].read_head().unwrap();
    assert_eq!(headers[0].1, "chunked");
    assert!(server.wait_for_requests(4, Duration::from_secs(10)));
    drop(server);
    // Every handler lets go of its socket once the server is gone.
    for c in &mut clients {
        let _ = c.rest();
    }
}

#[test]
fn gate_serve_any_and_arrival_times() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    assert_eq!(c.get("/no/such?x=1").status, 404);
    server.serve_any();
    let any = c.get("/../a%2e?x=1");
    assert_eq!(any.status, 200);
    assert_eq!(any.body, echo_body("/../a%2e?x=1"));

    let gated = thread::spawn(move || c.get("/gate?i=1").status);
    assert!(server.wait_for_requests(3, Duration::from_secs(10)));
    assert_eq!(server.max_in_flight(), 1);
    server.open_gate();
    assert_eq!(gated.join().unwrap(), 200);
    assert_eq!(server.gate_fallbacks(), 0);
    let times = server.arrival_times();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn slow_answers_after_the_delay() {
    let server = TestServer::start();
    let start = Instant::now();
    assert_eq!(Raw::connect(&server).get("/slow/100").status, 200);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn added_routes_come_first_and_requests_keep_body_and_framing() {
    let server = TestServer::start();
    server.route("/echo", |req| {
        Reply::ok(req.body.clone()).header("X-Nth", req.nth.to_string())
    });
    server.route("/files/*", |req| {
        Reply::status(201).header("X-Path", req.path())
    });
    let mut c = Raw::connect(&server);
    let echoed = c.with_body("POST", "/echo", "Content-Length: 5\r\n", b"hello");
    assert_eq!(
        (echoed.status, echoed.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert_eq!(echoed.header("x-nth"), Some("1"));
    let chunked = c.with_body(
        "PUT",
        "/echo?x=1",
        "Transfer-Encoding: chunked\r\n",
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
    );
    assert_eq!(
        (chunked.body.as_slice(), chunked.header("x-nth")),
        (&b"abcde"[..], Some("2"))
    );
    let file = c.get("/files/a/b");
    assert_eq!(
        (file.status, file.header("x-path")),
        (201, Some("/files/a/b"))
    );
    assert_eq!(c.get("/ok").status, 200, "built-in routes still answer");

    let seen = server.requests();
    let framing: Vec<Framing> = seen.iter().map(|r| r.framing).collect();
    assert_eq!(
        framing,
        [
            Framing::Length(5),
            Framing::Chunked,
            Framing::None,
            Framing::None
        ]
    );
    assert_eq!(seen[1].body, b"abcde");
    assert!(seen.iter().all(|r| r.connection == 1 && r.in_flight == 1));
    assert!(seen.windows(2).all(|w| w[0].order < w[1].order));
    assert_eq!(server.only("/echo?x=1").method, "PUT");
    assert_eq!(server.requests_for("/echo").len(), 2);
}

#[test]
fn routed_servers_answer_everything_and_raw_replies_go_out_as_given() {
    let server = TestServer::routed(|req| match req.path() {
        "/bad" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..]).close(),
        _ => Reply::redirect(302, Some(b"/moved")).delay(Duration::from_millis(1)),
    });
    let mut c = Raw::connect(&server);
    let moved = c.request("HEAD", "/ok", "");
    assert_eq!(
        (moved.status, moved.header("location")),
        (302, Some("/moved"))
    );
    c.send("GET", "/bad", "");
    assert_eq!(
        c.rest().unwrap(),
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
    );
    assert_eq!(server.targets(), ["/ok", "/bad"]);
}

#[test]
fn in_flight_counts_what_each_request_met() {
    let server = TestServer::start();
    server.set_hold_target(2);
    let clients: Vec<_> = (0..2)
        .map(|i| {
            let mut c = Raw::connect(&server);
            thread::spawn(move || c.get(&format!("/hold?i={i}")).status)
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let mut met: Vec<usize> = server.requests().iter().map(|r| r.in_flight).collect();
    met.sort();
    assert_eq!(met, [1, 2]);
    let mut conns: Vec<usize> = server.requests().iter().map(|r| r.connection).collect();
    conns.sort();
    assert_eq!(conns, [1, 2]);
}

#[test]
fn bytes_that_cannot_start_a_request_close_the_connection() {
    let server = TestServer::start();
    let mut c = Raw::connect(&server);
    // The start of a TLS hello: no request line will ever come.
    c.reader
        .get_mut()
        .write_all(&[0x16, 0x03, 0x01, 0x02])
        .unwrap();
    assert!(c.rest().unwrap_or_default().is_empty());
    assert_eq!(server.total_requests(), 0);
}
