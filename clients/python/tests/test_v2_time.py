"""Version 2, section 13: time to live, delayed delivery, priority aging,
limits and overflow."""

from __future__ import annotations

import datetime
import time

import pytest

import herald
from helpers import wait_until




@pytest.fixture
def c(addr):
    with herald.Client(addr) as client:
        client.create("t")
        yield client


def test_an_event_with_a_ttl_expires_from_the_queue(c):
    sub = c.subscribe("t", prefetch=1)
    c.publish("t", {"id": "blocker", "msg": 0})
    c.publish("t", {"id": "short", "msg": 1}, ttl=0.1)
    wait_until(lambda: c.stats("t")["expired"] == 1, what="the event to expire")
    sub.get(timeout=10).ack()
    assert sub.get(timeout=0.3) is None


def test_create_with_ttl_sets_the_topics_default(c):
    c.create("short-lived", ttl=datetime.timedelta(milliseconds=100))
    sub = c.subscribe("short-lived", prefetch=1)
    c.publish_many("short-lived", [{"id": "1", "msg": 1}, {"id": "2", "msg": 2}])
    wait_until(lambda: c.stats("short-lived")["expired"] >= 1, what="an event to expire")
    sub.get(timeout=10)


def test_a_delayed_event_is_not_delivered_before_its_time(c):
    sub = c.subscribe("t")
    started = time.monotonic()
    c.publish("t", {"id": "1", "msg": 1}, delay=0.3)
    assert c.stats("t")["delayed"] == 1
    d = sub.get(timeout=10)
    assert d.id == "1" and time.monotonic() - started >= 0.25
    assert d.event["delay_ms"] == 300


def test_not_before_takes_a_datetime(c):
    sub = c.subscribe("t")
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=300)
    c.publish("t", {"id": "1", "msg": 1}, not_before=when)
    assert sub.get(timeout=0.1) is None
    assert sub.get(timeout=10).id == "1"


def test_delay_and_not_before_together_is_bad_event(c):
    with pytest.raises(herald.BadEvent):
        c.publish("t", {"id": "1", "msg": 1}, delay=1, not_before=time.time() + 1)


def test_priority_aging(c):
    sub = c.subscribe("t", prefetch=1, age=0.1)
    c.publish("t", {"id": "blocker", "msg": 0})
    c.publish("t", {"id": "old-low", "priority": 0, "msg": 1})
    time.sleep(0.5)  # old-low ages by 5 priority levels
    c.publish("t", {"id": "new-high", "priority": 4, "msg": 2})
    sub.get(timeout=10).ack()
    assert sub.get(timeout=10).id == "old-low"


def test_limit_with_overflow_reject_refuses_the_publish(c):
    c.subscribe("t", prefetch=1, limit=2, overflow="reject")
    c.publish_many("t", [{"id": "1", "msg": 1}, {"id": "2", "msg": 2}])
    with pytest.raises(herald.Full) as e:
        c.publish("t", {"id": "3", "msg": 3})
    assert e.value.code == "full"
    assert c.publish("t", {"id": "2", "msg": 2}) == "duplicate"  # never full
    assert c.stats("t")["published"] == 2


def test_limit_with_overflow_drop_evicts_the_lowest_priority(c):
    sub = c.subscribe("t", prefetch=1, limit=2, overflow="drop")
    c.publish("t", {"id": "in-flight", "priority": 0, "msg": 0})
    c.publish("t", {"id": "low", "priority": 1, "msg": 1})
    c.publish("t", {"id": "high", "priority": 9, "msg": 2})
    assert c.stats("t")["evicted"] == 1
    sub.get(timeout=10).ack()
    assert sub.get(timeout=10).id == "high"


def test_limit_bytes_counts_msg_bytes(c):
    c.subscribe("t", limit_bytes=10, overflow="reject")
    c.publish("t", {"id": "1", "msg": "12345678"})  # '"12345678"' is 10 bytes
    with pytest.raises(herald.Full):
        c.publish("t", {"id": "2", "msg": "x"})
