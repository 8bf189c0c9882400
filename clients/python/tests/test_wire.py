"""Unit tests, no broker: building lines, reading replies, matching them."""

from __future__ import annotations

import datetime
import json
import pickle

import pytest

import herald
from herald import _wire
from herald._delivery import DeliveryBase
from herald._session import ACK, BATCH, OTHER, PUB, SUB, Command, Session


class W:
    """A waiter, as the clients use (Future-like)."""

    def __init__(self):
        self.value = self.exc = None
        self._done = False

    def done(self):
        return self._done

    def set_result(self, v):
        self.value, self._done = v, True

    def set_exception(self, e):
        self.exc, self._done = e, True


class Sub:
    def __init__(self, topic, group=None):
        self.topic, self.group, self._line = topic, group, f"sub {topic}\n"
        self.got, self.errors, self.ended = [], [], "no"

    def _subscribed(self, line, options):
        self._line = line

    def _push(self, event, gen):
        self.got.append((event["id"], gen))

    def _defer(self, e):
        self.errors.append(e)

    def _clear(self):
        self.got.clear()

    def _end(self, e):
        self.ended = e


def cmd(kind, line, **kw):
    c = Command(kind, line, **kw)
    c.waiter = W()
    return c


def session(mode="all", reconnect=None, multi=False):
    s = Session(reconnect=reconnect, multi=multi, mode=mode)
    s.resume()
    return s


# --- building lines ---------------------------------------------------------------


def test_addresses():
    assert _wire.parse_address("h:1") == ("h", 1)
    assert _wire.parse_address("h") == ("h", 8000)
    assert _wire.parse_address(("h", 2)) == ("h", 2)
    assert _wire.parse_address("[::1]:9") == ("::1", 9)
    assert _wire.parse_addresses(["a:1", "b:2"]) == [("a", 1), ("b", 2)]
    assert _wire.format_address(("::1", 9)) == "[::1]:9"
    with pytest.raises(ValueError):
        _wire.parse_address("h:port")


def test_tokens_may_not_split_or_shift_a_line():
    assert _wire.token("tweets", "topic") == "tweets"
    assert _wire.token(7, "id") == "7"
    for bad in ("", "a b", "a\nb", "a\tb", "a\rb"):
        with pytest.raises(ValueError):
            _wire.token(bad, "topic")
    with pytest.raises(TypeError):
        _wire.token(None, "topic")


def test_durations_are_seconds_or_timedeltas_sent_in_ms():
    assert _wire.duration_ms(1.5, "wait") == 1500
    assert _wire.duration_ms(datetime.timedelta(minutes=2), "wait") == 120000
    assert _wire.duration_ms(0.0001, "wait") == 1  # rounds up, never to 0
    assert _wire.duration_ms(0, "backoff", allow_zero=True) == 0
    for bad in (0, -1, 31 * 86400):
        with pytest.raises(ValueError):
            _wire.duration_ms(bad, "wait")
    with pytest.raises(TypeError):
        _wire.duration_ms("5s", "wait")


def test_sub_options_in_the_protocols_order():
    line = _wire.sub_line(
        "jobs",
        10,
        {
            "overflow": "drop",
            "max_deliveries": 5,
            "group": "workers",
            "wait": 30,
            "backoff": [0, 1, datetime.timedelta(seconds=10)],
            "dead": "none",
            "age": 1,
            "limit": 100,
            "limit_bytes": 1 << 20,
        },
    )
    assert line == (
        "sub jobs 10 group=workers wait=30000 backoff=0,1000,10000 max_deliveries=5 "
        "dead=none age=1000 limit=100 limit_bytes=1048576 overflow=drop\n"
    )
    assert _wire.sub_line("t", None, {}) == "sub t\n"
    assert _wire.sub_line("t", None, {"group": "g"}) == "sub t group=g\n"


def test_nack_lines():
    assert _wire.nack_line("t", "1", None, False) == "nack t 1\n"
    assert _wire.nack_line("t", "1", 2.5, False) == "nack t 1 2500\n"
    assert _wire.nack_line("t", "1", 0, False) == "nack t 1 0\n"
    assert _wire.nack_line("t", "1", None, True) == "nack t 1 dead\n"
    with pytest.raises(ValueError):
        _wire.nack_line("t", "1", 1, True)


