//! A loopback HTTP/1.1 server for the politeness and `--update` tests, std
//! only: answers from a closure, keeps connections alive, and records every
//! request with a number from one counter shared by all sites of the test
//! binary, so the order in which two hosts received their requests can be
//! read from the servers' own records. No assertion depends on timing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a site waits on an idle connection.
const IDLE: Duration = Duration::from_secs(30);

/// Numbers every request any site receives, in arrival order.
static ARRIVALS: AtomicU64 = AtomicU64::new(0);

/// One request as a site read it; header names lowercased.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Arrival number across all sites.
    pub order: u64,
    pub method: String,
    pub target: String,
    pub headers: HashMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An answer: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: format!("status {status}\n").into_bytes(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Routes = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A keep-alive server on 127.0.0.1 answering with `routes`.
pub struct Site {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Site {
    pub fn start(routes: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let routes: Arc<Routes> = Arc::new(routes);
        {
            let (seen, stop) = (seen.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, routes) = (seen.clone(), routes.clone());
                    thread::spawn(move || serve(stream, &seen, &*routes));
                }
            });
        }
        Site { port, seen, stop }
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{target}", self.port)
    }

    /// `127.0.0.1:PORT`, the host's key.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request received, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests received for `target`, in arrival order.
    pub fn seen_for(&self, target: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.target == target)
            .collect()
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
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(Seen {
        order: 0,
        method,
        target,
        headers,
    })
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, routes: &Routes) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(mut request) = read_head(&mut reader) {
        // No test sends a request body.
        {
            let mut seen = seen.lock().unwrap();
            request.order = ARRIVALS.fetch_add(1, Ordering::SeqCst);
            seen.push(request.clone());
        }
        let reply = routes(&request);
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (name, value) in &reply.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        let bodiless = reply.status == 304 || reply.status == 204;
        if !bodiless {
            out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if !bodiless && request.method != "HEAD" {
            out.extend_from_slice(&reply.body);
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}
