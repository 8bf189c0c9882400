"""The asyncio client: the API of :class:`herald.Client`, with coroutines.

>>> import herald.aio
>>> async def main():                                      # doctest: +SKIP
...     async with herald.aio.Client("127.0.0.1:8000") as c:
...         await c.create("tweets")
...         sub = await c.subscribe("tweets", prefetch=10)
...         await c.publish("tweets", {"id": "1", "msg": "tweet 1"})
...         async for d in sub:
...             await d.ack()
...             break

One connection per client, driven by an :class:`asyncio.Protocol`: each
command is written at once (``transport.write`` never blocks; a coroutine
waits for ``resume_writing`` only when the transport's buffer is full), its
future joins the :class:`~herald._session.Session`'s FIFO, and
``data_received`` hands every chunk to the session, which resolves futures
and queues deliveries. Everything runs on the event loop's thread, so no
locks. Reconnecting is a task started by ``connection_lost``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
import logging
import random
import ssl
from collections import deque
from typing import Any, AsyncIterator, Deque, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _wire
from . import errors as _errors
from ._delivery import DeliveryBase
from ._session import (
    ACK,
    AUTH,
    BATCH,
    NACK,
    NAME,
    OTHER,
    PUB,
    QUIT,
    REPLIES,
    SUB,
    TOUCH,
    UNSUB,
    Command,
    Session,
)
from ._transport import REPLIES_ALL_TOLERATED, tls_context
from ._wire import Address, Duration, EventLike, token
from .client import BACKOFF_MAX_S, BACKOFF_MIN_S, BATCH_EVENTS, CLOSE_TIMEOUT_S, WBUF_LINES

log = logging.getLogger("herald")

__all__ = ["Client", "Subscription", "Delivery", "connect"]

_PERMANENT = (_errors.AuthFailed, _errors.Forbidden, _errors.AuthRequired, _errors.BadArgs)


class Delivery(DeliveryBase):
    """An event delivered to a :class:`Subscription` (fields: see
    :class:`~herald._delivery.DeliveryBase`)."""

    __slots__ = ()

    async def ack(self, *, wait: bool = False) -> None:
        """Acknowledges it. Without ``wait`` this writes the ``ack`` and
        returns (a refusal is raised by the subscription's next ``get``);
        with ``wait=True`` it returns once the broker answered."""
        sub = self._sub
        # The id came from the broker, which allows no whitespace in ids.
        await sub._client._ackish(ACK, f"ack {sub.topic} {self.id}\n", sub, self._gen, wait)

    async def nack(self, delay: Optional[Duration] = None, dead: bool = False, *, wait: bool = False) -> None:
        """Gives it back (version 2); see :meth:`herald.Delivery.nack`."""
        sub = self._sub
        await sub._client._ackish(NACK, _wire.nack_line(sub.topic, self.id, delay, dead), sub, self._gen, wait)

    async def touch(self, duration: Optional[Duration] = None) -> Optional[int]:
        """Restarts its ack deadline (version 2); returns the ms left."""
        return await self._sub._client.touch(self.topic, self.id, duration)


class Subscription:
    """The deliveries of one topic: ``async for d in sub`` or ``await sub.get()``."""

    def __init__(self, client: "Client", topic: str, prefetch: Optional[int], options: Dict[str, Any]) -> None:
        self._client = client
        self.topic = topic
        self.prefetch = prefetch
        self.options = options
        self.group: Optional[str] = options.get("group")
        self._line = ""
        self._buf: Deque[Delivery] = deque()
        self._errors: Deque[BaseException] = deque()
        self._waiter: Optional[asyncio.Future] = None
        self._ended = False
        self._end_exc: Optional[BaseException] = None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _subscribed(self, line: str, options: Any) -> None:
        self._line = line
        if options is not None:
            self.prefetch, self.options = options
            self.group = self.options.get("group")

    def _push(self, event: Dict[str, Any], gen: int) -> None:
        self._buf.append(Delivery(event, self, gen))
        self._wake()

    def _defer(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._wake()

    def _clear(self) -> None:
        self._buf.clear()

    def _end(self, exc: Optional[BaseException]) -> None:
        self._ended = True
        self._end_exc = exc
        self._buf.clear()
        self._wake()

    @property
    def closed(self) -> bool:
        return self._ended

    async def get(self, timeout: Optional[float] = None) -> Optional[Delivery]:
        """The next delivery; None after ``timeout`` seconds or once the
        subscription ended cleanly (see :meth:`herald.Subscription.get`)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._errors:
                raise self._errors.popleft()
            if self._buf:
                return self._buf.popleft()
            if self._ended:
                if self._end_exc is not None:
                    raise self._end_exc
                return None
            if deadline is not None and loop.time() >= deadline:
                return None
            waiter = self._waiter = loop.create_future()
            try:
                if deadline is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, deadline - loop.time())
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        delivery = await self.get()
        if delivery is None:
            raise StopAsyncIteration
        return delivery

    def __len__(self) -> int:
        return len(self._buf)

    async def unsubscribe(self) -> None:
        """Ends the subscription (``unsub``)."""
        if not self._ended:
            await self._client.unsubscribe(self.topic)

    close = unsubscribe

    def __repr__(self) -> str:
        return f"<herald.aio.Subscription {self.topic!r} prefetch={self.prefetch} buffered={len(self._buf)}>"


