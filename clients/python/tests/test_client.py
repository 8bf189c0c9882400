"""The blocking client against the real broker: every command of PROTOCOL.md
sections 1-8, as a user's script would call it."""

from __future__ import annotations

import threading

import pytest

import herald


@pytest.fixture
def client(addr):
    with herald.Client(addr) as c:
        yield c


def test_the_seed_example_publish_subscribe_ack(client):
    client.create("tweets")
    sub = client.subscribe("tweets")
    assert client.publish("tweets", {"id": "1", "priority": 3, "msg": "tweet 1"}) == "published"
    d = sub.get(timeout=10)
    assert (d.topic, d.id, d.priority, d.msg) == ("tweets", "1", 3, "tweet 1")
    assert d.redelivered is False and d.deliveries == 1
    assert isinstance(d.timestamp, int) and d.timestamp > 1_600_000_000_000
    assert d.event == {"topic": "tweets", "id": "1", "priority": 3, "msg": "tweet 1", "timestamp": d.timestamp}
    d.ack(wait=True)
    with pytest.raises(herald.NoEvent) as e:
        client.ack("tweets", "1", wait=True)
    assert e.value.code == "no_event" and "1" in e.value.text


def test_a_pending_id_is_a_duplicate(client):
    client.create("t")
    client.subscribe("t")
    assert client.publish("t", {"id": "a", "msg": 1}) == "published"
    assert client.publish("t", {"id": "a", "msg": 2}) == "duplicate"
    assert client.stats("t")["published"] == 1


def test_deliveries_come_highest_priority_first_then_in_publish_order(addr, client):
    client.create("jobs")
    sub = client.subscribe("jobs", prefetch=1)
    # A first event takes the one slot (prefetch 1); the rest queue up
    # behind it and come out by priority, equal priorities in publish order.
    client.publish("jobs", {"id": "first", "msg": 0})
    events = [{"id": str(i), "priority": p, "msg": i} for i, p in enumerate([0, 1, 5, 1, 5, 0, 9])]
    assert client.publish_many("jobs", events) == ["published"] * len(events)
    order = []
    for d in sub:
        order.append(d.id)
        d.ack()
        if len(order) == len(events) + 1:
            break
    assert order == ["first", "6", "2", "4", "1", "3", "0", "5"]


def test_prefetch_bounds_the_deliveries_in_flight(client, addr):
    client.create("t")
    sub = client.subscribe("t", prefetch=3)
    with herald.Client(addr) as producer:
        producer.publish_many("t", [{"id": str(i), "msg": i} for i in range(10)])
    client.ping()  # every delivery the broker could send is now read
    got = [sub.get(timeout=10) for _ in range(3)]
    assert sub.get(timeout=0) is None
    stats = client.stats("t")
    assert (stats["in_flight"], stats["pending"]) == (3, 7)
    got[0].ack()
    assert sub.get(timeout=10).id == "3"


def test_ids_given_as_integers_come_back_as_strings(client):
    client.create("t")
    sub = client.subscribe("t")
    client.publish("t", {"id": 42, "msg": {"nested": [1, 2]}})
    d = sub.get(timeout=10)
    assert d.id == "42" and d.msg == {"nested": [1, 2]} and d.priority == 0
    d.ack(wait=True)


def test_events_may_be_given_as_json_text_and_keep_their_own_fields(client):
    client.create("t")
    sub = client.subscribe("t")
    assert client.publish("t", '{"id":"s","msg":"text","source":"sensor-7"}') == "published"
    assert client.publish("t", b'{"id":"b","msg":"bytes"}') == "published"
    first = sub.get(timeout=10)
    assert first.event["source"] == "sensor-7"
    first.ack()
    assert sub.get(timeout=10).msg == "bytes"


def test_create_topics_stats_ping(client):
    assert client.topics() == []
    client.create("users")
    client.create("tweets")
    client.create("tweets")  # creating again is fine
    assert sorted(client.topics()) == ["tweets", "users"]
    client.subscribe("tweets", prefetch=2)
    client.publish_many("tweets", [{"id": str(i), "msg": i} for i in range(3)])
    client.ping()
    stats = client.stats("tweets")
    assert {k: stats[k] for k in ("subscribers", "pending", "in_flight", "published")} == {"subscribers": 1, "pending": 1, "in_flight": 2, "published": 3}
    everything = client.stats()
    assert set(everything) == {"tweets", "users"}
    assert everything["users"]["published"] == 0
    assert client.ping() is None


