"""The asyncio client: the same behaviour as the blocking one."""

from __future__ import annotations

import asyncio

import pytest

import herald
import herald.aio


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_the_seed_example(addr):
    async def main():
        async with herald.aio.Client(addr) as c:
            await c.create("tweets")
            sub = await c.subscribe("tweets", prefetch=10)
            assert await c.publish("tweets", {"id": "1", "priority": 3, "msg": "tweet 1"}) == "published"
            assert await c.publish("tweets", {"id": "1", "priority": 3, "msg": "tweet 1"}) == "duplicate"
            async for d in sub:
                assert (d.topic, d.id, d.priority, d.msg, d.redelivered, d.deliveries) == (
                    "tweets", "1", 3, "tweet 1", False, 1,
                )
                await d.ack(wait=True)
                break
            assert await c.topics() == ["tweets"]
            stats = await c.stats("tweets")
            assert {k: stats[k] for k in ("subscribers", "pending", "in_flight", "published")} == {"subscribers": 1, "pending": 0, "in_flight": 0, "published": 1}
            assert "tweets" in await c.stats()
            assert await c.ping() is None
            assert await c.execute("ping") == "pong"

    run(main())


def test_errors_are_the_classes_named_after_their_codes(addr):
    async def main():
        c = await herald.aio.connect(addr)
        try:
            await c.create("t")
            with pytest.raises(herald.NoTopic):
                await c.subscribe("missing")
            with pytest.raises(herald.NotSubscribed):
                await c.unsubscribe("t")
            with pytest.raises(herald.BadTopic):
                await c.create("a/b")
            with pytest.raises(herald.BadEvent):
                await c.publish("t", {"id": "1"})
            with pytest.raises(herald.UnknownCommand):
                await c.execute("nope")
            with pytest.raises(herald.LineTooLong):
                await c.publish("t", {"id": "x", "msg": "x" * (1 << 20)})
            await c.subscribe("t")
            with pytest.raises(herald.NoEvent):
                await c.ack("t", "never", wait=True)
            with pytest.raises(herald.BadState):
                await c.set_name("late")
            async with herald.aio.Client(addr, name="dora"):
                with pytest.raises(herald.NameInUse):
                    await herald.aio.connect(addr, name="dora")
        finally:
            await c.close()

    run(main())


def test_publish_many_of_100k_events_pipelined(addr):
    async def main():
        async with herald.aio.Client(addr) as p, herald.aio.Client(addr, name="counter") as s:
            await s.create("load")
            await s.subscribe("load", prefetch=1)
            results = await p.publish_many("load", ({"id": str(i), "msg": "x" * 80} for i in range(100_000)))
            assert len(results) == 100_000 and set(results) == {"published"}
            assert (await p.stats("load"))["published"] == 100_000

    run(main())


def test_consume_and_ack_with_prefetch_while_publishing_on_the_same_connection(addr):
    async def main():
        async with herald.aio.Client(addr) as c:
            await c.create("echo")
            sub = await c.subscribe("echo", prefetch=32)

            async def consume():
                seen = []
                async for d in sub:
                    seen.append(d.id)
                    await d.ack()
                    if len(seen) == 3000:
                        return seen

            consumer = asyncio.ensure_future(consume())
            results = await c.publish_many("echo", ({"id": str(i), "msg": i} for i in range(3000)))
            assert results == ["published"] * 3000
            seen = await consumer
            assert sorted(seen, key=int) == [str(i) for i in range(3000)]

    run(main())


def test_get_timeout_and_close_end_the_subscription(addr):
    async def main():
        c = await herald.aio.connect(addr)
        await c.create("t")
        sub = await c.subscribe("t")
        assert await sub.get(timeout=0.05) is None

        async def drain():
            return [d async for d in sub]

        task = asyncio.ensure_future(drain())
        await asyncio.sleep(0)
        await c.close()
        assert await task == []
        assert c.closed
        with pytest.raises(herald.ConnectionClosed):
            await c.ping()

    run(main())


def test_a_durable_subscriber_reconnects_after_the_broker_restarts(broker):
    async def main():
        async with herald.aio.Client(broker.addr, name="async-worker") as c:
            await c.create("jobs")
            sub = await c.subscribe("jobs", prefetch=5)
            await c.publish("jobs", {"id": "1", "msg": 1})
            assert (await sub.get(timeout=10)).redelivered is False
            await asyncio.get_running_loop().run_in_executor(None, broker.restart)
            async with herald.aio.Client(broker.addr) as p:
                await p.publish("jobs", {"id": "2", "msg": 2})
            got = sorted([await sub.get(timeout=20), await sub.get(timeout=20)], key=lambda d: d.id)
            assert [(d.id, d.redelivered) for d in got] == [("1", True), ("2", False)]
            for d in got:
                await d.ack(wait=True)
            assert (await c.stats("jobs"))["in_flight"] == 0

    run(main())


def test_an_anonymous_client_fails_cleanly_when_the_connection_drops(proxy):
    async def main():
        c = await herald.aio.connect(proxy.addr)
        await c.create("t")
        sub = await c.subscribe("t")
        proxy.cut(refuse=True)
        with pytest.raises(herald.ConnectionClosed):
            await sub.get(timeout=10)
        with pytest.raises(herald.ConnectionClosed):
            await c.ping()

    run(main())


def test_name_unsub_flush_and_repr(addr):
    async def main():
        c = herald.aio.Client(addr)
        assert "herald.aio.Client" in repr(c)
        await c.connect()
        await c.set_name("async-named")
        assert c.name == "async-named"
        await c.create("t")
        sub = await c.subscribe("t", prefetch=50)
        assert await c.publish_many("t", [{"id": str(i), "msg": i} for i in range(50)]) == ["published"] * 50
        for _ in range(50):
            await (await sub.get(timeout=10)).ack()
        await c.flush()
        assert (await c.stats("t"))["in_flight"] == 0
        await c.unsub("t")
        assert sub.closed
        await c.quit()
        assert c.closed

    run(main())
