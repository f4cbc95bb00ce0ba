"""The scripted cases of the hostile server, and what the right verdict is.

Each case has:
    steps   the answer (see server.py), or a function (method, headers) -> steps
    expect  the right verdict: "ok", or the error kind(s) RFC 9112 and the
            contract call for, several joined by "|" when either is right;
            "status" when the only right result is a status outside --accept
    body    for "ok": the body bytes the result must describe (default b"hello")
    flags   extra fetchpool flags; curl  extra curl flags
    tls     served over TLS; second: a second request on the same connection
            follows (-j 1, two URLs) and must get exactly "second\\n"
    why     the rule, for the report
"""

import gzip
import hashlib
import subprocess
import zlib

H = b"HTTP/1.1 200 OK\r\n"
SECOND = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsecond\n"


def resp(head_lines, body=b"", status=H):
    return status + b"".join(l + b"\r\n" for l in head_lines) + b"\r\n" + body


def cl(value, body=b"hello"):
    return resp([b"Content-Length: " + value], body)


def chunked(raw, te=b"chunked"):
    return resp([b"Transfer-Encoding: " + te], raw)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
GZ = gzip.compress(b"hello", mtime=0)
BOMB = gzip.compress(b"\0" * (64 << 20), mtime=0)
BIG = bytes(range(256)) * 4  # 1024 bytes, the body of the resume cases
ETAG = b'"v1"'

CASES = {}


def case(name, steps, expect="ok", **kw):
    CASES[name] = dict(steps=steps, expect=expect, **kw)


# --- Content-Length (RFC 9112 6.3 item 5; 8.6 of RFC 9110) ---
case("cl-plain", [cl(b"5")], why="baseline")
case("cl-dup-equal", [resp([b"Content-Length: 5", b"Content-Length: 5"], b"hello")],
     why="6.3: identical values may be taken as one")
case("cl-dup-unequal", [resp([b"Content-Length: 5", b"Content-Length: 6"], b"hello!")], "protocol",
     why="6.3: differing values are an unrecoverable error")
case("cl-list-same", [cl(b"5, 5")], why="6.3: a list of identical values is that value")
case("cl-list-diff", [cl(b"5, 6", b"hello!")], "protocol", why="6.3: a list that disagrees is invalid")
case("cl-list-empty-item", [cl(b"5,,5")], "ok|protocol", why="empty list items are allowed by 5.6.1 of RFC 9110")
case("cl-plus", [cl(b"+5")], "protocol", why="Content-Length = 1*DIGIT")
case("cl-negative", [cl(b"-1")], "protocol", why="Content-Length = 1*DIGIT")
case("cl-leading-zeros", [cl(b"0005")], why="1*DIGIT allows leading zeros")
case("cl-ows", [cl(b" 5 \t")], why="OWS around a field value is not part of it")
case("cl-hex", [cl(b"0x5")], "protocol", why="not 1*DIGIT")
case("cl-empty", [cl(b"")], "protocol", why="not 1*DIGIT")
case("cl-space-inside", [cl(b"5 5", b"hello")], "protocol", why="not 1*DIGIT, not a list")
case("cl-overflow", [cl(b"99999999999999999999")], "protocol|too_large",
     why="a length that cannot be held cannot frame the body")
case("cl-u64max-cut", [cl(b"18446744073709551615"), "close"], "io|too_large",
     why="the connection ends long before the announced length")
case("cl-short", [cl(b"10"), "close"], "io", why="8: a message shorter than its length is incomplete")
case("cl-short-rst", [cl(b"10"), "rst"], "io", why="a reset mid-body")
case("cl-longer-close", [cl(b"3")], body=b"hel", why="bytes past the length are not the body")
case("cl-longer-keepalive", [cl(b"3"), "keep"], body=b"hel", second=True,
     why="the extra bytes must not be read as the next response")
case("cl-zero", [cl(b"0", b"")], body=b"", why="an empty body")
case("cl-too-large", [cl(b"1000000", b"x" * 64), "close"], "too_large", flags=["--max-size", "100"],
     curl=["--max-filesize", "100"], why="an announced length over --max-size")