def test_unsubscribe_ends_the_iteration_and_the_queue(client, addr):
    client.create("t")
    sub = client.subscribe("t")
    sub.unsubscribe()
    assert sub.closed
    assert list(sub) == []
    with pytest.raises(herald.NotSubscribed):
        client.unsub("t")
    assert client.stats("t")["subscribers"] == 0


def test_subscribing_again_changes_the_prefetch_of_the_same_subscription(client):
    client.create("t")
    sub = client.subscribe("t", prefetch=1)
    client.publish_many("t", [{"id": str(i), "msg": i} for i in range(5)])
    again = client.subscribe("t", prefetch=5)
    assert again is sub and sub.prefetch == 5
    client.ping()
    ids = {sub.get(timeout=10).id for _ in range(5)}
    assert ids == {str(i) for i in range(5)}


def test_get_times_out_with_none_and_close_ends_iteration(addr):
    c = herald.Client(addr)
    c.create("t")
    sub = c.subscribe("t")
    assert sub.get(timeout=0.05) is None
    done = threading.Event()
    seen = []

    def consume():
        for d in sub:
            seen.append(d)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    c.close()
    assert done.wait(10), "iteration did not end when the client closed"
    assert seen == [] and sub.closed and c.closed
    with pytest.raises(herald.ConnectionClosed):
        c.ping()


def test_a_durable_subscriber_gets_what_was_published_while_it_was_away(addr):
    with herald.Client(addr, name="alice") as alice:
        alice.create("t")
        sub = alice.subscribe("t")
        assert alice.name == "alice"
    with herald.Client(addr) as producer:
        producer.publish("t", {"id": "while-away", "msg": 1})
    with herald.Client(addr, name="alice") as alice:
        sub = alice.subscribe("t")
        d = sub.get(timeout=10)
        assert d.id == "while-away"
        d.ack(wait=True)


def test_an_unacked_delivery_comes_back_redelivered_to_a_durable_subscriber(addr):
    with herald.Client(addr, name="bob") as bob:
        bob.create("t")
        sub = bob.subscribe("t")
        bob.publish("t", {"id": "x", "msg": 1})
        assert sub.get(timeout=10).redelivered is False
    with herald.Client(addr) as bob:
        bob.set_name("bob")
        d = bob.subscribe("t").get(timeout=10)
        assert (d.id, d.redelivered, d.deliveries) == ("x", True, 2)
        d.ack(wait=True)


def test_one_client_shared_by_threads(addr):
    with herald.Client(addr) as c:
        c.create("t")
        results = []

        def work(n):
            for i in range(200):
                results.append(c.publish("t", {"id": f"{n}-{i}", "msg": i}))
                c.ping()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["published"] * 800
        assert c.stats("t")["published"] == 800


def test_execute_sends_any_command(client):
    assert client.execute("ping") == "pong"
    assert client.execute("CREATE", "x") == "created x"


def test_context_manager_and_repr(addr):
    with herald.connect(addr) as c:
        assert "herald.Client" in repr(c) and addr in repr(c)
    assert c.closed


def test_flush_waits_for_everything_sent_and_quit_closes(addr):
    c = herald.Client(addr)
    c.create("t")
    sub = c.subscribe("t", prefetch=100)
    c.publish_many("t", [{"id": str(i), "msg": i} for i in range(100)])
    for _ in range(100):
        sub.get(timeout=10).ack()  # written behind
    c.flush()  # every ack above has been answered
    assert c.stats("t")["in_flight"] == 0
    c.quit()
    assert c.closed and sub.closed


def test_subscription_close_is_unsubscribe(client):
    client.create("t")
    sub = client.subscribe("t")
    sub.close()
    assert sub.closed and client.stats("t")["subscribers"] == 0
    sub.close()  # again: nothing to do
