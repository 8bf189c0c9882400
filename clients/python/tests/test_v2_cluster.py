"""Version 2, section 17: a three-node cluster. The client takes every
node's address, follows `-ERR not_leader <addr>` and fails over."""

from __future__ import annotations

import signal
import time

import pytest

import herald
from helpers import Broker, free_port, wait_until

pytestmark = pytest.mark.pending


@pytest.fixture
def cluster(binary, tmp_path):
    client_ports = [free_port() for _ in range(3)]
    raft_ports = [free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(raft_ports))
    nodes = []
    for i in range(3):
        nodes.append(
            Broker(
                tmp_path / f"node{i + 1}",
                port=client_ports[i],
                extra=[
                    "--node-id", str(i + 1),
                    "--peers", peers,
                    "--raft-listen", f"127.0.0.1:{raft_ports[i]}",
                    "--advertise", f"127.0.0.1:{client_ports[i]}",
                ],
            )
        )
    yield nodes
    for n in nodes:
        n.close()


def leader_of(nodes):
    """The leader's index, once one is elected (asked of any live node)."""
    for n in nodes:
        if n.proc is None:
            continue
        try:
            with herald.Client(n.addr, connect_timeout=2) as c:
                state = c.cluster()
        except (OSError, herald.HeraldError):
            continue
        if state.get("leader"):
            return state["leader"] - 1
    return None


def publish_retrying(c, topic, event, seconds=30.0):
    """Publishes, retrying while the cluster has no leader (section 17: a
    retry with the same id is safe)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return c.publish(topic, event)
        except herald.Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_cluster_reports_its_nodes(cluster):
    wait_until(lambda: leader_of(cluster) is not None, 30, "a leader")
    with herald.Client(cluster[0].addr) as c:
        state = c.cluster()
        assert state["node"] == 1 and len(state["nodes"]) == 3
        assert state["role"] in ("leader", "follower")


def test_a_client_follows_not_leader_to_the_leader(cluster):
    wait_until(lambda: leader_of(cluster) is not None, 30, "a leader")
    lead = leader_of(cluster)
    follower = cluster[(lead + 1) % 3]
    # Alone, a follower refuses changes and names the leader.
    with herald.Client(follower.addr, reconnect=False) as plain:
        with pytest.raises(herald.NotLeader) as e:
            plain.create("t")
        assert e.value.leader == cluster[lead].addr
    # With every address, the client goes there by itself.
    with herald.Client([follower.addr] + [n.addr for n in cluster if n is not follower]) as c:
        c.create("t")
        assert c.publish("t", {"id": "1", "msg": 1}) == "published"
        assert c.address == cluster[lead].addr


def test_failover_when_the_leader_dies(cluster):
    wait_until(lambda: leader_of(cluster) is not None, 30, "a leader")
    addrs = [n.addr for n in cluster]
    with herald.Client(addrs) as producer, herald.Client(addrs, name="reader") as reader:
        producer.create("t")
        sub = reader.subscribe("t", prefetch=10)
        assert producer.publish("t", {"id": "before", "msg": 1}) == "published"
        held = sub.get(timeout=20)
        assert held.id == "before"
        lead = leader_of(cluster)
        cluster[lead].stop(signal.SIGKILL)
        assert publish_retrying(producer, "t", {"id": "after", "msg": 2}) in ("published", "duplicate")
        got = {}
        while len(got) < 2:
            d = sub.get(timeout=30)
            assert d is not None, "the subscriber did not resume after the failover"
            got[d.id] = d
        assert got["before"].redelivered  # it was in flight at the old leader
        for d in got.values():
            d.ack(wait=True)
