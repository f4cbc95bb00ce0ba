//! SOCKS5 (RFC 1928) with user name and password (RFC 1929), on our own
//! socket.
//!
//! ureq's `socks-proxy` feature has a `SocksConnector`, but it opens its own
//! ureq `TcpTransport`: a connection through it would skip our socket layer
//! (deadlines kept in user space, sized buffers, the one-peek liveness
//! check, the per-exchange record behind `timings`, `-v` and the re-send of
//! a request that met a dead keep-alive connection), and its handshake is
//! not public. The `socks` crate connects its own `TcpStream` without a
//! deadline. So the handshake is done here, on the [`Socket`] the
//! `TcpConnector` opened to the proxy, within the connect deadline; what
//! follows is an ordinary connection of ours.

use std::io::{self, Read, Write};
use std::net::IpAddr;

use ureq::{Error, Proxy, ProxyProtocol};

use super::transport::Socket;

/// Whether `proxy` is spoken to with SOCKS5 (by us, not by ureq).
pub fn is_socks5(proxy: &Proxy) -> bool {
    matches!(
        proxy.protocol(),
        ProxyProtocol::Socks5 | ProxyProtocol::Socks5h
    )
}

/// What the proxy is asked to connect to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An address resolved here (`socks5://`).
    Ip(IpAddr),
    /// A host name for the proxy to resolve (`socks5h://`).
    Name(&'a str),
}

/// Asks the proxy on `socket` to connect to `target`:`port`. A refusal is
/// a `ConnectProxyFailed` naming the proxy's reason.
pub fn handshake(
    socket: &mut Socket,
    proxy: &Proxy,
    target: Target<'_>,
    port: u16,
) -> Result<(), Error> {
    let io = |e: io::Error| socket_error(e);
    let user = proxy.username().filter(|u| !u.is_empty());
    let greeting: &[u8] = if user.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    socket.write_all(greeting).map_err(io)?;
    let mut reply = [0u8; 2];
    socket.read_exact(&mut reply).map_err(io)?;
    match (reply, user) {
        ([5, 0], _) => {}
        ([5, 2], Some(user)) => authenticate(socket, user, proxy.password().unwrap_or(""))?,
        ([5, 0xff], _) | ([5, 2], None) => {
            return Err(failed("the proxy accepts none of our ways to log in"));
        }
        _ => return Err(failed("the proxy does not speak SOCKS5")),
    }
    let mut request = vec![5, 1, 0];
    match target {
        Target::Ip(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Target::Ip(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Target::Name(name) => {
            let len = u8::try_from(name.len())
                .map_err(|_| failed("the host name is longer than SOCKS5 allows"))?;
            request.extend_from_slice(&[3, len]);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    socket.write_all(&request).map_err(io)?;
    // Version, reply, reserved, address type; then the bound address and
    // port, which a CONNECT does not use but must be read past.
    let mut head = [0u8; 4];
    socket.read_exact(&mut head).map_err(io)?;
    if head[0] != 5 {
        return Err(failed("the proxy does not speak SOCKS5"));
    }
    if head[1] != 0 {
        return Err(failed(reason(head[1])));
    }
    let len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            socket.read_exact(&mut n).map_err(io)?;
            usize::from(n[0])
        }
        _ => return Err(failed("the proxy answered with an unknown address type")),
    };
    let mut bound = [0u8; 255 + 2];
    socket.read_exact(&mut bound[..len + 2]).map_err(io)?;
    Ok(())
}

/// RFC 1929: user name and password, each at most 255 bytes.
fn authenticate(socket: &mut Socket, user: &str, password: &str) -> Result<(), Error> {
    let (Ok(u), Ok(p)) = (u8::try_from(user.len()), u8::try_from(password.len())) else {
        return Err(failed(
            "the proxy user name or password is longer than SOCKS5 allows",
        ));
    };
    let mut request = vec![1, u];
    request.extend_from_slice(user.as_bytes());
    request.push(p);
    request.extend_from_slice(password.as_bytes());
    socket.write_all(&request).map_err(socket_error)?;
    let mut reply = [0u8; 2];
    socket.read_exact(&mut reply).map_err(socket_error)?;
    if reply[1] != 0 {
        return Err(failed("the proxy refused the user name and password"));
    }
    Ok(())
}

/// A socket error during the handshake: a deadline is a timeout, an early
/// close a proxy that broke off.
fn socket_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Error::Timeout(ureq::Timeout::Connect)
        }
        io::ErrorKind::UnexpectedEof => failed("the proxy closed the connection"),
        _ => Error::Io(e),
    }
}

fn failed(why: &str) -> Error {
    Error::ConnectProxyFailed(format!("SOCKS5: {why}"))
}

/// The words of RFC 1928 for a SOCKS5 reply code.
fn reason(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by the proxy's rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown failure",
    }
}
