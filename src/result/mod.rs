//! What a fetch yields: plain data, written by [`fetch`](crate::fetch) and
//! read by the output side, so neither has to know the other.

pub mod accept;
pub mod trace;

use std::time::Duration;

use serde::Serialize;

/// Why a fetch failed (the error kinds of `docs/contract.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The entry is not a fetchable URL.
    InvalidUrl,
    /// The host name did not resolve.
    Dns,
    /// No connection could be made.
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// A deadline passed.
    Timeout,
    /// The body exceeded `--max-size`.
    TooLarge,
    /// Too many redirects, or a bad one.
    Redirects,
    /// The server did not speak HTTP properly, or its response cannot be
    /// framed.
    Protocol,
    /// The proxy refused the tunnel (CONNECT), or asked for credentials.
    Proxy,
    /// The connection broke, or saving the body failed.
    Io,
    /// The run was interrupted before this fetch could finish.
    Cancelled,
    /// A bug in fetchpool.
    Internal,
}

impl ErrorKind {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Redirects => "redirects",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Io => "io",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether an attempt that failed this way is worth another try.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Timeout)
    }

    /// Whether a failure this way, with no answer, may mean the host is
    /// overloaded (its connections time out, are refused or reset).
    pub fn is_overload(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Io
        )
    }
}

/// A failure: its kind and a short message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, in a few words.
    pub message: String,
}

impl FetchError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FetchError {
            kind,
            message: message.into(),
        }
    }
}

/// How the connection of the last request went (the last hop, after
/// redirects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Time to connect (None when the connection was reused).
    pub connect: Option<Duration>,
    /// Time of the TLS handshake (None on reuse and for plain http).
    pub tls: Option<Duration>,
    /// From sending the request to the first byte of the response.
    pub ttfb: Option<Duration>,
    /// The connection came from the pool of idle keep-alive connections.
    pub reused: bool,
}

/// What one fetch produced.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// No error and a status in `--accept`.
    pub ok: bool,
    /// Final HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Body bytes read in the last attempt (decoded, with `--compressed`).
    pub bytes: u64,
    /// Body bytes received in the last attempt, as sent (before decoding).
    pub wire_bytes: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Where redirects led, if anywhere.
    pub final_url: Option<String>,
    /// The failure, if any (a status outside `--accept` is not an error).
    pub error: Option<FetchError>,
    /// Hex SHA-256 of the body, when asked for.
    pub sha256: Option<String>,
    /// Where the body was saved, when asked for.
    pub saved_to: Option<String>,
    /// `--update`: the server said the saved file is unchanged (304).
    pub unchanged: bool,
    /// The body continued a part file of this many bytes (a `206`).
    pub resumed_from: Option<u64>,
    /// The body was cut short and its bytes kept in a part file under
    /// `-o`, for a later attempt or `--continue`.
    pub kept_part: bool,
    /// Wall time of all attempts and waits.
    pub elapsed: Duration,
    /// Time held back by the host's pause, its rate, or `--rate`.
    pub waited: Duration,
    /// Connection timings of the last attempt (None if nothing was sent).
    pub timings: Option<Timings>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_contract_names() {
        let json = serde_json::to_string(&ErrorKind::TooLarge).unwrap();
        assert_eq!(json, "\"too_large\"");
        assert_eq!(ErrorKind::InvalidUrl.as_str(), "invalid_url");
    }
}