# --- Transfer-Encoding (RFC 9112 6.1, 6.3) ---
case("te-chunked", [chunked(HELLO_CHUNKED)], why="baseline")
case("te-chunked-case", [chunked(HELLO_CHUNKED, b"ChUnKeD")], why="codings are case-insensitive")
case("te-gzip-chunked", [chunked(b"%x\r\n" % len(GZ) + GZ + b"\r\n0\r\n\r\n", b"gzip, chunked")], body=GZ,
     why="chunked last: dechunk; the gzip transfer coding is not undone (kept as sent)")
case("te-chunked-gzip", [chunked(b"5\r\nhello\r\n0\r\n\r\n", b"chunked, gzip"), "close"],
     body=b"5\r\nhello\r\n0\r\n\r\n", why="6.3 item 4: chunked not last: read until the close")
case("te-chunked-identity-2hdr",
     [resp([b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"], b"xyz"), "close"], body=b"xyz",
     why="two fields are one list: chunked, identity; chunked not last")
case("te-chunked-twice", [chunked(HELLO_CHUNKED, b"chunked, chunked")], "protocol",
     why="6.1: chunked must not be applied more than once")
case("te-unknown", [chunked(b"abc", b"foo"), "close"], body=b"abc",
     why="6.3 item 4: a final coding other than chunked: read to the close")
case("te-empty", [resp([b"Transfer-Encoding: "], b"hello"), "close"], "protocol|ok",
     why="an empty Transfer-Encoding names no coding")
case("te-and-cl", [resp([b"Transfer-Encoding: chunked", b"Content-Length: 100"], HELLO_CHUNKED)],
     why="6.3 item 3: Transfer-Encoding overrides Content-Length")
case("te-and-cl-keepalive", [resp([b"Content-Length: 3", b"Transfer-Encoding: chunked"], HELLO_CHUNKED), "keep"],
     second=True, why="6.3 item 3, and the connection must be framed by TE for the next response")
case("te-http10", [resp([b"Transfer-Encoding: chunked"], HELLO_CHUNKED, b"HTTP/1.0 200 OK\r\n"), "close"],
     "protocol", why="6.1: TE in an HTTP/1.0 message: faulty framing")

# --- chunks (RFC 9112 7.1) ---
case("ch-hex-upper", [chunked(b"A\r\n0123456789\r\n0\r\n\r\n")], body=b"0123456789", why="HEXDIG is case-insensitive")
case("ch-hex-lower", [chunked(b"a\r\n0123456789\r\n0\r\n\r\n")], body=b"0123456789", why="HEXDIG")
case("ch-leading-zeros", [chunked(b"00000005\r\nhello\r\n000\r\n\r\n")], why="1*HEXDIG")
case("ch-many-zeros", [chunked(b"0" * 40 + b"5\r\nhello\r\n0\r\n\r\n")], why="1*HEXDIG; leading zeros hold no value")
case("ch-overflow", [chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"), "close"], "protocol",
     why="7.1: a size that overflows must be refused")
case("ch-negative", [chunked(b"-5\r\nhello\r\n0\r\n\r\n"), "close"], "protocol", why="not HEXDIG")
case("ch-0x", [chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), "close"], "protocol", why="not HEXDIG")
case("ch-ext-short", [chunked(b"5;a\r\nhello\r\n0\r\n\r\n")], why="7.1.1 chunk-ext")
case("ch-ext-long", [chunked(b"5;" + b"x" * 4000 + b"=y\r\nhello\r\n0;z\r\n\r\n")], why="7.1.1: no length limit")
case("ch-ext-quoted", [chunked(b'5;a="x;y\\"z"\r\nhello\r\n0\r\n\r\n')], why="7.1.1 quoted-string value")
case("ch-ext-bws", [chunked(b"5 ; a = b\r\nhello\r\n0\r\n\r\n")], why="7.1.1 BWS around ; and =")
case("ch-ext-over-64k", [chunked(b"5;" + b"x" * 70000 + b"\r\nhello\r\n0\r\n\r\n"), "close"], "protocol",
     why="a line over the 64 KiB head limit (contract)")
case("ch-bare-lf", [chunked(b"5\nhello\n0\n\n"), "close"], "protocol",
     why="7.1: CRLF (contract: bare LF is protocol)")
case("ch-bare-lf-keepalive", [chunked(b"5\nhello\n0\n\n"), "keep"], "protocol",
     why="same, on an open connection: protocol at once, not a timeout")
case("ch-data-no-crlf", [chunked(b"5\r\nhelloX\r\n0\r\n\r\n"), "close"], "protocol",
     why="chunk-data must be followed by CRLF")
case("ch-data-short", [chunked(b"5\r\nhel\r\n0\r\n\r\n"), "close"], "protocol|io",
     why="data shorter than its size: the framing is wrong")
case("ch-trailers", [chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n")], why="7.1.2 trailer section")
case("ch-trailer-obsfold", [chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n  2\r\n\r\n")], "ok|protocol",
     why="obs-fold in a trailer field (5.2: replace with SP, or refuse)")
case("ch-trailer-keepalive", [chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), "keep"], second=True,
     why="after trailers the next response starts cleanly")
case("ch-cut-in-data", [chunked(b"5\r\nhel"), "close"], "io", why="8: incomplete")
case("ch-cut-in-size", [chunked(b"5\r\nhello\r\n0"), "close"], "io", why="8: incomplete")
case("ch-cut-no-last", [chunked(b"5\r\nhello\r\n"), "close"], "io", why="8: no last-chunk")
case("ch-cut-in-trailer", [chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n"), "close"], "io",
     why="8: the trailer section never ended")
case("ch-cut-rst", [chunked(b"5\r\nhello\r\n"), "rst"], "io", why="reset mid-body")

# --- close-delimited (RFC 9112 6.3 item 8) ---
case("close-delimited", [resp([], b"hello"), "close"], why="6.3 item 8: read until the close")
case("close-delimited-10", [resp([], b"hello", b"HTTP/1.0 200 OK\r\n"), "close"], why="the same in HTTP/1.0")
case("close-delimited-rst", [resp([], b"hello"), ("sleep", 0.1), "rst"], "io",
     why="a reset is not the end of the body")

# --- interim responses (RFC 9110 15.2) ---
case("1xx-100", [b"HTTP/1.1 100 Continue\r\n\r\n", cl(b"5")], why="1xx are skipped")
case("1xx-103", [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", cl(b"5")], why="1xx are skipped")
case("1xx-many", [b"HTTP/1.1 100 Continue\r\n\r\n" * 20 + b"HTTP/1.1 102 Processing\r\n\r\n", cl(b"5")],
     why="any number of 1xx")
case("1xx-100-field", [b"HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n", cl(b"5")], why="a 1xx may carry fields")
case("1xx-with-cl", [b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", cl(b"5")],
     why="a 1xx has no content whatever it says")
case("1xx-101", [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n", "close"],
     "protocol", why="101 nobody asked for (contract)")
case("1xx-only", [b"HTTP/1.1 100 Continue\r\n\r\n", "close"], "io|protocol", why="no final response")

# --- responses without content (RFC 9112 6.3 items 1-2) ---
case("204-with-body", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 204 No Content\r\n"), "keep"],
     body=None, second=True, why="204 ends at its head; the stray bytes must not become the next response")
case("304-with-body", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 304 Not Modified\r\n"), "keep"],
     body=None, second=True, why="304 ends at its head")
case("304-te-chunked", [resp([b"Transfer-Encoding: chunked"], HELLO_CHUNKED, b"HTTP/1.1 304 Not Modified\r\n"), "keep"],
     body=None, second=True, why="304 ends at its head even with TE")
case("head-with-body", [cl(b"5"), "keep"], body=None, second=True, flags=["-X", "HEAD"], curl=["-I"],
     why="a response to HEAD ends at its head")

case("head-te-chunked", [resp([b"Transfer-Encoding: chunked"]), "keep"], body=None, second=True,
     flags=["-X", "HEAD"], curl=["-I"], why="a response to HEAD ends at its head, whatever its framing says")
case("ch-extra-after-end", [chunked(HELLO_CHUNKED + b"GARBAGE"), "keep"], second=True,
     why="bytes after the last chunk are no response: the connection must not be reused")
case("late-garbage", [cl(b"5"), ("sleep", 0.3), b"GARBAGE", "keep"], second=True,
     flags=["--rate", "1"], curl=["--rate", "1/s"],
     why="bytes that arrive on an idle connection: it must not be reused")
case("close-delimited-open", [resp([], b"hello"), "keep"], "timeout",
     why="a close-delimited body whose connection stays open never ends: timeout at -m, not a hang")
case("close-after-head", [cl(b"5", b""), "close"], "io", why="8: the body never came")

# --- status line (RFC 9112 4) ---
case("status-http12", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.2 200 OK\r\n")], "ok|protocol",
     why="2.6: a higher minor version should be processed as 1.1")
case("status-http20", [resp([b"Content-Length: 5"], b"hello", b"HTTP/2.0 200 OK\r\n")], "protocol",
     why="another major version over HTTP/1.1 framing")
case("status-http09", [b"hello", "close"], "protocol", why="HTTP/0.9: no status line")
case("status-no-reason", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 200 \r\n")], why="reason-phrase is optional")
case("status-no-reason-no-sp", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 200\r\n")], "ok|protocol",
     why="the SP is required, but recipients may be lenient")
case("status-2digit", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 20 OK\r\n")], "protocol", why="3DIGIT")
case("status-4digit", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 2000 OK\r\n")], "protocol", why="3DIGIT")
case("status-600", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 600 Odd\r\n")], "status|protocol",
     why="not a defined class; outside --accept at worst")
case("status-099", [resp([b"Content-Length: 5"], b"hello", b"HTTP/1.1 099 Low\r\n")], "protocol|status",
     why="below 100 is no status")
case("status-lowercase", [resp([b"Content-Length: 5"], b"hello", b"http/1.1 200 OK\r\n")], "protocol",
     why="HTTP-name is case-sensitive")
case("status-lf-only", [b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"], "ok|protocol",
     why="2.2: a recipient MAY take a bare LF as a line terminator")

# --- header fields (RFC 9112 5) ---
case("hdr-obsfold", [resp([b"X-A: 1", b" 2", b"Content-Length: 5"], b"hello")], "ok",
     why="5.2: a user agent MUST replace obs-fold with SP (accept)")
case("hdr-no-colon", [resp([b"NoColonHere", b"Content-Length: 5"], b"hello")], "protocol|ok",
     why="not a field line")
case("hdr-space-before-colon", [resp([b"Content-Length : 5"], b"hello")], "protocol|ok",
     why="5.1: whitespace before the colon; a proxy must strip it, a server reject")
case("hdr-nul", [resp([b"X-A: a\0b", b"Content-Length: 5"], b"hello")], "protocol", why="5.5: NUL must be refused")
case("hdr-cr", [resp([b"X-A: a\rb", b"Content-Length: 5"], b"hello")], "protocol", why="5.5: bare CR must be refused (or replaced)")
case("hdr-64k-under", [resp([b"X-Pad: " + b"a" * 60000, b"Content-Length: 5"], b"hello")], why="under the 64 KiB head limit")
case("hdr-64k-over", [resp([b"X-Pad: " + b"a" * 70000, b"Content-Length: 5"], b"hello")], "protocol",
     why="contract: heads over 64 KiB are protocol")
case("hdr-many", [resp([b"X-%d: v" % i for i in range(200)] + [b"Content-Length: 5"], b"hello")], "protocol|ok",
     why="more fields than the parser holds")

# --- early ends ---
case("early-close", ["close"], "io|protocol", why="no response at all")
case("early-rst", ["rst"], "io|connect", why="reset before a byte")
case("early-cut-head", [b"HTTP/1.1 200 OK\r\nContent-Len", "close"], "io|protocol", why="head cut short")

# --- TLS endings (RFC 9112 9.8) ---
case("tls-close-notify", [resp([], b"hello"), "close"], tls=True, why="close-delimited, clean TLS close")
case("tls-no-close-notify", [resp([], b"hello"), ("sleep", 0.1), "cut"], "io", tls=True,
     why="9.8: a close without close_notify cannot prove a close-delimited body whole")
case("tls-truncated-record", [resp([], b"hel"), ("partial", b"lo" * 100)], "io", tls=True, why="a record cut in half")
case("tls-cl-cut-notify", [cl(b"1000"), "close"], "io", tls=True, why="8: shorter than its length")
case("tls-cl-cut-no-notify", [cl(b"1000"), "cut"], "io", tls=True, why="8: shorter than its length")
case("tls-cl-whole-no-notify", [cl(b"5"), ("sleep", 0.1), "cut"], tls=True,
     why="9.8: a length-framed body needs no close_notify")
case("tls-chunked-whole-no-notify", [chunked(HELLO_CHUNKED), ("sleep", 0.1), "cut"], tls=True,
     why="chunked framing needs no close_notify")
case("tls-chunked-cut-no-notify", [chunked(b"5\r\nhello\r\n"), "cut"], "io", tls=True, why="8: no last-chunk")

# --- --compressed ---
C = ["--compressed"]
case("gz-ok", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % len(GZ)], GZ)], flags=C, curl=C, why="baseline")
case("gz-truncated", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % (len(GZ) - 6)], GZ[:-6])],
     "protocol", flags=C, curl=C, why="a gzip stream without its end does not decode")
case("gz-bad-crc", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % len(GZ)], GZ[:-8] + b"\0\0\0\0" + GZ[-4:])],
     "protocol", flags=C, curl=C, why="a wrong CRC-32: the bytes are not what was compressed")
case("gz-trailing-garbage", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % (len(GZ) + 4)], GZ + b"JUNK")],
     "protocol|ok", flags=C, curl=C, why="bytes after the gzip member")
case("gz-two-members", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % (2 * len(GZ))], GZ + GZ)],
     "ok", body=b"hellohello", flags=C, curl=C, why="RFC 1952: a gzip file is a series of members")
