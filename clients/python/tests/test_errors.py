"""Every error the broker can produce today (PROTOCOL.md section 2), as the
exception class named after its code; and the client's own refusals."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import herald
from helpers import Broker


@pytest.fixture
def client(addr):
    with herald.Client(addr) as c:
        c.create("t")
        yield c


def test_unknown_command(client):
    with pytest.raises(herald.UnknownCommand) as e:
        client.execute("frobnicate")
    assert e.value.code == "unknown_command" and e.value.text
    assert isinstance(e.value, herald.HeraldError)


def test_bad_args(client):
    with pytest.raises(herald.BadArgs):
        client.subscribe("t", prefetch=0)
    with pytest.raises(herald.BadArgs):
        client.subscribe("t", prefetch=65536)
    with pytest.raises(herald.BadArgs):
        client.set_name("no/slashes")
    with pytest.raises(herald.BadArgs):
        client.execute("ping", "extra")


def test_bad_topic(client):
    for call in (
        lambda: client.create("a/b"),
        lambda: client.publish("a/b", {"id": "1", "msg": 1}),
        lambda: client.subscribe(".hidden"),
        lambda: client.stats("x" * 129),
    ):
        with pytest.raises(herald.BadTopic):
            call()


def test_bad_event(client):
    for event in (
        {"msg": "no id"},
        {"id": "1"},
        {"id": "1", "msg": 1, "priority": 256},
        {"id": "1", "msg": 1, "priority": "3"},
        {"id": "1", "msg": 1, "topic": "reserved"},
        '"not an object"',
        "not json",
    ):
        with pytest.raises(herald.BadEvent):
            client.publish("t", event)
    assert client.stats("t")["published"] == 0


def test_bad_request_for_bytes_that_are_not_utf8(client):
    with pytest.raises(herald.BadRequest):
        client.publish("t", b'{"id":"1","msg":"\xff\xfe"}')
    client.ping()  # the connection stays usable


def test_no_topic(client):
    with pytest.raises(herald.NoTopic):
        client.subscribe("missing")
    with pytest.raises(herald.NoTopic):
        client.stats("missing")


def test_not_subscribed(client):
    with pytest.raises(herald.NotSubscribed):
        client.unsubscribe("t")
    with pytest.raises(herald.NotSubscribed):
        client.ack("t", "1", wait=True)
    with pytest.raises(herald.NotSubscribed):
        client.ack("missing", "1", wait=True)


def test_no_event(client):
    client.subscribe("t")
    with pytest.raises(herald.NoEvent):
        client.ack("t", "never-published", wait=True)


def test_name_in_use(addr):
    with herald.Client(addr, name="carol"):
        with pytest.raises(herald.NameInUse):
            herald.Client(addr, name="carol")
        with herald.Client(addr) as other:
            with pytest.raises(herald.NameInUse):
                other.set_name("carol")


def test_bad_state(client):
    client.subscribe("t")
    with pytest.raises(herald.BadState):
        client.set_name("late")


def test_line_too_long_and_the_connection_stays_usable(client):
    with pytest.raises(herald.LineTooLong):
        client.publish("t", {"id": "big", "msg": "x" * (1024 * 1024 + 1)})
    # Pipelined around it, every reply still finds its command.
    results = client.publish_many("t", [{"id": "a", "msg": 1}, {"id": "b", "msg": 2}])
    assert results == ["published", "published"]


def test_a_refused_ack_not_waited_for_is_raised_by_the_subscription(client):
    sub = client.subscribe("t")
    client.publish("t", {"id": "1", "msg": 1})
    d = sub.get(timeout=10)
    d.ack()
    d.ack()  # a second ack of the same event: no_event, raised later
    client.publish("t", {"id": "2", "msg": 2})
    with pytest.raises(herald.NoEvent):
        sub.get(timeout=10)
    # The delivery that came meanwhile is still there.
    assert sub.get(timeout=10).id == "2"


def test_publish_many_raises_the_first_refusal_with_every_outcome(client):
    events = [{"id": "1", "msg": 1}, {"id": "2"}, {"id": "3", "msg": 3}, {"msg": 4}]
    with pytest.raises(herald.BadEvent) as e:
        client.publish_many("t", events)
    assert e.value.index == 1
    outcomes = [r if isinstance(r, str) else r.code for r in e.value.results]
    assert outcomes == ["published", "bad_event", "published", "bad_event"]
    assert client.stats("t")["published"] == 2


def test_values_that_would_break_the_line_are_refused_before_sending(client):
    for call in (
        lambda: client.create("two words"),
        lambda: client.create(""),
        lambda: client.create("new\nline"),
        lambda: client.ack("t", "a b"),
        lambda: client.publish("t", '{"id":"1",\n"msg":1}'),
        lambda: client.subscribe("t", wait=-1),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        client.subscribe("t", colour="red")  # type: ignore[call-arg]
    client.ping()


def test_connecting_to_nothing_is_an_os_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(OSError):
        herald.Client(f"127.0.0.1:{port}", connect_timeout=5)


def _mount_tmpfs(size: str):
    if os.geteuid() != 0 or not shutil.which("mount"):
        return None
    root = Path(tempfile.mkdtemp())
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True)
    if ok.returncode != 0:
        root.rmdir()
        return None
    return root


def test_unavailable_when_the_disk_is_full(binary):
    mount = _mount_tmpfs("4m")
    if mount is None:
        pytest.skip("cannot mount a tmpfs here (needs root): a full disk cannot be faked")
    broker = None
    try:
        broker = Broker(mount / "data", extra=["--segment-bytes", "262144"])
        with herald.Client(broker.addr) as c:
            c.create("t")
            c.subscribe("t")  # so that events are kept, and the log grows
            filler = mount / "filler"
            free = shutil.disk_usage(mount).free
            filler.write_bytes(b"\0" * max(free - 128 * 1024, 0))
            msg = "x" * 4000
            with pytest.raises(herald.Unavailable) as e:
                for i in range(1000):
                    c.publish("t", {"id": str(i), "msg": msg})
            assert e.value.code == "unavailable"
            filler.unlink()
            c.ping()
    finally:
        if broker is not None:
            broker.close()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        try:
            mount.rmdir()
        except OSError:
            pass
