"""Version 2, sections 12.3-12.7: ack deadlines, touch, nack, backoff, dead
letters, peek, the subscription options and the new stats."""

from __future__ import annotations

import time

import pytest

import herald




@pytest.fixture
def c(addr):
    with herald.Client(addr) as client:
        client.create("jobs")
        yield client


def test_options_are_stored_and_shown_in_stats(c):
    c.subscribe("jobs", prefetch=3, wait=30, backoff=[0, 1], max_deliveries=5, dead="graveyard",
                age=2, limit=100, limit_bytes=1 << 20, overflow="drop")
    subs = c.stats("jobs")["subscriptions"]
    assert len(subs) == 1
    assert subs[0]["prefetch"] == 3
    options = subs[0]["options"]
    assert "wait=30000" in options and "overflow=drop" in options and "backoff=0,1000" in options


def test_bad_option_values_are_bad_args(c):
    with pytest.raises(herald.BadArgs):
        c.subscribe("jobs", overflow="sideways")
    with pytest.raises(herald.BadArgs):
        c.subscribe("jobs", max_deliveries=0)
    with pytest.raises(herald.BadArgs):
        c.subscribe("jobs", dead="a/b")


def test_nack_returns_the_event_and_counts_deliveries(c):
    sub = c.subscribe("jobs")
    c.publish("jobs", {"id": "1", "msg": 1})
    d = sub.get(timeout=10)
    d.nack(wait=True)
    again = sub.get(timeout=10)
    assert (again.id, again.redelivered, again.deliveries) == ("1", True, 2)
    again.ack(wait=True)


def test_nack_with_a_delay_holds_the_event_delayed(c):
    sub = c.subscribe("jobs")
    c.publish("jobs", {"id": "1", "msg": 1})
    sub.get(timeout=10).nack(delay=0.3, wait=True)
    [item] = c.peek("jobs")
    assert item["state"] == "delayed" and 0 < item["due_ms"] <= 300
    started = time.monotonic()
    d = sub.get(timeout=10)
    assert d.id == "1" and time.monotonic() - started >= 0.2


def test_nack_dead_dead_letters_at_once(c):
    c.create("jobs.dead")
    dead = c.subscribe("jobs.dead")
    sub = c.subscribe("jobs")
    c.publish("jobs", {"id": "1", "priority": 4, "msg": "m", "mine": True})
    sub.get(timeout=10).nack(dead=True, wait=True)
    letter = dead.get(timeout=10)
    assert letter.msg == "m" and letter.priority == 4 and letter.event["mine"] is True
    info = letter.event["dead"]
    assert (info["topic"], info["id"], info["reason"], info["deliveries"]) == ("jobs", "1", "rejected", 1)


def test_an_unacknowledged_delivery_returns_after_wait(c):
    sub = c.subscribe("jobs", wait=0.2)
    c.publish("jobs", {"id": "1", "msg": 1})
    first = sub.get(timeout=10)
    again = sub.get(timeout=10)
    assert (again.id, again.deliveries) == (first.id, 2)


def test_touch_restarts_the_deadline(c):
    sub = c.subscribe("jobs", wait=0.5)
    c.publish("jobs", {"id": "1", "msg": 1})
    d = sub.get(timeout=10)
    left = d.touch(2)
    assert 1500 < left <= 2000
    assert c.touch("jobs", "1") <= 500
    with pytest.raises(herald.NoEvent):
        c.touch("jobs", "nope")


def test_touch_without_wait_is_bad_state(c):
    sub = c.subscribe("jobs")
    c.publish("jobs", {"id": "1", "msg": 1})
    with pytest.raises(herald.BadState):
        sub.get(timeout=10).touch()


def test_max_deliveries_dead_letters_with_its_reason(c):
    c.create("jobs.dead")
    dead = c.subscribe("jobs.dead")
    sub = c.subscribe("jobs", max_deliveries=2)
    c.publish("jobs", {"id": "1", "msg": 1})
    sub.get(timeout=10).nack()
    sub.get(timeout=10).nack()
    letter = dead.get(timeout=10)
    assert letter.id.endswith("/1") and letter.event["dead"]["reason"] == "max_deliveries"
    assert c.stats("jobs")["dead_lettered"] == 1


def test_backoff_delays_returns(c):
    sub = c.subscribe("jobs", backoff=[0.3])
    c.publish("jobs", {"id": "1", "msg": 1})
    sub.get(timeout=10).nack()
    assert c.peek("jobs")[0]["state"] == "delayed"
    assert sub.get(timeout=10).deliveries == 2


def test_peek_shows_states_in_order_without_changing_anything(addr, c):
    sub = c.subscribe("jobs", prefetch=1)
    c.publish("jobs", {"id": "a", "msg": 1})
    # a is in flight before b arrives (in one batch, b's priority would win).
    assert sub.get(timeout=10).id == "a"
    c.publish("jobs", {"id": "b", "msg": 2, "priority": 5})
    c.publish("jobs", {"id": "later", "msg": 3}, delay=60)
    items = c.peek("jobs", 10)
    assert [(i["state"], i["event"]["id"]) for i in items] == [
        ("in_flight", "a"), ("queued", "b"), ("delayed", "later"),
    ]
    assert items[2]["due_ms"] > 50_000
    assert c.peek("jobs", 1)[0]["event"]["id"] == "a"
    with herald.Client(addr) as other:
        with pytest.raises(herald.NotSubscribed):
            other.peek("jobs")
        with pytest.raises(herald.NotSubscribed):
            other.peek("missing")


def test_peek_a_durable_subscriber_or_group_by_name(addr, c):
    with herald.Client(addr, name="dur") as d:
        d.subscribe("jobs")
    c.subscribe("jobs", group="g")
    c.unsubscribe("jobs")
    c.publish("jobs", {"id": "1", "msg": 1})
    assert c.peek("jobs", sub="dur")[0]["event"]["id"] == "1"
    assert c.peek("jobs", group="g")[0]["event"]["id"] == "1"
