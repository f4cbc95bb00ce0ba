//! Reading requests off a connection, plain or TLS: the head (peeked on
//! plain TCP, so `/fault/reset` can leave it unread) and the body, by
//! `Content-Length` or de-chunked.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{Framing, Request, close};

/// Largest request head the server accepts.
const MAX_HEAD: usize = 64 * 1024;

/// One accepted connection.
pub struct Conn {
    tcp: TcpStream,
    /// The TLS session, when there is one; else reads go to `tcp`.
    tls: Option<Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>,
}

impl Conn {
    /// None if a TLS session cannot be set up.
    pub fn new(tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) -> Option<Conn> {
        let tls = match tls {
            None => None,
            Some(config) => {
                let session = rustls::ServerConnection::new(config).ok()?;
                let clone = tcp.try_clone().ok()?;
                Some(Box::new(rustls::StreamOwned::new(session, clone)))
            }
        };
        Some(Conn { tcp, tls })
    }

    pub fn is_plain(&self) -> bool {
        self.tls.is_none()
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        match &mut self.tls {
            Some(tls) => tls.as_mut(),
            None => &mut self.tcp,
        }
    }

    fn reader(&mut self) -> &mut dyn Read {
        match &mut self.tls {
            Some(tls) => tls.as_mut(),
            None => &mut self.tcp,
        }
    }

    /// Reads and drops whatever comes until the client closes (or the
    /// idle timeout passes).
    pub fn wait_for_close(&mut self) {
        let mut sink = [0u8; 4096];
        while self.reader().read(&mut sink).is_ok_and(|n| n > 0) {}
    }

    pub fn shutdown(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        close(&self.tcp);
    }

    /// The next request head and its length. On plain TCP it stays in the
    /// receive queue until [`Conn::consume_request`]; over TLS it is read
    /// (and its length is 0). None when the client closed or sent garbage.
    pub fn peek_request(&mut self) -> Option<(usize, Request)> {
        if self.tls.is_some() {
            let head = read_head(self.reader())?;
            return parse_head(&head).map(|req| (0, req));
        }
        let mut buf = vec![0u8; MAX_HEAD];
        let mut seen = 0;
        loop {
            let n = self.tcp.peek(&mut buf).ok()?;
            if n == 0 || !could_be_http(&buf[..n]) {
                return None;
            }
            if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
                let head_len = end + 4;
                return parse_head(&buf[..head_len]).map(|req| (head_len, req));
            }
            if n == buf.len() {
                return None;
            }
            if n == seen {
                // peek() returns at once while partial data waits: back off a little.
                thread::sleep(Duration::from_millis(1));
            }
            seen = n;
        }
    }

    /// Reads the peeked head and the body off the stream into `req`.
    pub fn consume_request(&mut self, head_len: usize, req: &mut Request) -> io::Result<()> {
        let mut head = vec![0u8; head_len];
        self.reader().read_exact(&mut head)?;
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        req.framing = match (chunked, length) {
            (true, _) => Framing::Chunked,
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::None,
        };
        req.body = match req.framing {
            Framing::None => Vec::new(),
            Framing::Length(n) => {
                let mut body = Vec::new();
                self.reader().take(n).read_to_end(&mut body)?;
                body
            }
            Framing::Chunked => read_chunked(self.reader())?,
        };
        Ok(())
    }
}

/// Reads byte by byte up to the blank line, so nothing after it is taken.
fn read_head(r: &mut dyn Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || r.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
        if !could_be_http(&head) {
            return None;
        }
    }
    Some(head)
}

fn read_line(r: &mut dyn Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if r.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A chunked body, de-chunked; trailers are read and dropped.
fn read_chunked(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        r.take(size).read_to_end(&mut body)?;
        read_line(r)?;
    }
}

/// Whether `start` can begin a request line (`METHOD SP ...`): anything
/// else, such as a TLS hello on a plain port, is dropped at once instead of
/// waited on.
fn could_be_http(start: &[u8]) -> bool {
    let method = start.iter().position(|b| *b == b' ').unwrap_or(start.len());
    (1..=16).contains(&method) && start[..method].iter().all(u8::is_ascii_uppercase)
        || start.is_empty()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn parse_head(head: &[u8]) -> Option<Request> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        target,
        headers,
        body: Vec::new(),
        framing: Framing::None,
        order: 0,
        nth: 0,
        connection: 0,
        in_flight: 0,
    })
}
