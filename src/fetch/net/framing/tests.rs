use super::*;

/// Frames `input` as if it arrived in pieces of `step` bytes after a
/// request starting with `request`; returns what ureq would see, or the
/// fault.
fn framed(request: &[u8], input: &[u8], step: usize) -> Result<Vec<u8>, String> {
    let mut f = Framing::default();
    f.sent(request);
    let mut seen: Vec<u8> = Vec::new();
    for piece in input.chunks(step) {
        let start = seen.len() - f.pending();
        seen.extend_from_slice(piece);
        let kept = f.frame(&mut seen[start..]).map_err(|e| e.to_string())?;
        seen.truncate(start + kept);
    }
    if f.pending() > 0 {
        return Err(format!("{} bytes pending", f.pending()));
    }
    Ok(seen)
}

/// The same for every split of `input` into pieces, which must agree.
fn framed_all(request: &[u8], input: &[u8]) -> Result<Vec<u8>, String> {
    let whole = framed(request, input, input.len().max(1));
    for step in 1..input.len() {
        assert_eq!(framed(request, input, step), whole, "step {step}");
    }
    whole
}

const GET: &[u8] = b"GET / HTTP/1.1\r\n";

#[test]
fn chunk_extensions_of_any_length_become_the_size_alone() {
    let ext = "x".repeat(5000);
    let input = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;ilovew3;somuchlove=aretheseparametersfor\r\nhello\r\n\
         000A ;{ext}\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
    );
    let out = framed_all(GET, input.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\na\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
    );
}

#[test]
fn malformed_chunk_lines_are_faults() {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5\nhello\n0\n\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello!\r\n0\r\n\r\n",
        "zz\r\n",
        "5 x\r\nhello\r\n",
        "11111111111111111\r\n",
        "0\r\nTrailer: x\n\r\n",
    ] {
        let r = framed_all(GET, format!("{head}{body}").as_bytes());
        assert!(r.is_err(), "{body:?} gave {r:?}");
    }
    let long = format!("{head}5;{}", "x".repeat(LINE_MAX + 10));
    assert!(framed(GET, long.as_bytes(), 4096).is_err());
}

#[test]
fn chunked_not_last_is_read_to_the_close() {
    for te in [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "transfer-encoding: gzip\r\nContent-Length: 3\r\n",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\n{te}X: y\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        let out = framed_all(GET, input.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nX: y\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "{te:?}"
        );
    }
}

#[test]
fn faulty_heads() {
    for head in [
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
    ] {
        assert!(framed_all(GET, head.as_bytes()).is_err(), "{head:?}");
    }
}

#[test]
fn responses_follow_each_other_on_one_connection() {
    let mut f = Framing::default();
    let mut buf =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    f.sent(GET);
    assert_eq!(f.frame(&mut buf).unwrap(), buf.len());
    assert_eq!((f.phase, f.request_next), (Phase::Head, true));
    // A HEAD's answer has no body, whatever its headers say.
    f.sent(b"HEAD / HTTP/1.1\r\n");
    let mut head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    assert_eq!(f.frame(&mut head).unwrap(), head.len());
    assert_eq!((f.phase, f.request_next), (Phase::Head, true));
    f.sent(GET);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec();
    assert_eq!(f.frame(&mut chunked).unwrap(), chunked.len());
    assert_eq!(f.phase, Phase::Head);
}

#[test]
fn a_tunnel_carries_tls_unread_or_http_framed() {
    let connect = b"CONNECT h:443 HTTP/1.1\r\n";
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let mut f = Framing::default();
    f.sent(connect);
    assert_eq!(f.frame(&mut ok.to_vec()).unwrap(), ok.len());
    f.sent(&[0x16, 3, 1]);
    let mut tls = b"\x16\x03\x03\n\n\n".to_vec();
    assert_eq!(f.frame(&mut tls).unwrap(), tls.len());
    assert_eq!(f.phase, Phase::Opaque);

    let mut f = Framing::default();
    f.sent(connect);
    f.frame(&mut ok.to_vec()).unwrap();
    f.sent(GET);
    assert!(
        f.frame(&mut b"HTTP/1.0 200 OK\r\nTransfer-Encoding: x\r\n\r\n".to_vec())
            .is_err()
    );
}

#[test]
fn a_close_in_a_chunk_line_is_a_cut() {
    let mut f = Framing::default();
    f.sent(GET);
    let mut buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a".to_vec();
    let kept = f.frame(&mut buf).unwrap();
    assert_eq!(kept, buf.len());
    assert!(f.at_close().is_some_and(|fault| fault.cut));
}

#[test]
fn sizes_are_written_in_minimal_hex() {
    for (size, text) in [
        (0u64, "0\r\n"),
        (5, "5\r\n"),
        (0x2a, "2a\r\n"),
        (u64::MAX, "ffffffffffffffff\r\n"),
    ] {
        let mut out = [0u8; 18];
        let n = write_size(&mut out, size);
        assert_eq!(&out[..n], text.as_bytes());
    }
}
