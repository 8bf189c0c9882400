"""The blocking client: :class:`Client`, :class:`Subscription`, :class:`Delivery`.

One socket per client. Any thread may call any method: each command is
written at once (under ``_lock``, so the order of ``pending`` is the order
on the wire) without waiting for earlier replies, then the caller waits for
its own reply. A reader thread reads everything the broker sends and hands
it to the :class:`~herald._session.Session`, which resolves the callers'
waiters in FIFO order and queues deliveries on their subscriptions. The
reader never takes ``_lock`` to do that (see the session's docs), so a
caller blocked in ``sendall`` (a big ``publish_many``) can never stop the
replies that unblock it from being read.

When the connection drops, the reader thread also reconnects (when the
client reconnects at all), with backoff: it opens and names a new
connection, then takes ``_lock`` and hands it, still held, to a short-lived
thread that writes the resubscriptions and the resent commands and then
releases it. So nothing new is written before them, and the reader is
already reading the replies while they are written.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import random
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

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
from ._transport import PlainTransport, open_connection, tls_context
from ._wire import Address, Duration, EventLike, token

log = logging.getLogger("herald")

__all__ = ["Client", "Subscription", "Delivery", "connect"]

#: Events per ``publish_many`` chunk: one write, one pending entry.
BATCH_EVENTS = 2048
#: First pause before reconnecting; doubles up to BACKOFF_MAX_S.
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
#: Lines in the write-behind buffer that make it be written at once.
WBUF_LINES = 128
#: Longest a line waits in the write-behind buffer.
FLUSH_DELAY_S = 0.0005
#: How long ``close`` waits for ``+OK bye``.
CLOSE_TIMEOUT_S = 2.0


class _Waiter:
    """A one-shot result for a thread: the cheapest primitive CPython has
    (a pre-acquired lock that the reader thread releases)."""

    __slots__ = ("_lock", "_done", "_value", "_exc")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._done = False
        self._value: Any = None
        self._exc: Optional[BaseException] = None

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        self._value = value
        self._done = True
        self._lock.release()

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        self._done = True
        self._lock.release()

    def wait(self, timeout: Optional[float]) -> Any:
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("no reply from the broker in time (the command may still be applied)")
        if self._exc is not None:
            raise self._exc
        return self._value


class Delivery(DeliveryBase):
    """An event delivered to a :class:`Subscription` (fields: see
    :class:`~herald._delivery.DeliveryBase`)."""

    __slots__ = ()

    def ack(self, *, wait: bool = False) -> None:
        """Acknowledges it: the broker removes it and frees a prefetch slot.

        Without ``wait`` this only queues the ``ack`` (as AMQP and NATS
        clients do), so a consumer is not held up by a round trip per event:
        queued acks go out together, within half a millisecond at most (see
        ``Client._buffer_locked``). If the broker refuses it, the error is
        raised by the subscription's next ``get``/iteration. With ``wait=True`` it returns once the broker
        answered (the ack is then in the broker's log) and raises its error.
        """
        sub = self._sub
        # The id came from the broker, which allows no whitespace in ids.
        sub._client._ackish(ACK, f"ack {sub.topic} {self.id}\n", sub, self._gen, wait)

    def nack(self, delay: Optional[Duration] = None, dead: bool = False, *, wait: bool = False) -> None:
        """Gives it back (version 2): redelivered later, after ``delay`` if
        given, or dead-lettered at once with ``dead=True``. ``wait`` as for
        :meth:`ack`."""
        sub = self._sub
        sub._client._ackish(NACK, _wire.nack_line(sub.topic, self.id, delay, dead), sub, self._gen, wait)

    def touch(self, duration: Optional[Duration] = None) -> Optional[int]:
        """Restarts its ack deadline (version 2): it now expires ``duration``
        from now (default: the subscription's ``wait``). Returns the ms left
        (None in ``replies="errors"`` mode, where the broker does not say)."""
        return self._sub._client.touch(self.topic, self.id, duration)


class Subscription:
    """The deliveries of one topic to this client, in the order they arrive.

    Iterate over it (``for d in sub``) or call :meth:`get`. Iteration ends
    when the subscription ends cleanly (:meth:`unsubscribe`, client closed);
    it raises if the subscription ended because of an error (connection
    lost and not reconnecting: :class:`~herald.ConnectionClosed`).
    """

    def __init__(self, client: "Client", topic: str, prefetch: Optional[int], options: Dict[str, Any]) -> None:
        self._client = client
        self.topic = topic
        self.prefetch = prefetch
        self.options = options
        self.group: Optional[str] = options.get("group")
        self._line = ""
        self._buf: Deque[Delivery] = deque()
        self._errors: Deque[BaseException] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False
        self._ended = False
        self._end_exc: Optional[BaseException] = None

    # --- called by the session (reader thread) ----------------------------------

    def _subscribed(self, line: str, options: Any) -> None:
        self._line = line
        if options is not None:
            self.prefetch, self.options = options
            self.group = self.options.get("group")

    def _push(self, event: Dict[str, Any], gen: int) -> None:
        self._buf.append(Delivery(event, self, gen))
        # Only a consumer that said it waits needs waking: it sets _waiting
        # under _cond before it checks the buffer a last time, so either it
        # sees this delivery or this sees _waiting.
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def _defer(self, exc: BaseException) -> None:
        with self._cond:
            self._errors.append(exc)
            self._cond.notify()

    def _clear(self) -> None:
        with self._cond:
            self._buf.clear()

    def _end(self, exc: Optional[BaseException]) -> None:
        with self._cond:
            self._ended = True
            self._end_exc = exc
            self._buf.clear()
            self._cond.notify_all()

    # --- the API ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the subscription has ended."""
        return self._ended

    def get(self, timeout: Optional[float] = None) -> Optional[Delivery]:
        """The next delivery; waits up to ``timeout`` seconds (None: no limit).

        Returns None when the timeout passes or the subscription has ended
        cleanly; raises an error the broker gave an ack that was not waited
        for, or the error the subscription ended with.
        """
        buf = self._buf
        if buf and not self._errors:
            try:
                return buf.popleft()
            except IndexError:
                pass
        if not buf and self._client._wbuf:
            # About to wait: acks written behind must not wait with us
            # (with a small prefetch, they are what frees the next delivery).
            self._client._flush()
        with self._cond:
            if not buf and not self._errors and not self._ended and timeout != 0:
                self._waiting = True
                try:
                    self._cond.wait_for(lambda: buf or self._errors or self._ended, timeout)
                finally:
                    self._waiting = False
            if self._errors:
                raise self._errors.popleft()
            if buf:
                return buf.popleft()
            if self._ended and self._end_exc is not None:
                raise self._end_exc
            return None

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def __next__(self) -> Delivery:
        delivery = self.get()
        if delivery is None:
            raise StopIteration
        return delivery

    def __len__(self) -> int:
        """Deliveries received and not yet handed out."""
        return len(self._buf)

    def unsubscribe(self) -> None:
        """Ends the subscription (``unsub``); the broker discards its queue."""
        if not self._ended:
            self._client.unsubscribe(self.topic)

    close = unsubscribe

    def __repr__(self) -> str:
        return f"<herald.Subscription {self.topic!r} prefetch={self.prefetch} buffered={len(self._buf)}>"


class Client:
    """A connection to a Herald broker (blocking; safe to share between threads).

    Args:
        addrs: ``"host:port"`` (default ``"127.0.0.1:8000"``), ``(host,
            port)``, or a list of them: the nodes of a cluster, tried in turn.
        name: a durable subscriber name, sent on connect (``name``).
        user, password: credentials, sent on connect (``auth``) and again on
            every reconnect.
        tls: True for TLS with the system's CAs, or an ``ssl.SSLContext``.
        tls_ca: a CA file (PEM) to verify the broker with; implies TLS.
        replies: ``"all"`` (default) or ``"errors"``: the broker then sends
            no ``+OK`` for publishes and acks, and :meth:`publish` returns
            None at once; refusals are raised by :meth:`flush`.
        reconnect: replace a dropped connection, resubscribe and resend the
            unanswered commands. Default: yes for a durable subscriber (a
            ``name``), a group member, or several addresses.
        timeout: longest wait for a reply, in seconds (None: no limit);
            :class:`TimeoutError` after it.
        connect_timeout: longest wait for the connection and handshake.

    Raises the handshake's errors (:class:`~herald.NameInUse`,
    :class:`~herald.AuthFailed`, ...) or an :class:`OSError`.
    """

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
        self._context = tls_context(tls, tls_ca)
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
        self._lock = threading.Lock()
        self._closed = False
        self._closing = False
        self._stopped = threading.Event()
        #: Set by close(): ends a reconnect backoff at once.
        self._wake = threading.Event()
        self._transport: Optional[PlainTransport] = None
        #: Write-behind buffer (see _buffer_locked), guarded by _lock.
        self._wbuf: List[str] = []
        self._flush_wanted = threading.Event()
        self._flusher: Optional[threading.Thread] = None
        self.address: Optional[str] = None
        self._current = 0
        transport, leftover = self._connect_any(None, raise_errors=True)
        assert transport is not None  # raise_errors: it raised otherwise
        self._transport = transport
        self._session.resume()
        if leftover:
            self._session.feed(leftover)
        self._reader = threading.Thread(target=self._read_loop, name="herald-reader", daemon=True)
        self._reader.start()

    # --- connecting ---------------------------------------------------------------

    def _connect_any(
        self, leader: Optional[str], *, raise_errors: bool
    ) -> Tuple[Optional[PlainTransport], bytes]:
        """One pass over the addresses (the leader, if named, first)."""
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
            s = self._session
            try:
                transport, leftover = open_connection(
                    addr,
                    context=self._context,
                    timeout=self._connect_timeout,
                    auth=s.auth,
                    mode=s.mode,
                    name=s.name,
                )
            except _errors.NotLeader as e:
                last = e
                if e.leader and s.reconnecting():
                    order.insert(0, _wire.parse_address(e.leader))
                continue
            except (_errors.AuthFailed, _errors.Forbidden, _errors.AuthRequired, _errors.BadArgs) as e:
                # Sending the same credentials or name again cannot help.
                if raise_errors:
                    raise
                return None, b""
            except (OSError, _errors.HeraldError, _errors.ProtocolError) as e:
                last = e
                continue
            if addr in self._addrs:
                self._current = self._addrs.index(addr)
            self.address = _wire.format_address(addr)
            return transport, leftover
        if raise_errors and last is not None:
            raise last
        return None, b""

    def _read_loop(self) -> None:
        transport = self._transport
        session = self._session
        while transport is not None:
            try:
                data = transport.recv()
            except OSError as e:
                data = b""
                reason = str(e)
            else:
                reason = "closed by the broker"
            if data and session.feed(data):
                continue
            if data:
                reason = f"following the leader to {session.redirect}" if session.redirect else "resynchronising"
            transport = self._on_drop(transport, reason)
        self._stopped.set()

    def _on_drop(self, transport: PlainTransport, reason: str) -> Optional[PlainTransport]:
        """The connection ended: reconnect (returns the new transport) or end
        everything (returns None)."""
        transport.shutdown()  # a writer blocked in sendall fails and lets go of _lock
        redirect = self._session.redirect
        with self._lock:
            self._transport = None
            # Their commands are pending in the session, which sends them
            # again on the next connection.
            self._wbuf.clear()
            closing = self._closing or self._closed
            if closing:
                exc = _errors.ConnectionClosed("the client was closed")
                end_with: Optional[BaseException] = None
            else:
                exc = _errors.ConnectionClosed(f"connection to the broker lost: {reason}")
                end_with = exc
            reconnect = self._session.on_drop(not closing, exc, end_with)
            if not reconnect:
                # Under the lock that failed the pending commands: a command
                # sent after them (the caller saw its subscription fail and
                # tries another) must find the client closed, not wait for a
                # reply that no connection will bring.
                self._closed = True
        transport.close()
        if not reconnect:
            return None
        log.warning("herald: connection to %s lost (%s); reconnecting", self.address, reason)
        return self._reconnect(redirect)

    def _reconnect(self, leader: Optional[str]) -> Optional[PlainTransport]:
        delay = 0.0 if leader else BACKOFF_MIN_S
        while True:
            if delay and self._stopped_or_wait(delay):
                break
            delay = min(max(delay * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
            try:
                transport, leftover = self._connect_any(leader, raise_errors=True)
            except (_errors.AuthFailed, _errors.Forbidden, _errors.AuthRequired, _errors.BadArgs) as e:
                log.error("herald: reconnecting failed for good: %s", e)
                with self._lock:
                    self._session.fail_all(e, e)
                    self._closed = True
                return None
            except Exception as e:  # noqa: BLE001 - retried with backoff
                log.debug("herald: reconnect failed: %s", e)
                leader = None
                continue
            if transport is None:
                continue
            self._lock.acquire()
            if self._closed or self._closing:
                self._lock.release()
                transport.close()
                break
            self._transport = transport
            text = self._session.resume()
            log.info("herald: reconnected to %s", self.address)
            if text:
                # _lock is handed over: released once the text is written.
                threading.Thread(target=self._write_resume, args=(transport, text), daemon=True).start()
            else:
                self._lock.release()
            if leftover and not self._session.feed(leftover):
                transport.shutdown()
            return transport
        with self._lock:
            self._session.fail_all(_errors.ConnectionClosed("the client was closed"), None)
            self._closed = True
        return None

    def _stopped_or_wait(self, delay: float) -> bool:
        """Sleeps about ``delay`` (with jitter, so that many clients do not
        come back in step); True at once if the client is being closed."""
        return self._wake.wait(delay * (0.75 + random.random() / 2)) or self._closed

    def _write_resume(self, transport: PlainTransport, text: str) -> None:
        try:
            transport.send(_wire.to_bytes(text))
        except OSError:
            transport.shutdown()
        finally:
            self._lock.release()

    # --- sending --------------------------------------------------------------------

    def _send_locked(self, text: str) -> None:
        """Writes ``text`` after whatever the write-behind buffer holds."""
        if self._wbuf:
            text = "".join(self._wbuf) + text
            self._wbuf.clear()
        transport = self._transport
        if transport is None or not text:
            return
        try:
            transport.send(_wire.to_bytes(text))
        except OSError:
            # The reader sees the drop; the command is pending, so it is
            # resent after a reconnect or fails with ConnectionClosed.
            transport.shutdown()

    def _buffer_locked(self, text: str) -> None:
        """Queues the text of a command nobody waits for (an ack, say) in
        the write-behind buffer: written with the next command, when a
        subscription waits for deliveries, once WBUF_LINES are queued, or
        by the flusher thread within FLUSH_DELAY_S. One write then carries
        many acks, which is what lets a consumer ack tens of thousands of
        events a second without paying a syscall and a thread switch each."""
        wbuf = self._wbuf
        wbuf.append(text)
        if len(wbuf) >= WBUF_LINES:
            self._send_locked("")
        elif len(wbuf) == 1:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="herald-flusher", daemon=True)
                self._flusher.start()
            self._flush_wanted.set()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._flush_wanted.wait()
            self._flush_wanted.clear()
            if self._closed:
                return
            time.sleep(FLUSH_DELAY_S)
            self._flush()

    def _flush(self) -> None:
        """Writes the write-behind buffer now."""
        if self._wbuf:
            with self._lock:
                self._send_locked("")

    def _call(self, cmd: Command, wait: bool = True) -> Any:
        waiter = _Waiter() if wait else None
        cmd.waiter = waiter
        with self._lock:
            if self._closed:
                raise _errors.ConnectionClosed("the client is closed")
            text = self._session.register(cmd)
            if not wait:
                if text:
                    self._buffer_locked(text)
                return None
            self._send_locked(text)
        assert waiter is not None
        return waiter.wait(self._timeout)

    def _ackish(self, kind: int, line: str, sub: Any, gen: int, wait: bool) -> None:
        self._call(Command(kind, line, topic=sub.topic if sub else None, sub=sub, gen=gen), wait)

    # --- commands -------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        event: EventLike,
        *,
        ttl: Optional[Duration] = None,
        delay: Optional[Duration] = None,
        not_before: Union[None, float, _dt.datetime] = None,
    ) -> Optional[str]:
        """Publishes one event (``pub``): a dict with ``id``, ``msg`` and
        optionally ``priority`` and fields of your own, or its JSON text.

        ``ttl``, ``delay`` (seconds or timedelta) and ``not_before``
        (datetime or epoch seconds) set the event's ``ttl_ms``,
        ``delay_ms`` and ``not_before`` fields (version 2).

        Returns ``"published"`` once the event is stored, or ``"duplicate"``
        if that id is still pending on the topic (nothing changed). None in
        ``replies="errors"`` mode.
        """
        extra = _wire.event_fields(ttl, delay, not_before)
        text = f"pub {token(topic, 'topic')} {_wire.encode_event(event, extra)}\n"
        # Nothing to wait for in errors mode: written behind, like acks.
        reply = self._call(Command(PUB, text, topic=topic), self._session.mode != "errors")
        if reply is None:
            return None
        return reply.split(" ", 1)[0]

    def publish_many(
        self,
        topic: str,
        events: Iterable[EventLike],
        *,
        ttl: Optional[Duration] = None,
        delay: Optional[Duration] = None,
    ) -> Optional[List[str]]:
        """Publishes many events, pipelined: written in large chunks without
        waiting, then the replies are collected.

        Returns the outcome of each event, in order (``"published"`` or
        ``"duplicate"``). If the broker refused any, raises the first
        refusal's error, with ``results`` (every outcome, errors included)
        and ``index`` set on it; the others were still published. In
        ``replies="errors"`` mode, returns None without waiting.
        """
        extra = _wire.event_fields(ttl, delay, None)
        prefix = f"pub {token(topic, 'topic')} "
        enc = _wire.encode_json
        encode_event = _wire.encode_event
        waiters: List[_Waiter] = []
        silent = self._session.mode == "errors"
        it = iter(events)
        while True:
            chunk = list(itertools.islice(it, BATCH_EVENTS))
            if not chunk:
                break
            if extra is None:
                lines = [
                    f"{prefix}{enc(e) if type(e) is dict else encode_event(e)}\n" for e in chunk
                ]
            else:
                lines = [f"{prefix}{encode_event(e, extra)}\n" for e in chunk]
            cmd = Command(BATCH, topic=topic, lines=lines)
            waiter = _Waiter()
            cmd.waiter = waiter
            with self._lock:
                if self._closed:
                    raise _errors.ConnectionClosed("the client is closed")
                text = self._session.register(cmd)
                if text:
                    self._send_locked(text)
            waiters.append(waiter)
        if silent:
            return None
        results: List[Any] = []
        for waiter in waiters:
            outcome = waiter.wait(self._timeout)
            if outcome is None:  # the mode changed to errors meanwhile
                return None
            results.extend(outcome)
        for i, r in enumerate(results):
            if not isinstance(r, str):
                r.results = results
                r.index = i
                raise r
        return results

    def subscribe(
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
        """Subscribes (``sub``) and returns once the broker said ``+OK``.

        ``prefetch``: most deliveries unacknowledged at once (broker default
        1). The keyword options are those of PROTOCOL.md section 12.1
        (version 2): ``group`` (competing consumers), ``wait`` (ack
        deadline), ``backoff`` (one duration or a list), ``max_deliveries``,
        ``dead`` (a topic, or ``"none"``), ``age``, ``limit``,
        ``limit_bytes``, ``overflow`` (``"reject"``/``"drop"``); durations
        are seconds or timedeltas. Subscribing again to the same topic
        returns the same :class:`Subscription`, with the new settings.
        """
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
        cmd = Command(SUB, text, topic=topic, sub=sub, arg=(prefetch, options))
        self._call(cmd)
        return sub

    def unsubscribe(self, topic: str, *, group: Optional[str] = None) -> None:
        """Ends this connection's subscription to ``topic`` (``unsub``); with
        ``group=``, deletes that group and its queue (version 2)."""
        words = ["unsub", token(topic, "topic")]
        if group is not None:
            words.append(f"group={token(group, 'group')}")
        self._call(Command(UNSUB, _wire.line(*words), topic=topic, arg=group))

    unsub = unsubscribe

    def ack(self, topic: str, id: Union[str, int], *, wait: bool = False) -> None:
        """Acknowledges event ``id`` of ``topic`` (see :meth:`Delivery.ack`)."""
        sub = self._session.routes.get(topic)
        line = _wire.line("ack", token(topic, "topic"), token(id, "id"))
        self._call(Command(ACK, line, topic=topic, sub=sub), wait)

    def nack(
        self,
        topic: str,
        id: Union[str, int],
        delay: Optional[Duration] = None,
        dead: bool = False,
        *,
        wait: bool = False,
    ) -> None:
        """Gives back event ``id`` (version 2; see :meth:`Delivery.nack`)."""
        sub = self._session.routes.get(topic)
        self._call(Command(NACK, _wire.nack_line(topic, str(id), delay, dead), topic=topic, sub=sub), wait)

    def touch(self, topic: str, id: Union[str, int], duration: Optional[Duration] = None) -> Optional[int]:
        """Restarts the ack deadline of event ``id`` (version 2); returns the
        ms left (None in ``replies="errors"`` mode)."""
        words = ["touch", token(topic, "topic"), token(id, "id")]
        if duration is not None:
            words.append(str(_wire.duration_ms(duration, "duration")))
        reply = self._call(Command(TOUCH, _wire.line(*words), topic=topic))
        if not reply:
            return None
        return int(reply.rsplit(" ", 1)[-1])

    def peek(
        self,
        topic: str,
        n: Optional[int] = None,
        *,
        sub: Optional[str] = None,
        group: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Up to ``n`` events of a subscription, without changing anything
        (version 2): this connection's own, or the durable subscriber's
        (``sub=``) or group's (``group=``). Each item has ``state``,
        ``deliveries``, maybe ``deadline_ms``/``due_ms``, and ``event``."""
        words = ["peek", token(topic, "topic")]
        if n is not None:
            words.append(str(_wire.count(n, "n")))
        if sub is not None:
            words.append(f"sub={token(sub, 'sub')}")
        if group is not None:
            words.append(f"group={token(group, 'group')}")
        return json.loads(self._call(Command(OTHER, _wire.line(*words))))

    def create(self, topic: str, *, ttl: Optional[Duration] = None) -> None:
        """Creates ``topic`` (no error if it exists); ``ttl`` sets its
        default time to live (version 2)."""
        words = ["create", token(topic, "topic")]
        if ttl is not None:
            words.append(f"ttl={_wire.duration_ms(ttl, 'ttl')}")
        self._call(Command(OTHER, _wire.line(*words)))

    def topics(self) -> List[str]:
        """The names of every topic."""
        return json.loads(self._call(Command(OTHER, "topics\n")))

    def stats(self, topic: Optional[str] = None) -> Dict[str, Any]:
        """Counters: for every topic, ``{topic: {"subscribers", "pending",
        "in_flight", "published", ...}}``; with a topic, that topic's dict.
        Raises :class:`~herald.NoTopic` for a topic that does not exist."""
        text = "stats\n" if topic is None else _wire.line("stats", token(topic, "topic"))
        value = json.loads(self._call(Command(OTHER, text)))
        topics = value.get("topics", {})
        if topic is None:
            return topics
        return topics.get(topic, {})

    def ping(self) -> None:
        """A round trip (``ping``): once it returns, every command sent
        before it has been answered."""
        self._call(Command(OTHER, "ping\n"))

    def flush(self) -> None:
        """Waits until everything sent so far has been answered, then raises
        the first error that no caller waited for (a refused publish in
        ``replies="errors"`` mode, say), if any."""
        self.ping()
        deferred = self._session.deferred
        if deferred:
            first = deferred.popleft()
            deferred.clear()
            raise first

    def set_name(self, name: str) -> None:
        """Makes this connection the durable subscriber ``name`` (``name``);
        before the first subscribe. The name is sent again on reconnects."""
        self._call(Command(NAME, _wire.line("name", token(name, "name")), arg=name))

    @property
    def name(self) -> Optional[str]:
        """The durable subscriber name, or None for an anonymous client."""
        return self._session.name

    def auth(self, user: str, password: str) -> None:
        """Authenticates (version 2); sent again on reconnects."""
        line = _wire.line("auth", token(user, "user"), token(password, "password"))
        self._call(Command(AUTH, line, arg=(user, password)))

    def replies(self, mode: str) -> None:
        """Sets the reply mode, ``"all"`` or ``"errors"`` (version 2; see
        the constructor)."""
        if mode not in ("all", "errors"):
            raise ValueError('mode must be "all" or "errors"')
        self._call(Command(REPLIES, f"replies {mode}\n", arg=(mode,)))

    def cluster(self) -> Dict[str, Any]:
        """The cluster's state as this node sees it (version 2)."""
        return json.loads(self._call(Command(OTHER, "cluster\n")))

    def execute(self, *words: Any) -> str:
        """Sends one command given as words and returns the text after
        ``+OK`` (for commands this client has no method for)."""
        if not words:
            raise ValueError("no command")
        text = _wire.line(*(token(w, "word") for w in words))
        return self._call(Command(OTHER, text))

    # --- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Sends ``quit``, waits briefly for ``+OK bye``, and closes. Commands
        still waiting fail with :class:`~herald.ConnectionClosed`;
        subscriptions end (iteration stops)."""
        with self._lock:
            if self._closed or self._closing:
                return
            self._closing = True
            self._wake.set()
            waiter: Optional[_Waiter] = None
            if self._session.connected:
                waiter = _Waiter()
                cmd = Command(QUIT, "quit\n")
                cmd.waiter = waiter
                self._send_locked(self._session.register(cmd))
        if waiter is not None:
            try:
                waiter.wait(CLOSE_TIMEOUT_S)
            except (TimeoutError, OSError, _errors.HeraldError):
                pass
        with self._lock:
            self._closed = True
            transport = self._transport
        self._flush_wanted.set()  # the flusher sees _closed and ends
        if transport is not None:
            transport.shutdown()
        if threading.current_thread() is not self._reader:
            self._reader.join(CLOSE_TIMEOUT_S)
        with self._lock:
            self._session.fail_all(_errors.ConnectionClosed("the client was closed"), None)

    quit = close

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.address
        return f"<herald.Client {state} name={self.name!r}>"


def connect(addrs: Union[Address, Sequence[Address]] = "127.0.0.1:8000", **kwargs: Any) -> Client:
    """``Client(addrs, **kwargs)``."""
    return Client(addrs, **kwargs)
