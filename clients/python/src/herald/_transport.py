"""Blocking sockets for :class:`herald.Client`: plain TCP or TLS, and the
handshake every new connection goes through (greeting, ``auth``,
``replies``, ``name``).

A transport is used by two threads at once: the client's reader thread
calls ``recv`` while callers call ``send``. A plain socket allows that. An
``ssl.SSLSocket`` does not promise it (OpenSSL forbids using one ``SSL``
object from two threads at once), so TLS runs over memory BIOs: the
encryption state is touched only under ``_ssl_lock``, which is never held
during socket IO, and ``_send_lock`` keeps encrypted bytes in order on the
wire. The reader never waits for ``_send_lock`` (a writer may hold it while
blocked in ``sendall`` until the broker reads, and the broker reads only
once we read its replies): bytes that decrypting produces (TLS 1.3 key
updates) are sent by whichever thread holds ``_send_lock`` last, which
checks for them before releasing it, under ``_ssl_lock``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import List, Optional, Tuple

from . import errors as _errors

RECV_BYTES = 256 * 1024


class PlainTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        return self.sock.recv(RECV_BYTES)

    def shutdown(self) -> None:
        """Wakes a thread blocked in ``recv`` or ``send`` (they then fail)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


class TlsTransport(PlainTransport):
    def __init__(self, sock: socket.socket, context: ssl.SSLContext, hostname: str) -> None:
        super().__init__(sock)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=hostname)
        self._ssl_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._eof = False
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = self._out.read()
                if pending:
                    sock.sendall(pending)
                data = sock.recv(RECV_BYTES)
                if not data:
                    raise _errors.ConnectionClosed("the broker closed the connection during the TLS handshake")
                self._in.write(data)
        pending = self._out.read()
        if pending:
            sock.sendall(pending)

    def send(self, data: bytes) -> None:
        self._send_lock.acquire()
        try:
            view = memoryview(data)
            # In pieces, so that the encrypted copy stays small.
            for start in range(0, len(view), RECV_BYTES):
                with self._ssl_lock:
                    self._obj.write(view[start : start + RECV_BYTES])
                    out = self._out.read()
                self.sock.sendall(out)
        except BaseException:
            self._send_lock.release()
            raise
        self._release_send_lock()

    def _release_send_lock(self) -> None:
        # Sends what decrypting added meanwhile; the last check and the
        # release happen under _ssl_lock, so bytes the reader adds after the
        # check find _send_lock free (see the module docs).
        while True:
            self._ssl_lock.acquire()
            out = self._out.read()
            if not out:
                self._send_lock.release()
                self._ssl_lock.release()
                return
            self._ssl_lock.release()
            try:
                self.sock.sendall(out)
            except BaseException:
                self._send_lock.release()
                raise

    def recv(self) -> bytes:
        while True:
            chunks: List[bytes] = []
            with self._ssl_lock:
                while True:
                    try:
                        chunk = self._obj.read(RECV_BYTES)
                    except ssl.SSLWantReadError:
                        break
                    except ssl.SSLZeroReturnError:
                        self._eof = True
                        break
                    if not chunk:
                        self._eof = True
                        break
                    chunks.append(chunk)
                produced = self._out.pending > 0
            if produced and self._send_lock.acquire(blocking=False):
                try:
                    self._release_send_lock()
                except OSError:
                    pass
            if chunks:
                return b"".join(chunks)
            if self._eof:
                return b""
            data = self.sock.recv(RECV_BYTES)
            if not data:
                return b""
            with self._ssl_lock:
                self._in.write(data)


def tls_context(tls: object, tls_ca: Optional[str]) -> Optional[ssl.SSLContext]:
    """The SSL context for ``tls=``/``tls_ca=``, or None for plain TCP."""
    if isinstance(tls, ssl.SSLContext):
        if tls_ca is not None:
            raise ValueError("give tls_ca= or an SSLContext as tls=, not both")
        return tls
    if tls or tls_ca is not None:
        return ssl.create_default_context(cafile=tls_ca)
    return None


class LineReader:
    """Reads whole lines from a transport during the handshake."""

    def __init__(self, transport: PlainTransport) -> None:
        self.transport = transport
        self.buf = b""

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            data = self.transport.recv()
            if not data:
                raise _errors.ConnectionClosed("the broker closed the connection during the handshake")
            self.buf += data
        raw, _, self.buf = self.buf.partition(b"\n")
        return raw.rstrip(b"\r")


#: Answers to the handshake's ``replies all`` that leave every reply on: a
#: version 1 broker has no reply modes, and before ``auth`` a broker with
#: users answers nothing but ``auth_required`` (a client without
#: credentials may still ``ping`` or ``auth`` later).
REPLIES_ALL_TOLERATED = (b"-ERR unknown_command", b"-ERR auth_required")


def _expect_ok(raw: bytes, what: str, tolerated: Tuple[bytes, ...] = ()) -> None:
    if raw.startswith(b"+OK") or raw.startswith(tolerated):
        return
    if raw.startswith(b"-ERR"):
        raise _errors.error_from_line(raw)
    raise _errors.ProtocolError(f"unexpected {what}: {raw[:200]!r}")


def open_connection(
    addr: Tuple[str, int],
    *,
    context: Optional[ssl.SSLContext],
    timeout: Optional[float],
    auth: Optional[Tuple[str, str]],
    mode: str,
    name: Optional[str],
) -> Tuple[PlainTransport, bytes]:
    """Connects and goes through the handshake, one command at a time.

    ``name`` goes last and alone: a ``sub`` pipelined behind a refused
    ``name`` would subscribe an anonymous subscriber. Returns the transport
    (in blocking mode) and whatever was read past the last reply.
    """
    host, port = addr
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport: PlainTransport
        if context is not None:
            transport = TlsTransport(sock, context, host)
        else:
            transport = PlainTransport(sock)
        reader = LineReader(transport)
        _expect_ok(reader.line(), "greeting")
        steps = []
        if auth is not None:
            steps.append((f"auth {auth[0]} {auth[1]}\n", "reply to auth", ()))
        # Stated even when it is the default: a broker started with
        # ``--replies errors`` would otherwise leave out replies we wait for.
        tolerated = REPLIES_ALL_TOLERATED if mode == "all" else ()
        steps.append((f"replies {mode}\n", "reply to replies", tolerated))
        if name is not None:
            steps.append((f"name {name}\n", "reply to name", ()))
        for text, what, ok in steps:
            transport.send(text.encode())
            _expect_ok(reader.line(), what, ok)
        sock.settimeout(None)
        return transport, reader.buf
    except BaseException:
        sock.close()
        raise
