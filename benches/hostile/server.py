#!/usr/bin/env python3
"""A hostile HTTP/1.1 server on 127.0.0.1 that answers with scripted bytes.

    python3 benches/hostile/server.py CERT KEY

Listens on two ports of 127.0.0.1 (port 0: the kernel picks them), plain and
TLS, and prints one line `PORTS <plain> <tls>` on stdout once both listen.
Each request for `/c/NAME[/anything][?query]` is answered by the case NAME of
`cases.py`: a list of steps, run in order on the raw socket (or the TLS
record layer):

    bytes         sent as they are
    ("sleep", s)  a pause
    "close"       a clean close (TLS: close_notify first)
    "cut"         a close without close_notify (plain TCP: a normal FIN)
    "rst"         a reset (SO_LINGER 0)
    ("partial", data)   TLS only: the records of `data` cut in the middle
    "keep"        keep the connection and read the next request

A case that ends without "keep" closes (cleanly). Every connection is served
on its own thread with a 10 s read timeout; the server stops on SIGTERM or
when stdin closes, so the driver that started it owns its lifetime. It binds
only 127.0.0.1 and never connects anywhere.
"""

import os
import select
import signal
import socket
import ssl
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402

READ_TIMEOUT = 10
MAX_HEAD = 65536


class Plain:
    """The raw socket, with the step vocabulary."""

    def __init__(self, sock):
        self.sock = sock

    def recv(self, n):
        return self.sock.recv(n)

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
            drain(self.sock)
        except OSError:
            pass
        self.sock.close()

    def cut(self):
        self.close()

    def rst(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def partial(self, data):
        self.send(data[: len(data) // 2])


def drain(sock):
    """Reads what the client still sends for a moment, so the close is a FIN, not a RST."""
    sock.settimeout(0.5)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


class Tls:
    """TLS over a MemoryBIO, so records can be cut and close_notify left out."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("client left during the handshake")
                self.inc.write(data)
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                if not data:
                    return b""
                self.inc.write(data)
            except ssl.SSLZeroReturnError:
                return b""

    def send(self, data):
        self.obj.write(data)
        self.flush()

    def close(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self.flush()
        Plain(self.sock).close()

    def cut(self):
        Plain(self.sock).close()

    def rst(self):
        Plain(self.sock).rst()

    def partial(self, data):
        self.obj.write(data)
        records = self.out.read()
        self.sock.sendall(records[: max(1, len(records) - 7)])


def read_head(conn, buf):
    """One request head from `conn`: (method, target, headers, rest) or None."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers, rest


def serve(sock, ctx):
    sock.settimeout(READ_TIMEOUT)
    try:
        conn = Tls(sock, ctx) if ctx else Plain(sock)
    except (OSError, ssl.SSLError, ConnectionError):
        sock.close()
        return
    buf = b""
    try:
        while True:
            req = read_head(conn, buf)
            if req is None:
                conn.close()
                return
            method, target, headers, buf = req
            steps = cases.answer(method, target, headers, tls=ctx is not None)
            if not run(conn, steps):
                return
    except (OSError, ssl.SSLError):
        sock.close()


def run(conn, steps):
    """Runs the steps; true when the connection is kept for another request."""
    for step in steps:
        if isinstance(step, (bytes, bytearray)):
            conn.send(bytes(step))
        elif step == "keep":
            return True
        elif step == "close":
            conn.close()
            return False
        elif step == "cut":
            conn.cut()
            return False
        elif step == "rst":
            conn.rst()
            return False
        elif step[0] == "sleep":
            threading.Event().wait(step[1])
        elif step[0] == "partial":
            conn.partial(step[1])
            conn.cut()
            return False
    conn.close()
    return False


def listen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def main():
    cert, key = sys.argv[1], sys.argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    plain, tls = listen(), listen()
    print("PORTS", plain.getsockname()[1], tls.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listeners = {plain: None, tls: ctx}
    while True:
        ready, _, _ = select.select([*listeners, sys.stdin], [], [])
        for r in ready:
            if r is sys.stdin:
                if not sys.stdin.buffer.read1(1024):
                    os._exit(0)
                continue
            sock, _ = r.accept()
            threading.Thread(target=serve, args=(sock, listeners[r]), daemon=True).start()


if __name__ == "__main__":
    main()
