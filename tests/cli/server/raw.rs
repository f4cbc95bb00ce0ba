//! Raw-socket servers for what HTTP routes cannot say: each accepted
//! connection is handed to a closure, which may read, write bytes, stall
//! or close as the test needs.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A listener on 127.0.0.1 running `serve` on every connection, each on
/// its own thread; stops accepting when dropped.
pub struct RawListener {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

/// Starts a [`RawListener`]. A connection's read timeout is 20 s, so a
/// closure blocked on a client that left ends on its own.
pub fn listen(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> RawListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(AtomicUsize::new(0));
    let serve = Arc::new(serve);
    let (stop2, conns2) = (Arc::clone(&stop), Arc::clone(&connections));
    let accept = thread::spawn(move || {
        for stream in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            conns2.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(stream));
        }
    });
    RawListener {
        port,
        stop,
        connections,
        accept: Some(accept),
    }
}

impl RawListener {
    /// `SCHEME://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}