case("gz-garbage", [resp([b"Content-Encoding: gzip", b"Content-Length: 9"], b"notgzip!!")], "protocol", flags=C, curl=C,
     why="does not decode")
case("br-garbage", [resp([b"Content-Encoding: br", b"Content-Length: 9"], b"\xff\xff\xffnotbr!")], "protocol", flags=C, curl=C,
     why="does not decode")
ZS = zstd(b"hello")
case("zstd-ok", [resp([b"Content-Encoding: zstd", b"Content-Length: %d" % len(ZS)], ZS)], flags=C, curl=C, why="baseline")
case("zstd-truncated", [resp([b"Content-Encoding: zstd", b"Content-Length: %d" % (len(ZS) - 3)], ZS[:-3])],
     "protocol", flags=C, curl=C, why="a zstd frame without its end")
case("zstd-garbage", [resp([b"Content-Encoding: zstd", b"Content-Length: 9"], b"notzstd!!")], "protocol", flags=C, curl=C,
     why="does not decode")
case("deflate-zlib", [resp([b"Content-Encoding: deflate", b"Content-Length: %d" % len(zlib.compress(b"hello"))],
                           zlib.compress(b"hello"))], flags=C, curl=C, why="deflate is the zlib format")
case("gz-bomb", [resp([b"Content-Encoding: gzip", b"Content-Length: %d" % len(BOMB)], BOMB)], "too_large",
     flags=C + ["--max-size", "1M"], curl=C + ["--max-filesize", "1M"], why="64 MiB of zeros in 64 KiB, --max-size 1M")
