"""An asyncio consumer: a durable subscriber ("audit") that reads two topics
with a prefetch of 100, handles each event and acknowledges it. Run it, stop
it with Ctrl-C, publish meanwhile, run it again: nothing is lost, and what
it had received but not acknowledged comes again marked redelivered.

    herald serve &
    python examples/async_consumer.py --for 5 &
    herald pub tweets --id 1 --priority 3 --msg hi
"""

import argparse
import asyncio
import os

import herald.aio


async def consume(sub: herald.aio.Subscription, counts: dict) -> None:
    async for d in sub:
        again = f" (delivery {d.deliveries})" if d.redelivered else ""
        print(f"{d.topic}/{d.id} priority {d.priority}: {d.msg}{again}")
        await d.ack()
        counts[d.topic] = counts.get(d.topic, 0) + 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default=os.environ.get("HERALD_ADDR", "127.0.0.1:8000"))
    parser.add_argument("--name", default="audit")
    parser.add_argument("--for", dest="seconds", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args()

    counts: dict = {}
    # A durable name: the broker keeps its queues while it is away, and the
    # client reconnects by itself if the broker restarts.
    async with herald.aio.Client(args.addr, name=args.name) as c:
        await c.create("tweets")
        await c.create("users")
        subs = [await c.subscribe(topic, prefetch=100) for topic in ("tweets", "users")]
        tasks = [asyncio.ensure_future(consume(s, counts)) for s in subs]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), args.seconds)
        except asyncio.TimeoutError:
            pass
    print("acknowledged:", counts or "nothing")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
