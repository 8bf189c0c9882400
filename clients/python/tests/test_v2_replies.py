"""Version 2, section 11: `replies errors` for fire-and-forget publishers."""

from __future__ import annotations

import asyncio

import pytest

import herald
import herald.aio




def test_publish_returns_at_once_and_flush_confirms(addr):
    with herald.Client(addr, replies="errors") as c:
        c.create("t")
        assert c.publish("t", {"id": "1", "msg": 1}) is None
        assert c.publish_many("t", [{"id": str(i), "msg": i} for i in range(2, 1000)]) is None
        c.flush()  # every publish before it is stored
        assert c.stats("t")["published"] == 999


def test_refusals_are_raised_by_flush_and_other_replies_still_match(addr):
    with herald.Client(addr, replies="errors") as c:
        c.create("t")
        c.publish("t", {"id": "1"})  # no msg: bad_event, no one waits
        # A command with a reply, right behind it, is not mistaken for it.
        assert c.topics() == ["t"]
        with pytest.raises(herald.NoTopic):
            c.stats("missing")
        with pytest.raises(herald.BadEvent):
            c.flush()
        c.flush()  # reported once


def test_switching_modes_on_a_connection(addr):
    with herald.Client(addr) as c:
        c.create("t")
        c.replies("errors")
        assert c.publish("t", {"id": "1", "msg": 1}) is None
        c.replies("all")
        assert c.publish("t", {"id": "2", "msg": 2}) == "published"
        with pytest.raises(herald.BadArgs):
            c.execute("replies", "some")


def test_acks_in_errors_mode(addr):
    with herald.Client(addr, replies="errors") as c:
        c.create("t")
        sub = c.subscribe("t")
        c.publish("t", {"id": "1", "msg": 1})
        d = sub.get(timeout=10)
        d.ack()
        d.ack()  # no_event, reported by flush
        with pytest.raises(herald.NoEvent):
            c.flush()


def test_errors_mode_is_kept_across_reconnects(proxy):
    with herald.Client(proxy.addr, replies="errors", reconnect=True) as c:
        c.create("t")
        proxy.cut()
        c.publish("t", {"id": "1", "msg": 1})
        c.flush()
        assert c.stats("t")["published"] == 1


def test_asyncio_errors_mode(addr):
    async def main():
        async with herald.aio.Client(addr, replies="errors") as c:
            await c.create("t")
            assert await c.publish("t", {"id": "1", "msg": 1}) is None
            await c.publish("t", {"id": "2"})
            with pytest.raises(herald.BadEvent):
                await c.flush()
            assert (await c.stats("t"))["published"] == 1

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_client_in_all_mode_gets_every_reply_from_a_broker_started_with_replies_errors(binary, tmp_path):
    from helpers import Broker

    b = Broker(tmp_path / "data", extra=["--replies", "errors"])
    try:
        with herald.Client(b.addr) as c:
            c.create("t")
            assert c.publish("t", {"id": "1", "msg": 1}) == "published"

        async def main():
            async with herald.aio.Client(b.addr) as c:
                assert await c.publish("t", {"id": "2", "msg": 2}) == "published"

        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        b.close()
