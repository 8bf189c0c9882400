"""Reconnecting: a durable subscriber survives a broker restart and a
network cut; an anonymous client fails cleanly instead."""

from __future__ import annotations

import threading

import pytest

import herald
from helpers import wait_until


def test_a_durable_subscriber_reconnects_after_the_broker_restarts(broker):
    consumer = herald.Client(broker.addr, name="worker")
    try:
        consumer.create("jobs")
        sub = consumer.subscribe("jobs", prefetch=10)
        with herald.Client(broker.addr) as producer:
            producer.publish_many("jobs", [{"id": str(i), "msg": i} for i in range(3)])
        first = [sub.get(timeout=10) for _ in range(3)]
        first[0].ack(wait=True)

        broker.stop()  # SIGTERM: a clean stop
        # Waiting commands are kept and sent again once connected.
        pinged = threading.Event()
        threading.Thread(target=lambda: (consumer.ping(), pinged.set()), daemon=True).start()
        broker.start()  # same data directory, same port
        with herald.Client(broker.addr) as producer:
            producer.publish("jobs", {"id": "after", "msg": 3})

        # The two unacknowledged events come again, marked, then the new one.
        again = sorted((sub.get(timeout=20) for _ in range(3)), key=lambda d: d.id)
        assert [(d.id, d.redelivered) for d in again] == [("1", True), ("2", True), ("after", False)]
        for d in again:
            d.ack(wait=True)
        assert pinged.wait(10)
        stats = consumer.stats("jobs")
        assert {k: stats[k] for k in ("subscribers", "pending", "in_flight", "published")} == {"subscribers": 1, "pending": 0, "in_flight": 0, "published": 1}
    finally:
        consumer.close()


def test_a_durable_subscriber_reconnects_after_a_network_cut(proxy, broker):
    with herald.Client(proxy.addr, name="survivor") as c:
        c.create("t")
        sub = c.subscribe("t")
        proxy.cut()
        # Published while the subscriber is cut off: queued for it.
        with herald.Client(broker.addr) as producer:
            producer.publish("t", {"id": "during-cut", "msg": 1})
        d = sub.get(timeout=20)
        assert d.id == "during-cut"
        d.ack(wait=True)
        assert proxy.accepted >= 2  # more if a first try met the old name still held


def test_commands_sent_while_disconnected_wait_for_the_next_connection(proxy, broker):
    with herald.Client(proxy.addr, name="patient") as c:
        c.create("t")
        proxy.cut(refuse=True)
        wait_until(lambda: not c._session.connected, what="the client to see the cut")
        result = []
        t = threading.Thread(target=lambda: result.append(c.publish("t", {"id": "late", "msg": 1})))
        t.start()
        t.join(0.3)
        assert result == []  # still waiting: nothing to send it on
        proxy.heal()
        t.join(20)
        assert result == ["published"]


def test_an_anonymous_client_fails_waiting_commands_and_subscriptions(proxy):
    c = herald.Client(proxy.addr)
    c.create("t")
    sub = c.subscribe("t")
    proxy.cut(refuse=True)
    with pytest.raises(herald.ConnectionClosed):
        sub.get(timeout=10)
    with pytest.raises(herald.ConnectionClosed):
        c.ping()
    assert c.closed


def test_reconnect_can_be_asked_for_explicitly(proxy):
    with herald.Client(proxy.addr, reconnect=True) as c:
        c.create("t")
        proxy.cut()
        c.ping()
        assert c.topics() == ["t"]
        assert proxy.accepted == 2


def test_several_addresses_fail_over_to_the_next(proxy, broker):
    # The first address refuses connections; the client moves on.
    proxy.cut(refuse=True)
    with herald.Client([proxy.addr, broker.addr]) as c:
        assert c.address == broker.addr
        c.create("t")
        assert c.topics() == ["t"]
