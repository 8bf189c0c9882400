"""Version 2 through the asyncio client: groups, nack, touch, peek."""

from __future__ import annotations

import asyncio

import pytest

import herald
import herald.aio




def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_group_members_share_the_work(addr):
    async def main():
        async with herald.aio.Client(addr) as a, herald.aio.Client(addr) as b:
            await a.create("jobs")
            sa = await a.subscribe("jobs", prefetch=2, group="w")
            sb = await b.subscribe("jobs", prefetch=2, group="w")
            await a.publish_many("jobs", [{"id": str(i), "msg": i} for i in range(20)])

            async def work(sub):
                got = []
                while True:
                    d = await sub.get(timeout=1)
                    if d is None:
                        return got
                    got.append(d.id)
                    await d.ack()

            ga, gb = await asyncio.gather(work(sa), work(sb))
            assert sorted(ga + gb, key=int) == [str(i) for i in range(20)]

    run(main())


def test_nack_touch_peek(addr):
    async def main():
        async with herald.aio.Client(addr) as c:
            await c.create("jobs")
            sub = await c.subscribe("jobs", wait=5)
            await c.publish("jobs", {"id": "1", "msg": 1})
            d = await sub.get(timeout=10)
            assert 0 < await d.touch(1) <= 1000
            [item] = await c.peek("jobs")
            assert item["state"] == "in_flight"
            await d.nack(wait=True)
            again = await sub.get(timeout=10)
            assert again.deliveries == 2
            await again.ack(wait=True)

    run(main())