case("gz-unknown-coding", [resp([b"Content-Encoding: foo", b"Content-Length: 5"], b"hello")], "protocol",
     flags=C, curl=C, why="contract: a coding that cannot be decoded is protocol")
case("gz-chunked-cut", [resp([b"Content-Encoding: gzip", b"Transfer-Encoding: chunked"],
                             b"%x\r\n" % len(GZ) + GZ + b"\r\n"), "close"], "io", flags=C, curl=C,
     why="the gzip stream is whole but the chunked body is not")


def answer(method, target, headers, tls):
    """The steps for one request."""
    path = target.split("?", 1)[0]
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "c":
        return [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "keep"]
    name = parts[2]
    if name == "second":
        return [SECOND, "keep"]
    if name in RESUME:
        return RESUME[name](headers)
    if name == "named":
        return [cl(b"5"), "keep"]
    c = CASES.get(name)
    if c is None:
        return [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "keep"]
    return c["steps"]


# --- --continue against lying servers ---
# The first request (no Range) of each case gets the first 400 bytes of BIG with a strong ETag and is
# cut; the retry asks `Range: bytes=400-` with `If-Range: "v1"` and gets the lie; a request
# without Range after that gets all of BIG.
SEEN = {}


def resume_case(lie):
    def steps(headers):
        first = SEEN.setdefault(id(steps), 0) == 0
        SEEN[id(steps)] += 1
        if "range" not in headers and not first:
            return [resp([b"Content-Length: 1024", b"ETag: " + ETAG], BIG), "keep"]
        if "range" not in headers:
            return [resp([b"Content-Length: 1024", b"ETag: " + ETAG, b"Accept-Ranges: bytes"], BIG[:400]), "rst"]
        return lie(headers)
    return steps


