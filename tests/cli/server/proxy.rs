//! A `CONNECT` proxy for the proxy tests: it records each request head it
//! gets (method, target, headers such as `Proxy-Authorization`) and relays
//! a tunnel to the requested port of 127.0.0.1, nowhere else.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::Request;

/// How long the proxy waits on an idle connection.
const IDLE: Duration = Duration::from_secs(20);

/// A `CONNECT` proxy on 127.0.0.1: records each request head it gets and
/// relays a tunnel to the requested port of 127.0.0.1 (nowhere else).
pub struct TunnelProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl TunnelProxy {
    pub fn start() -> TunnelProxy {
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The request lines received, as `METHOD target`.
    pub fn lines(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }
}

fn tunnel(stream: TcpStream, seen: &Mutex<Vec<Request>>) {
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

/// Reads one request head; None at end of stream or on garbage.
fn read_head(reader: &mut impl BufRead) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if reader.read_until(b'\n', &mut head).ok()? == 0 {
            return None;
        }
        if head[start..].trim_ascii().is_empty() {
            break;
        }
    }
    super::wire::parse_head(&head)
}
