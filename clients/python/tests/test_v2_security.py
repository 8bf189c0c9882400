"""Version 2, section 15: users, permissions, names, and Herald's own TLS."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

import herald
import herald.aio
from helpers import Broker, Proxy, herald_bin, make_certificate


def password_hash(password: str) -> str:
    out = subprocess.run(
        [str(herald_bin()), "passwd"], input=password + "\n", capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture
def secured(binary, tmp_path):
    config = tmp_path / "herald.toml"
    config.write_text(
        f"""
[[users]]
name = "alice"
password = "{password_hash('alice-pw')}"
publish = ["orders.>"]
subscribe = {{ allow = [">"], deny = ["secrets.>"] }}

[[users]]
name = "bob"
password = "{password_hash('bob-pw')}"
publish = [">"]
subscribe = [">"]
"""
    )
    b = Broker(tmp_path / "data", extra=["--config", str(config)])
    yield b
    b.close()


def test_without_auth_only_ping_works(secured):
    with herald.Client(secured.addr) as c:
        c.ping()
        with pytest.raises(herald.AuthRequired):
            c.create("orders.eu")
        with pytest.raises(herald.AuthRequired):
            c.execute("nonsense", "words")  # whatever its shape


def test_bad_credentials_fail_the_connection(secured):
    with pytest.raises(herald.AuthFailed):
        herald.Client(secured.addr, user="alice", password="wrong")


def test_permissions(secured):
    with herald.Client(secured.addr, user="bob", password="bob-pw") as bob:
        bob.create("orders.eu")
        bob.create("secrets.plans")
        bob.create("other")
    with herald.Client(secured.addr, user="alice", password="alice-pw") as alice:
        assert alice.publish("orders.eu", {"id": "1", "msg": 1}) == "published"
        with pytest.raises(herald.Forbidden):
            alice.publish("other", {"id": "1", "msg": 1})
        with pytest.raises(herald.Forbidden):
            alice.subscribe("secrets.plans")
        assert "secrets.plans" not in alice.topics()
        with pytest.raises(herald.NoTopic):
            alice.stats("secrets.plans")
        alice.auth("bob", "bob-pw")  # a later auth switches user
        alice.subscribe("secrets.plans")


def test_durable_names_follow_the_users_names_patterns(secured):
    with herald.Client(secured.addr, user="alice", password="alice-pw", name="alice.worker1") as c:
        c.ping()
    with pytest.raises(herald.Forbidden):
        herald.Client(secured.addr, user="alice", password="alice-pw", name="bob")


def test_credentials_are_sent_again_after_a_reconnect(secured):
    proxy = Proxy(secured.addr)
    try:
        with herald.Client(proxy.addr, user="alice", password="alice-pw", name="alice") as c:
            c.create("orders.eu")
            sub = c.subscribe("orders.eu")
            proxy.cut()
            with herald.Client(secured.addr, user="bob", password="bob-pw") as bob:
                bob.publish("orders.eu", {"id": "after", "msg": 1})
            assert sub.get(timeout=20).id == "after"
    finally:
        proxy.close()


def test_auth_without_users_is_bad_state(addr):
    with herald.Client(addr) as c:
        with pytest.raises(herald.BadState):
            c.auth("alice", "pw")


@pytest.fixture
def tls_broker(binary, tmp_path):
    made = make_certificate(tmp_path / "tls")
    if made is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = made
    b = Broker(tmp_path / "data", extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    yield b, cert
    b.close()


def test_herald_tls(tls_broker):
    broker, cert = tls_broker
    with herald.Client(broker.addr, tls_ca=str(cert)) as c:
        c.create("t")
        assert c.publish_many("t", [{"id": str(i), "msg": i} for i in range(1000)]) == ["published"] * 1000
    with pytest.raises((OSError, herald.ProtocolError)):
        herald.Client(broker.addr, connect_timeout=5)  # plaintext to a TLS port

    async def main():
        async with herald.aio.Client(broker.addr, tls_ca=str(cert)) as c:
            assert (await c.stats("t"))["published"] == 1000

    asyncio.run(asyncio.wait_for(main(), 60))
