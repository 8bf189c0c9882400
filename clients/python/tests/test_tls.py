"""TLS from the client's side, today: a TLS-terminating proxy (Python's
``ssl``) in front of the broker, with a self-signed certificate made by the
``openssl`` command. (Herald's own TLS, section 15, is in test_v2_tls.py.)"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import threading

import pytest

import herald
import herald.aio
from helpers import make_certificate


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    made = make_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("no openssl command to make a certificate")
    return made


class TlsProxy:
    def __init__(self, target: str, cert, key) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        up = socket.create_connection(self.target)
        # One thread per direction share the SSL object: each call on it is
        # non-blocking and under `lock`; waiting happens in select().
        tls.setblocking(False)
        lock = threading.Lock()

        def upstream_to_client() -> None:
            try:
                while True:
                    data = memoryview(up.recv(65536))
                    if not data:
                        break
                    while data:
                        with lock:
                            try:
                                n = tls.send(data)
                            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                                n = 0
                        if n:
                            data = data[n:]
                        else:
                            select.select([], [tls], [], 0.5)
            except OSError:
                pass
            finally:
                with lock:
                    tls.close()

        threading.Thread(target=upstream_to_client, daemon=True).start()
        try:
            while True:
                with lock:
                    try:
                        data = tls.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        data = None
                if data is None:
                    select.select([tls], [], [], 0.5)
                    continue
                if not data:
                    break
                up.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            up.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls_addr(addr, cert):
    p = TlsProxy(addr, *cert)
    yield p.addr
    p.close()


def test_blocking_client_over_tls(tls_addr, cert):
    with herald.Client(tls_addr, tls_ca=str(cert[0])) as c:
        c.create("t")
        sub = c.subscribe("t", prefetch=100)
        results = c.publish_many("t", ({"id": str(i), "msg": "x" * 100} for i in range(5000)))
        assert results == ["published"] * 5000
        n = 0
        for d in sub:
            d.ack()
            n += 1
            if n == 5000:
                break
        c.ping()
        assert c.stats("t")["in_flight"] == 0


def test_the_certificate_is_verified(tls_addr):
    with pytest.raises(ssl.SSLError):
        herald.Client(tls_addr, tls=True)  # the system CAs do not know it


def test_an_ssl_context_may_be_given(tls_addr, cert):
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    with herald.Client(tls_addr, tls=ctx) as c:
        c.ping()
    with pytest.raises(ValueError):
        herald.Client(tls_addr, tls=ctx, tls_ca=str(cert[0]))


def test_asyncio_client_over_tls(tls_addr, cert):
    async def main():
        async with herald.aio.Client(tls_addr, tls_ca=str(cert[0])) as c:
            await c.create("t")
            sub = await c.subscribe("t", prefetch=50)
            assert await c.publish_many("t", ({"id": str(i), "msg": i} for i in range(2000))) == ["published"] * 2000
            n = 0
            async for d in sub:
                await d.ack()
                n += 1
                if n == 2000:
                    break
            await c.ping()

    asyncio.run(asyncio.wait_for(main(), 60))