def test_events_are_compact_json_on_one_line():
    assert _wire.encode_event({"id": "1", "msg": "a\nb"}) == '{"id":"1","msg":"a\\nb"}'
    assert _wire.encode_event({"id": "é", "msg": 1}) == '{"id":"\\u00e9","msg":1}'
    assert _wire.encode_event('{"id":"1","msg":1}') == '{"id":"1","msg":1}'
    with pytest.raises(ValueError):
        _wire.encode_event('{"id":"1",\n"msg":1}')
    with pytest.raises(TypeError):
        _wire.encode_event(42)  # type: ignore[arg-type]


def test_publish_keywords_set_the_publisher_fields():
    when = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    extra = _wire.event_fields(1.5, datetime.timedelta(milliseconds=250), when)
    assert extra == {"ttl_ms": 1500, "delay_ms": 250, "not_before": 1893456000000}
    event = {"id": "1", "msg": 1}
    assert json.loads(_wire.encode_event(event, extra)) == {**event, **extra}
    assert event == {"id": "1", "msg": 1}  # the caller's dict is not changed
    assert json.loads(_wire.encode_event('{"id":"1","msg":1}', {"delay_ms": 0})) == {"id": "1", "msg": 1, "delay_ms": 0}
    assert _wire.event_fields(None, None, None) is None


# --- errors -----------------------------------------------------------------------


def test_every_code_has_its_class_and_unknown_codes_still_work():
    codes = {
        "unknown_command": herald.UnknownCommand,
        "bad_args": herald.BadArgs,
        "bad_topic": herald.BadTopic,
        "bad_event": herald.BadEvent,
        "bad_request": herald.BadRequest,
        "no_topic": herald.NoTopic,
        "not_subscribed": herald.NotSubscribed,
        "no_event": herald.NoEvent,
        "name_in_use": herald.NameInUse,
        "bad_state": herald.BadState,
        "line_too_long": herald.LineTooLong,
        "unavailable": herald.Unavailable,
        "full": herald.Full,
        "auth_required": herald.AuthRequired,
        "auth_failed": herald.AuthFailed,
        "forbidden": herald.Forbidden,
        "not_leader": herald.NotLeader,
    }
    for code, cls in codes.items():
        e = herald.errors.error_from_line(f"-ERR {code} some text here")
        assert type(e) is cls and e.code == code and e.text == "some text here"
        assert isinstance(e, herald.HeraldError)
        assert type(pickle.loads(pickle.dumps(e))) is cls
    future = herald.errors.error_from_line(b"-ERR brand_new what")
    assert type(future) is herald.HeraldError and future.code == "brand_new"
    assert str(future) == "brand_new: what"


def test_not_leader_carries_the_leader_address():
    e = herald.errors.error_from_line("-ERR not_leader 10.0.0.2:8000 node 2 leads")
    assert e.leader == "10.0.0.2:8000"
    assert herald.errors.error_from_line("-ERR not_leader").leader is None


def test_delivery_fields():
    d = DeliveryBase({"topic": "t", "id": 5, "msg": "m", "timestamp": 1}, None, 1)
    assert (d.id, d.priority, d.redelivered, d.deliveries) == ("5", 0, False, 1)
    d = DeliveryBase({"topic": "t", "id": "x", "priority": 4, "msg": None, "redelivered": True}, None, 1)
    assert (d.priority, d.redelivered, d.deliveries) == (4, True, 2)
    d = DeliveryBase({"topic": "t", "id": "x", "msg": 0, "redelivered": True, "deliveries": 7}, None, 1)
    assert d.deliveries == 7


# --- matching replies -------------------------------------------------------------


def test_replies_match_commands_in_order_and_deliveries_go_to_their_topic():
    s = session()
    sub = Sub("t")
    a = cmd(SUB, "sub t\n", topic="t", sub=sub)
    b = cmd(PUB, "pub t {}\n")
    c = cmd(OTHER, "stats nope\n")
    assert s.register(a) + s.register(b) + s.register(c) == "sub t\npub t {}\nstats nope\n"
    # Split at arbitrary points, a delivery in between.
    data = b'+OK subscribed t\r\n{"topic":"t","id":"1","msg":1}\r\n+OK published t 1\r\n-ERR no_topic no topic\r\n'
    for i in range(0, len(data), 7):
        assert s.feed(data[i : i + 7])
    assert a.waiter.value == "subscribed t" and s.routes["t"] is sub
    assert b.waiter.value == "published t 1"
    assert isinstance(c.waiter.exc, herald.NoTopic)
    assert sub.got == [("1", 1)]
    assert not s.pending