class _Protocol(asyncio.Protocol):
    """One connection. Lines go to a handshake queue until ``attach``."""

    def __init__(self, client: "Client") -> None:
        self.client = client
        self.transport: Optional[asyncio.Transport] = None
        self.session: Optional[Session] = None
        self.handshake_buf = b""
        self.handshake_waiter: Optional[asyncio.Future] = None
        self.lost = False
        self.lost_exc: Optional[BaseException] = None
        self.paused = False
        self.drain_waiters: List[asyncio.Future] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            self.handshake_buf += data
            self._wake_handshake()
            return
        if not session.feed(data) and self.transport is not None:
            self.transport.abort()

    def eof_received(self) -> Optional[bool]:
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.lost = True
        self.lost_exc = exc
        self._wake_handshake()
        for w in self.drain_waiters:
            if not w.done():
                w.set_result(None)
        self.drain_waiters.clear()
        if self.session is not None:
            self.client._on_lost(self, exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for w in self.drain_waiters:
            if not w.done():
                w.set_result(None)
        self.drain_waiters.clear()

    async def drain(self) -> None:
        if self.paused and not self.lost:
            w = asyncio.get_running_loop().create_future()
            self.drain_waiters.append(w)
            await w

    def _wake_handshake(self) -> None:
        w = self.handshake_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def line(self) -> bytes:
        while b"\n" not in self.handshake_buf:
            if self.lost:
                raise _errors.ConnectionClosed("the broker closed the connection during the handshake")
            self.handshake_waiter = asyncio.get_running_loop().create_future()
            await self.handshake_waiter
        raw, _, self.handshake_buf = self.handshake_buf.partition(b"\n")
        return raw.rstrip(b"\r")


async def _expect_ok(proto: _Protocol, what: str, tolerated: Tuple[bytes, ...] = ()) -> None:
    raw = await proto.line()
    if raw.startswith(b"+OK") or raw.startswith(tolerated):
        return
    if raw.startswith(b"-ERR"):
        raise _errors.error_from_line(raw)
    raise _errors.ProtocolError(f"unexpected {what}: {raw[:200]!r}")


class Client:
    """An asyncio connection to a Herald broker. Arguments as for
    :class:`herald.Client`; connect with ``await client.connect()``,
    ``async with Client(...)`` or :func:`connect`."""

    def __init__(
        self,
        addrs: Union[Address, Sequence[Address]] = "127.0.0.1:8000",
        *,
        name: Optional[str] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        tls: Any = None,
        tls_ca: Optional[str] = None,
        replies: str = "all",
        reconnect: Optional[bool] = None,
        timeout: Optional[float] = None,
        connect_timeout: Optional[float] = 10.0,
    ) -> None:
        self._addrs = _wire.parse_addresses(addrs)
        self._context: Optional[ssl.SSLContext] = tls_context(tls, tls_ca)
        if replies not in ("all", "errors"):
            raise ValueError('replies must be "all" or "errors"')
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._session = Session(reconnect=reconnect, multi=len(self._addrs) > 1, mode=replies)
        if name is not None:
            self._session.name = token(name, "name")
        if user is not None or password is not None:
            if user is None or password is None:
                raise ValueError("give both user and password")
            self._session.auth = (token(user, "user"), token(password, "password"))
        self._proto: Optional[_Protocol] = None
        #: Write-behind buffer (see _register).
        self._wbuf: List[str] = []
        self._closed = False
        self._closing = False
        self._reconnect_task: Optional[asyncio.Task] = None
        self._wake: Optional[asyncio.Event] = None
        self.address: Optional[str] = None
        self._current = 0

    # --- connecting ---------------------------------------------------------------

    async def connect(self) -> "Client":
        """Connects and goes through the handshake; raises its errors."""
        if self._proto is not None:
            return self
        self._wake = asyncio.Event()
        proto = await self._connect_any(None)
        self._attach(proto)
        return self

    async def _open(self, addr: Tuple[str, int]) -> _Protocol:
        loop = asyncio.get_running_loop()
        host, port = addr
        proto = _Protocol(self)
        s = self._session

        async def handshake() -> None:
            await loop.create_connection(
                lambda: proto,
                host,
                port,
                ssl=self._context,
                server_hostname=host if self._context is not None else None,
            )
            await _expect_ok(proto, "greeting")
            if s.auth is not None:
                proto.transport.write(f"auth {s.auth[0]} {s.auth[1]}\n".encode())  # type: ignore[union-attr]
                await _expect_ok(proto, "reply to auth")
            # Always stated: see herald._transport.open_connection.
            proto.transport.write(f"replies {s.mode}\n".encode())  # type: ignore[union-attr]
            tolerated = REPLIES_ALL_TOLERATED if s.mode == "all" else ()
            await _expect_ok(proto, "reply to replies", tolerated)
            if s.name is not None:
                # Last and alone: see herald._transport.open_connection.
                proto.transport.write(f"name {s.name}\n".encode())  # type: ignore[union-attr]
                await _expect_ok(proto, "reply to name")

        try:
            if self._connect_timeout is None:
                await handshake()
            else:
                await asyncio.wait_for(handshake(), self._connect_timeout)
        except BaseException:
            if proto.transport is not None:
                proto.transport.abort()
            raise
        if addr in self._addrs:
            self._current = self._addrs.index(addr)
        self.address = _wire.format_address(addr)
        return proto

    async def _connect_any(self, leader: Optional[str]) -> _Protocol:
        order: List[Tuple[str, int]] = []
        if leader:
            order.append(_wire.parse_address(leader))
        n = len(self._addrs)
        order += [self._addrs[(self._current + i) % n] for i in range(n)]
        last: Optional[BaseException] = None
        tried = 0
        while order and tried < n + 3:
            addr = order.pop(0)
            tried += 1
            try:
                return await self._open(addr)
            except _errors.NotLeader as e:
                last = e
                if e.leader and self._session.reconnecting():
                    order.insert(0, _wire.parse_address(e.leader))
            except _PERMANENT:
                raise
            except (OSError, asyncio.TimeoutError, _errors.HeraldError, _errors.ProtocolError) as e:
                last = e
        assert last is not None
        raise last

    def _attach(self, proto: _Protocol) -> None:
        """Makes ``proto`` the connection: resubscribes and resends."""
        self._proto = proto
        proto.session = self._session
        text = self._session.resume()
        if text:
            proto.transport.write(_wire.to_bytes(text))  # type: ignore[union-attr]
        leftover, proto.handshake_buf = proto.handshake_buf, b""
        if leftover and not self._session.feed(leftover):
            proto.transport.abort()  # type: ignore[union-attr]
        if proto.lost:
            self._on_lost(proto, proto.lost_exc)

    def _on_lost(self, proto: _Protocol, exc: Optional[BaseException]) -> None:
        if proto is not self._proto:
            return
        self._proto = None
        # Their commands are pending in the session, which sends them again.
        self._wbuf.clear()
        session = self._session
        redirect = session.redirect
        closing = self._closing or self._closed
        if closing:
            err = _errors.ConnectionClosed("the client was closed")
            end_with: Optional[BaseException] = None
        else:
            reason = f"following the leader to {redirect}" if redirect else (str(exc) if exc else "closed by the broker")
            err = _errors.ConnectionClosed(f"connection to the broker lost: {reason}")
            end_with = err
        if not session.on_drop(not closing, err, end_with):
            self._closed = True
            return
        log.warning("herald: connection to %s lost; reconnecting", self.address)
        self._reconnect_task = asyncio.get_event_loop().create_task(self._reconnect(redirect))

    async def _reconnect(self, leader: Optional[str]) -> None:
        delay = 0.0 if leader else BACKOFF_MIN_S
        assert self._wake is not None
        while not (self._closed or self._closing):
            if delay:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay * (0.75 + random.random() / 2))
                except asyncio.TimeoutError:
                    pass
                if self._closed or self._closing:
                    break
            delay = min(max(delay * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
            try:
                proto = await self._connect_any(leader)
            except _PERMANENT as e:
                log.error("herald: reconnecting failed for good: %s", e)
                self._session.fail_all(e, e)
                self._closed = True
                return
            except Exception as e:  # noqa: BLE001 - retried with backoff
                log.debug("herald: reconnect failed: %s", e)
                leader = None
                continue
            if self._closed or self._closing:
                proto.transport.abort()  # type: ignore[union-attr]
                break
            log.info("herald: reconnected to %s", self.address)
            self._attach(proto)
            return
        self._session.fail_all(_errors.ConnectionClosed("the client was closed"), None)
        self._closed = True

    # --- sending --------------------------------------------------------------------

    def _register(self, cmd: Command, behind: bool = False) -> None:
        """Registers ``cmd`` and writes its text; with ``behind`` (nobody
        waits for its reply) the text joins the write-behind buffer, written
        by a callback once the current task yields to the loop (or with the
        next command, or once WBUF_LINES are queued): a consumer that acks a
        burst of buffered deliveries sends all its acks in one write."""
        if self._closed:
            raise _errors.ConnectionClosed("the client is closed")
        text = self._session.register(cmd)
        if not text:
            return
        wbuf = self._wbuf
        if behind:
            wbuf.append(text)
            if len(wbuf) >= WBUF_LINES:
                self._flush()
            elif len(wbuf) == 1:
                asyncio.get_running_loop().call_soon(self._flush)
            return
        if wbuf:
            text = "".join(wbuf) + text
            wbuf.clear()
        proto = self._proto
        if proto is not None and proto.transport is not None:
            proto.transport.write(_wire.to_bytes(text))

    def _flush(self) -> None:
        wbuf = self._wbuf
        if not wbuf:
            return
        text = "".join(wbuf)
        wbuf.clear()
        proto = self._proto
        if proto is not None and proto.transport is not None:
            proto.transport.write(_wire.to_bytes(text))

    async def _drain(self) -> None:
        proto = self._proto
        if proto is not None and proto.paused:
            await proto.drain()

    async def _wait(self, fut: "asyncio.Future[Any]") -> Any:
        if self._timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, self._timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("no reply from the broker in time (the command may still be applied)") from None

    async def _call(self, cmd: Command, wait: bool = True) -> Any:
        fut = asyncio.get_running_loop().create_future() if wait else None
        cmd.waiter = fut
        self._register(cmd, behind=not wait)
        await self._drain()
        if fut is None:
            return None
        return await self._wait(fut)

    async def _ackish(self, kind: int, line: str, sub: Any, gen: int, wait: bool) -> None:
        await self._call(Command(kind, line, topic=sub.topic if sub else None, sub=sub, gen=gen), wait)

    # --- commands (see herald.Client for the documentation of each) ------------------

    async def publish(
        self,
        topic: str,
        event: EventLike,
        *,
        ttl: Optional[Duration] = None,
        delay: Optional[Duration] = None,
        not_before: Union[None, float, _dt.datetime] = None,
    ) -> Optional[str]:
        """See :meth:`herald.Client.publish`."""
        extra = _wire.event_fields(ttl, delay, not_before)
        text = f"pub {token(topic, 'topic')} {_wire.encode_event(event, extra)}\n"
        reply = await self._call(Command(PUB, text, topic=topic), self._session.mode != "errors")
        if reply is None:
            return None
        return reply.split(" ", 1)[0]

    async def publish_many(
        self,
        topic: str,
        events: Iterable[EventLike],
        *,
        ttl: Optional[Duration] = None,
        delay: Optional[Duration] = None,
    ) -> Optional[List[str]]:
        """See :meth:`herald.Client.publish_many`."""
        extra = _wire.event_fields(ttl, delay, None)
        prefix = f"pub {token(topic, 'topic')} "
        enc = _wire.encode_json
        encode_event = _wire.encode_event
        loop = asyncio.get_running_loop()
        futures: List[asyncio.Future] = []
        silent = self._session.mode == "errors"
        it = iter(events)
        while True:
            chunk = list(itertools.islice(it, BATCH_EVENTS))
            if not chunk:
                break
            if extra is None:
                lines = [f"{prefix}{enc(e) if type(e) is dict else encode_event(e)}\n" for e in chunk]
            else:
                lines = [f"{prefix}{encode_event(e, extra)}\n" for e in chunk]
            cmd = Command(BATCH, topic=topic, lines=lines)
            fut = loop.create_future()
            cmd.waiter = fut
            self._register(cmd)
            futures.append(fut)
            # Lets the loop read replies while we write (and waits for the
            # transport's buffer to drain when it is full).
            await self._drain()
            await asyncio.sleep(0)
        if silent:
            return None
        results: List[Any] = []
        for fut in futures:
            outcome = await self._wait(fut)
            if outcome is None:
                return None
            results.extend(outcome)
        for i, r in enumerate(results):
            if not isinstance(r, str):
                r.results = results
                r.index = i
                raise r
        return results

    async def subscribe(
        self,
        topic: str,
        prefetch: Optional[int] = None,
        *,
        group: Optional[str] = None,
        wait: Optional[Duration] = None,
        backoff: Union[None, Duration, Sequence[Duration]] = None,
        max_deliveries: Optional[int] = None,
        dead: Optional[str] = None,
        age: Optional[Duration] = None,
        limit: Optional[int] = None,
        limit_bytes: Optional[int] = None,
        overflow: Optional[str] = None,
    ) -> Subscription:
        """See :meth:`herald.Client.subscribe`; returns an async iterable."""
        options = {
            k: v
            for k, v in (
                ("group", group),
                ("wait", wait),
                ("backoff", backoff),
                ("max_deliveries", max_deliveries),
                ("dead", dead),
                ("age", age),
                ("limit", limit),
                ("limit_bytes", limit_bytes),
                ("overflow", overflow),
            )
            if v is not None
        }
        text = _wire.sub_line(topic, prefetch, options)
        sub = self._session.routes.get(topic)
        if sub is None:
            sub = Subscription(self, topic, prefetch, options)
        await self._call(Command(SUB, text, topic=topic, sub=sub, arg=(prefetch, options)))
        return sub

    async def unsubscribe(self, topic: str, *, group: Optional[str] = None) -> None:
        """See :meth:`herald.Client.unsubscribe`."""
        words = ["unsub", token(topic, "topic")]
        if group is not None:
            words.append(f"group={token(group, 'group')}")
        await self._call(Command(UNSUB, _wire.line(*words), topic=topic, arg=group))

    unsub = unsubscribe

    async def ack(self, topic: str, id: Union[str, int], *, wait: bool = False) -> None:
        """See :meth:`herald.Client.ack`."""
        sub = self._session.routes.get(topic)
        line = _wire.line("ack", token(topic, "topic"), token(id, "id"))
        await self._call(Command(ACK, line, topic=topic, sub=sub), wait)

    async def nack(
        self,
        topic: str,
        id: Union[str, int],
        delay: Optional[Duration] = None,
        dead: bool = False,
        *,
        wait: bool = False,
    ) -> None:
        """See :meth:`herald.Client.nack`."""
        sub = self._session.routes.get(topic)
        await self._call(Command(NACK, _wire.nack_line(topic, str(id), delay, dead), topic=topic, sub=sub), wait)

    async def touch(self, topic: str, id: Union[str, int], duration: Optional[Duration] = None) -> Optional[int]:
        """See :meth:`herald.Client.touch`."""
        words = ["touch", token(topic, "topic"), token(id, "id")]
        if duration is not None:
            words.append(str(_wire.duration_ms(duration, "duration")))
        reply = await self._call(Command(TOUCH, _wire.line(*words), topic=topic))
        if not reply:
            return None
        return int(reply.rsplit(" ", 1)[-1])

    async def peek(
        self,
        topic: str,
        n: Optional[int] = None,
        *,
        sub: Optional[str] = None,
        group: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """See :meth:`herald.Client.peek`."""
        words = ["peek", token(topic, "topic")]
        if n is not None:
            words.append(str(_wire.count(n, "n")))
        if sub is not None:
            words.append(f"sub={token(sub, 'sub')}")
        if group is not None:
            words.append(f"group={token(group, 'group')}")
        return json.loads(await self._call(Command(OTHER, _wire.line(*words))))

    async def create(self, topic: str, *, ttl: Optional[Duration] = None) -> None:
        """See :meth:`herald.Client.create`."""
        words = ["create", token(topic, "topic")]
        if ttl is not None:
            words.append(f"ttl={_wire.duration_ms(ttl, 'ttl')}")
        await self._call(Command(OTHER, _wire.line(*words)))

    async def topics(self) -> List[str]:
        """See :meth:`herald.Client.topics`."""
        return json.loads(await self._call(Command(OTHER, "topics\n")))

    async def stats(self, topic: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`herald.Client.stats`."""
        text = "stats\n" if topic is None else _wire.line("stats", token(topic, "topic"))
        value = json.loads(await self._call(Command(OTHER, text)))
        topics = value.get("topics", {})
        if topic is None:
            return topics
        return topics.get(topic, {})

    async def ping(self) -> None:
        """See :meth:`herald.Client.ping`."""
        await self._call(Command(OTHER, "ping\n"))

    async def flush(self) -> None:
        """See :meth:`herald.Client.flush`."""
        await self.ping()
        deferred = self._session.deferred
        if deferred:
            first = deferred.popleft()
            deferred.clear()
            raise first

    async def set_name(self, name: str) -> None:
        """See :meth:`herald.Client.set_name`."""
        await self._call(Command(NAME, _wire.line("name", token(name, "name")), arg=name))

    @property
    def name(self) -> Optional[str]:
        return self._session.name

    async def auth(self, user: str, password: str) -> None:
        """See :meth:`herald.Client.auth`."""
        line = _wire.line("auth", token(user, "user"), token(password, "password"))
        await self._call(Command(AUTH, line, arg=(user, password)))

    async def replies(self, mode: str) -> None:
        """See :meth:`herald.Client.replies`."""
        if mode not in ("all", "errors"):
            raise ValueError('mode must be "all" or "errors"')
        await self._call(Command(REPLIES, f"replies {mode}\n", arg=(mode,)))

    async def cluster(self) -> Dict[str, Any]:
        """See :meth:`herald.Client.cluster`."""
        return json.loads(await self._call(Command(OTHER, "cluster\n")))

    async def execute(self, *words: Any) -> str:
        """See :meth:`herald.Client.execute`."""
        if not words:
            raise ValueError("no command")
        return await self._call(Command(OTHER, _wire.line(*(token(w, "word") for w in words))))

    # --- closing --------------------------------------------------------------------

    async def close(self) -> None:
        """See :meth:`herald.Client.close`."""
        if self._closed or self._closing:
            return
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        proto = self._proto
        if proto is not None and self._session.connected:
            fut = asyncio.get_running_loop().create_future()
            cmd = Command(QUIT, "quit\n")
            cmd.waiter = fut
            self._register(cmd)
            try:
                await asyncio.wait_for(fut, CLOSE_TIMEOUT_S)
            except (asyncio.TimeoutError, OSError, _errors.HeraldError):
                pass
        self._closed = True
        proto = self._proto
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        task = self._reconnect_task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(task, CLOSE_TIMEOUT_S)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                task.cancel()
        self._session.fail_all(_errors.ConnectionClosed("the client was closed"), None)

    quit = close

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.address
        return f"<herald.aio.Client {state} name={self.name!r}>"


async def connect(addrs: Union[Address, Sequence[Address]] = "127.0.0.1:8000", **kwargs: Any) -> Client:
    """``await Client(addrs, **kwargs).connect()``."""
    return await Client(addrs, **kwargs).connect()
