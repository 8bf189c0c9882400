"""Version 2, section 12.2: competing consumers in groups."""

from __future__ import annotations

import threading

import pytest

import herald




def test_each_event_goes_to_one_member_of_the_group(addr):
    with herald.Client(addr) as a, herald.Client(addr) as b, herald.Client(addr) as producer:
        producer.create("jobs")
        sa = a.subscribe("jobs", prefetch=5, group="workers")
        sb = b.subscribe("jobs", prefetch=5, group="workers")
        assert sa.group == "workers"
        producer.publish_many("jobs", [{"id": str(i), "msg": i} for i in range(100)])
        seen = {"a": [], "b": []}

        def work(name, sub):
            while True:
                d = sub.get(timeout=2)
                if d is None:
                    return
                seen[name].append(d.id)
                d.ack()

        threads = [threading.Thread(target=work, args=(n, s)) for n, s in (("a", sa), ("b", sb))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        everything = seen["a"] + seen["b"]
        assert sorted(everything, key=int) == [str(i) for i in range(100)]
        assert seen["a"] and seen["b"]  # both worked


def test_a_group_queues_while_no_member_is_connected_and_survives_restarts(broker):
    with herald.Client(broker.addr) as c:
        c.create("jobs")
        c.subscribe("jobs", group="workers")
    with herald.Client(broker.addr) as producer:
        producer.publish("jobs", {"id": "queued", "msg": 1})
    broker.restart()
    with herald.Client(broker.addr) as c:
        d = c.subscribe("jobs", group="workers").get(timeout=10)
        assert d.id == "queued"
        d.ack(wait=True)


def test_a_members_in_flight_events_go_back_to_the_group_when_it_leaves(addr):
    with herald.Client(addr) as stayer, herald.Client(addr) as producer:
        producer.create("jobs")
        leaver = herald.Client(addr)
        sl = leaver.subscribe("jobs", prefetch=1, group="g")
        ss = stayer.subscribe("jobs", prefetch=1, group="g")
        producer.publish_many("jobs", [{"id": "1", "msg": 1}, {"id": "2", "msg": 2}])
        held = sl.get(timeout=10)
        other = ss.get(timeout=10)
        other.ack()
        leaver.close()  # its event returns to the group
        again = ss.get(timeout=10)
        assert (again.id, again.redelivered, again.deliveries) == (held.id, True, 2)


def test_unsub_with_group_deletes_the_group_and_ends_its_members(addr):
    with herald.Client(addr) as member, herald.Client(addr) as admin:
        admin.create("jobs")
        sub = member.subscribe("jobs", group="g")
        admin.unsubscribe("jobs", group="g")
        member.ping()
        with pytest.raises(herald.NotSubscribed):
            admin.unsubscribe("jobs", group="g")
        with pytest.raises(herald.NotSubscribed):
            member.ack("jobs", "1", wait=True)
        assert sub.get(timeout=0.1) is None or sub.closed


def test_group_and_durable_names_share_a_namespace(addr):
    with herald.Client(addr, name="x") as durable, herald.Client(addr) as other:
        durable.create("t")
        durable.subscribe("t")
        with pytest.raises(herald.BadState):
            other.subscribe("t", group="x")


def test_a_connection_is_in_one_subscription_per_topic(addr):
    with herald.Client(addr) as c:
        c.create("t")
        c.subscribe("t")
        with pytest.raises(herald.BadState):
            c.subscribe("t", group="g")


def test_different_options_while_members_are_connected_is_bad_state(addr):
    with herald.Client(addr) as a, herald.Client(addr) as b:
        a.create("t")
        a.subscribe("t", group="g", wait=10)
        with pytest.raises(herald.BadState):
            b.subscribe("t", group="g", wait=20)
        b.subscribe("t", prefetch=5, group="g", wait=10)  # prefetch may differ


def test_a_group_member_reconnects_by_itself(proxy, broker):
    with herald.Client(proxy.addr) as member:
        member.create("jobs")
        sub = member.subscribe("jobs", group="g")
        proxy.cut()
        with herald.Client(broker.addr) as producer:
            producer.publish("jobs", {"id": "after-cut", "msg": 1})
        d = sub.get(timeout=20)
        assert d.id == "after-cut"
        d.ack(wait=True)
