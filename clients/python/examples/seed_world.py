"""The seed's world: a producer publishes tweet-like and user-like events to
`tweets` and `users` with varied priorities, and a subscriber acknowledges
each delivery as it arrives (the seed's demo subscriber).

Start a broker (`herald serve`), then:

    python examples/seed_world.py --events 50
    python examples/seed_world.py --addr 127.0.0.1:8000 --events 1000 --quiet

The address comes from --addr, else HERALD_ADDR, else 127.0.0.1:8000. The
program stops once the subscriber has acknowledged every event published.
"""

import argparse
import os
import threading
import time

import herald


def event(run: int, i: int):
    """The i-th event of the world: two tweets for every user, priorities 0-9."""
    priority = (i * 7) % 10
    if i % 3 == 0:
        user = {"name": f"user{i}", "followers": i * 13 % 1000}
        return "users", {"id": f"user-{run}-{i}", "priority": priority, "msg": user}
    return "tweets", {"id": f"tweet-{run}-{i}", "priority": priority, "msg": f"tweet {i}: hello from the seed's world"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", default=os.environ.get("HERALD_ADDR", "127.0.0.1:8000"))
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()

    with herald.Client(args.addr) as producer, herald.Client(args.addr) as consumer:
        producer.create("tweets")
        producer.create("users")
        # Subscribed before anything is published, so it sees every event.
        subs = [consumer.subscribe("tweets"), consumer.subscribe("users")]
        received = []
        lock = threading.Lock()

        def subscriber(sub: herald.Subscription) -> None:
            for d in sub:
                if not args.quiet:
                    print(f"<- {d.topic:<6} {d.id:<22} priority {d.priority} {d.msg}")
                d.ack()
                with lock:
                    received.append(d.id)

        threads = [threading.Thread(target=subscriber, args=(s,), daemon=True) for s in subs]
        for t in threads:
            t.start()

        # Ids are unique per run: an id still pending from an earlier run
        # would be a duplicate, and the subscriber would wait for it forever.
        run = int(time.time() * 1000)
        for i in range(args.events):
            topic, ev = event(run, i)
            outcome = producer.publish(topic, ev)
            if not args.quiet:
                print(f"-> {topic:<6} {ev['id']:<22} priority {ev['priority']} {outcome}")

        while len(received) < args.events:
            time.sleep(0.01)
        print(f"published {args.events} events, received and acknowledged {len(received)} "
              f"in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