def partial(cr, body, extra=()):
    return [resp([b"Content-Range: " + cr if cr else b"X-No: range", b"Content-Length: %d" % len(body),
                  b"ETag: " + ETAG, *extra], body, b"HTTP/1.1 206 Partial Content\r\n"), "keep"]


RESUME = {
    "resume-honest": resume_case(lambda h: partial(b"bytes 400-1023/1024", BIG[400:])),
    "resume-wrong-start": resume_case(lambda h: partial(b"bytes 0-623/1024", BIG[:624])),
    "resume-wrong-total": resume_case(lambda h: partial(b"bytes 400-1023/2048", BIG[400:])),
    "resume-short-range": resume_case(lambda h: partial(b"bytes 400-499/1024", BIG[400:500])),
    "resume-no-content-range": resume_case(lambda h: partial(None, BIG[400:])),
    "resume-other-etag": resume_case(
        lambda h: [resp([b"Content-Range: bytes 400-1023/1024", b"Content-Length: 624", b'ETag: "v2"'],
                        BIG[::-1][400:], b"HTTP/1.1 206 Partial Content\r\n"), "keep"]),
    "resume-body-short": resume_case(
        lambda h: [resp([b"Content-Range: bytes 400-1023/1024", b"Transfer-Encoding: chunked", b"ETag: " + ETAG],
                        b"64\r\n" + BIG[400:500] + b"\r\n0\r\n\r\n", b"HTTP/1.1 206 Partial Content\r\n"), "keep"]),
    "resume-multipart": resume_case(
        lambda h: partial(None, b"--B\r\nContent-Range: bytes 400-1023/1024\r\n\r\n" + BIG[400:] + b"\r\n--B--\r\n",
                          [b"Content-Type: multipart/byteranges; boundary=B"])),
    "resume-200-instead": resume_case(
        lambda h: [resp([b"Content-Length: 1024", b"ETag: " + ETAG], BIG), "keep"]),
    "resume-206-unasked": lambda h: partial(b"bytes 0-99/1024", BIG[:100]),
}
RESUME_EXPECT = {
    "resume-honest": "ok",
    "resume-wrong-start": "ok",
    "resume-wrong-total": "ok",
    "resume-short-range": "ok",
    "resume-no-content-range": "ok",
    "resume-other-etag": "ok",
    "resume-body-short": "ok",
    "resume-multipart": "ok",
    "resume-200-instead": "ok",
    "resume-206-unasked": "protocol",
}


def sha(data):
    return hashlib.sha256(data).hexdigest()