def test_a_batch_collects_one_reply_per_line():
    s = session()
    batch = cmd(BATCH, "", lines=["pub t a\n", "pub t b\n", "pub t c\n"])
    s.register(batch)
    s.feed(b"+OK published t 1\r\n-ERR bad_event nope\r\n+OK duplicate t 3\r\n")
    r = batch.waiter.value
    assert r[0] == "published" and isinstance(r[1], herald.BadEvent) and r[2] == "duplicate"


def test_silent_commands_are_closed_by_a_ping_in_errors_mode():
    s = session(mode="errors")
    p1 = cmd(PUB, "pub t a\n")
    p2 = cmd(PUB, "pub t b\n")
    assert s.register(p1) == "pub t a\n" and s.register(p2) == "pub t b\n"
    assert p1.waiter.done() and p1.waiter.value is None  # nothing to wait for
    q = cmd(OTHER, "topics\n")
    assert s.register(q) == "ping\ntopics\n"
    # An error for a silent command, then the pong, then the real reply.
    s.feed(b"-ERR bad_event x\r\n+OK pong\r\n+OK []\r\n")
    assert q.waiter.value == "[]"
    assert [e.code for e in s.deferred] == ["bad_event"]
    # An -ERR for the topics command itself would not be mistaken for one.
    q2 = cmd(OTHER, "stats x\n")
    assert s.register(q2) == "stats x\n"
    s.feed(b"-ERR no_topic x\r\n")
    assert isinstance(q2.waiter.exc, herald.NoTopic)


def test_not_leader_asks_to_follow_and_keeps_the_command_for_the_leader():
    s = session(multi=True)
    p = cmd(PUB, "pub t a\n")
    s.register(p)
    assert s.feed(b"-ERR not_leader 127.0.0.1:9 go there\r\n+OK junk\r\n") is False
    assert s.redirect == "127.0.0.1:9" and not p.waiter.done()
    assert s.on_drop(True, ConnectionError("x"), None)
    assert s.resume() == "pub t a\n"
    s.feed(b"+OK published t a\r\n")
    assert p.waiter.value == "published t a"


def test_without_reconnecting_not_leader_is_raised():
    s = session()
    p = cmd(PUB, "pub t a\n")
    s.register(p)
    assert s.feed(b"-ERR not_leader 127.0.0.1:9\r\n")
    assert isinstance(p.waiter.exc, herald.NotLeader)


def test_after_a_drop_routes_are_resubscribed_then_commands_resent_in_order():
    s = session(reconnect=True)
    sub = Sub("t")
    s.register(cmd(SUB, "sub t 5\n", topic="t", sub=sub))
    s.feed(b'+OK subscribed t\r\n{"topic":"t","id":"1","msg":1}\r\n')
    ack = cmd(ACK, "ack t 1\n", topic="t", sub=sub, gen=s.gen)
    s.register(ack)
    later = cmd(OTHER, "ping\n")
    assert s.on_drop(True, ConnectionError("x"), None)
    assert sub.got == []  # buffered deliveries are dropped: they come again
    s.register(later)  # while disconnected: queued
    assert s.resume() == "sub t 5\nack t 1\nping\n"
    # The resent ack had been applied before the drop: no_event is success.
    s.feed(b"+OK subscribed t\r\n-ERR no_event gone\r\n+OK pong\r\n")
    assert ack.waiter.value == "" and ack.waiter.exc is None
    assert later.waiter.value == "pong"


def test_a_refused_ack_not_waited_for_goes_to_its_subscription():
    s = session()
    sub = Sub("t")
    s.register(cmd(SUB, "sub t\n", topic="t", sub=sub))
    s.feed(b"+OK subscribed t\r\n")
    ack = Command(ACK, "ack t 9\n", topic="t", sub=sub, gen=s.gen)
    s.register(ack)
    s.feed(b"-ERR no_event nope\r\n")
    assert [e.code for e in sub.errors] == ["no_event"]


def test_without_reconnecting_a_drop_fails_everything():
    s = session()
    sub = Sub("t")
    s.register(cmd(SUB, "sub t\n", topic="t", sub=sub))
    s.feed(b"+OK subscribed t\r\n")
    p = cmd(PUB, "pub t a\n")
    s.register(p)
    err = herald.ConnectionClosed("gone")
    assert not s.on_drop(True, err, err)
    assert p.waiter.exc is err and sub.ended is err and not s.routes
