"""Pipelining: many commands written without waiting, replies matched in
order, deliveries interleaved with replies on the same socket."""

from __future__ import annotations

import threading

import herald

N = 100_000


def test_publish_many_of_100k_events_pipelined(addr):
    with herald.Client(addr) as producer, herald.Client(addr, name="counter") as consumer:
        consumer.create("load")
        consumer.subscribe("load", prefetch=1)
        events = ({"id": f"e{i}", "priority": i % 10, "msg": "x" * 80} for i in range(N))
        results = producer.publish_many("load", events)
        assert len(results) == N and set(results) == {"published"}
        # Publishing them again while they are all pending: all duplicates.
        again = producer.publish_many("load", ({"id": f"e{i}", "msg": 0} for i in range(0, N, 1000)))
        assert again == ["duplicate"] * (N // 1000)
        stats = producer.stats("load")
        assert stats["published"] == N
        assert stats["pending"] + stats["in_flight"] == N


def test_replies_and_deliveries_interleave_on_one_connection(addr):
    # The client publishes to a topic it is itself subscribed to: its
    # socket carries publish replies and deliveries mixed together.
    with herald.Client(addr) as c:
        c.create("echo")
        sub = c.subscribe("echo", prefetch=64)
        got = []

        def consume():
            for d in sub:
                got.append(d.id)
                d.ack()
                if len(got) == 5000:
                    return

        t = threading.Thread(target=consume)
        t.start()
        results = c.publish_many("echo", ({"id": str(i), "msg": i} for i in range(5000)))
        t.join(60)
        assert results == ["published"] * 5000
        assert sorted(got, key=int) == [str(i) for i in range(5000)]
        c.ping()
        assert c.stats("echo")["in_flight"] == 0


def test_mixed_commands_pipelined_from_many_threads_get_their_own_replies(addr):
    with herald.Client(addr) as c:
        c.create("m")
        errors = []

        def work(n):
            try:
                for i in range(300):
                    assert c.publish("m", {"id": f"{n}.{i}", "msg": i}) == "published"
                    assert "m" in c.topics()
                    try:
                        c.stats("missing")
                    except herald.NoTopic:
                        pass
                    else:
                        raise AssertionError("stats of a missing topic succeeded")
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert c.stats("m")["published"] == 1800
