//! Chunk-size lines (RFC 9112 section 7.1): read, checked and rewritten.

use super::{Fault, LINE_MAX};

/// The length of the line at the start of `input` without its CRLF, once
/// the whole line is there; a line ended by a bare LF is a fault.
pub(super) fn crlf_line(input: &[u8]) -> Result<Option<usize>, Fault> {
    let scan = &input[..input.len().min(LINE_MAX + 2)];
    let Some(lf) = scan.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if lf == 0 || input[lf - 1] != b'\r' {
        return Err(Fault::protocol(
            "a chunk line ended by a bare LF (chunked framing needs CRLF)",
        ));
    }
    Ok(Some(lf - 1))
}

/// The size of a chunk-size line (without its CRLF):
/// `chunk-size [ chunk-ext ]` (RFC 9112 section 7.1), extensions of any
/// length ignored.
pub(super) fn chunk_size(line: &[u8]) -> Result<u64, Fault> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at(digits);
    let significant = hex.iter().skip_while(|&&b| b == b'0').count();
    if digits == 0 {
        return Err(Fault::protocol(
            "a chunk size that is not a hexadecimal number",
        ));
    }
    if significant > 16 {
        return Err(Fault::protocol("a chunk size too large to hold"));
    }
    let ext = rest.trim_ascii_start();
    let ext_ok = ext.is_empty()
        || (ext[0] == b';' && ext.iter().all(|&b| b == b'\t' || !b.is_ascii_control()));
    if !ext_ok {
        return Err(Fault::protocol(
            "a chunk size that is not a hexadecimal number",
        ));
    }
    let hex = &hex[digits - significant..];
    Ok(hex
        .iter()
        .fold(0u64, |n, &b| (n << 4) | u64::from(hex_value(b))))
}

/// Writes `size` in hexadecimal and CRLF at the start of `out`; returns
/// the bytes written.
pub(super) fn write_size(out: &mut [u8], size: u64) -> usize {
    let digits = (64 - size.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        let nibble = (size >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    out[digits..digits + 2].copy_from_slice(b"\r\n");
    digits + 2
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}
