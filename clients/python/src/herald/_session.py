"""The state of one client's conversation with the broker, without any IO.

Both clients (blocking and asyncio) drive a :class:`Session`: they
``register`` each command and write the text it returns, ``feed`` it every
chunk of bytes read, and tell it when the connection drops (``on_drop``) and
when a new one is ready (``resume``). The session owns:

- **pending**, the commands whose replies have not been read, in the order
  they were written. The broker answers every command exactly once, in order
  (PROTOCOL.md section 2), so each ``+OK``/``-ERR`` line answers the head of
  the queue. A ``publish_many`` chunk is one entry expecting many replies.
- **routes**, topic -> subscription. Lines starting with ``{`` are
  deliveries, routed by their ``topic`` field. A route is installed when
  ``+OK subscribed`` is read, which the broker writes before the
  subscription's first delivery, and removed when ``+OK unsubscribed`` is.
- **queued**, commands registered while there is no connection, and after a
  drop every command that was pending (marked ``retried``): a new connection
  resubscribes every route first, then writes them again, in order.
- In ``replies errors`` mode (section 11), ``pub``/``ack``/``nack``/``touch``
  get no ``+OK``. They are grouped in a *silent* entry; before the next
  command that does get a reply, the session writes a ``ping``, whose
  ``+OK pong`` closes the group. So an ``-ERR`` while a silent group heads
  the queue belongs to that group (it is deferred: no caller waits for it),
  and every other reply still matches its command exactly. The group keeps
  its lines until the pong, so a drop before it resends them.

Thread safety (blocking client): ``register``, ``on_drop``, ``resume`` and
``fail_all`` run under the client's lock; ``feed`` runs in the reader thread
without it, because a writer may hold the lock while it blocks in
``sendall`` until the broker reads, and the broker only reads once we read
its replies. This is sound because ``register`` only appends to (or changes
the tail of) ``pending`` and ``feed`` only pops its head: deque appends and
pops are atomic, and a silent group is never extended once closed, and only
popped once closed.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from . import errors as _errors
from ._wire import reply_text

log = logging.getLogger("herald")

# Command kinds (small ints: compared on every reply).
PUB = 0
BATCH = 1
ACK = 2
NACK = 3
TOUCH = 4
SUB = 5
UNSUB = 6
NAME = 7
QUIT = 8
REPLIES = 9
AUTH = 10
OTHER = 11
RESUB = 12
SILENT = 13

#: Kinds whose ``+OK`` the broker leaves out in ``replies errors`` mode.
SILENT_KINDS = frozenset((PUB, BATCH, ACK, NACK, TOUCH))
#: A silent group is closed with a ``ping`` after this many lines, so that a
#: publisher that never waits for anything does not keep every line forever.
SILENT_GROUP_LINES = 4096

PUBLISHED = "published"
DUPLICATE = "duplicate"

#: Errors that a command sent again after a reconnect (or an ack of a
#: delivery from an earlier connection) gets when the first attempt had
#: been applied: they mean success.
_ALREADY_DONE = {ACK: "no_event", NACK: "no_event", UNSUB: "not_subscribed"}


class Command:
    """One command (or a chunk of ``pub`` lines), from register to reply."""

    __slots__ = (
        "kind",
        "line",
        "lines",
        "results",
        "waiter",
        "retried",
        "topic",
        "sub",
        "arg",
        "gen",
        "open",
    )

    def __init__(
        self,
        kind: int,
        line: str = "",
        *,
        topic: Optional[str] = None,
        sub: Any = None,
        arg: Any = None,
        lines: Optional[List[str]] = None,
        gen: int = -1,
    ) -> None:
        self.kind = kind
        self.line = line
        self.lines = lines
        self.results: Optional[List[Any]] = [] if kind == BATCH else None
        #: A Future-like object: ``done()``, ``set_result``, ``set_exception``.
        self.waiter: Any = None
        self.retried = False
        self.topic = topic
        self.sub = sub
        self.arg = arg
        #: For ack/nack: the connection generation of the delivery.
        self.gen = gen
        #: For a silent group: still taking lines (no ``ping`` written yet).
        self.open = False


def settle(waiter: Any, value: Any = None, exc: Optional[BaseException] = None) -> None:
    """Completes ``waiter`` unless it is gone or already done (cancelled)."""
    if waiter is None or waiter.done():
        return
    if exc is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(value)


class Session:
    """See the module docs. ``multi``: the client has several addresses."""

    def __init__(self, *, reconnect: Optional[bool], multi: bool, mode: str) -> None:
        self.pending: Deque[Command] = deque()
        self.queued: List[Command] = []
        self.routes: Dict[str, Any] = {}
        self.connected = False
        #: Reply mode that applies to commands registered now.
        self.mode = mode
        #: Incremented by every new connection.
        self.gen = 0
        self.reconnect = reconnect
        self.multi = multi
        #: Durable name (set by the constructor or ``name`` once answered).
        self.name: Optional[str] = None
        #: ``(user, password)`` once ``auth`` succeeded (or from the constructor).
        self.auth: Optional[Tuple[str, str]] = None
        self.quitting = False
        #: Errors no caller waited for: silent commands in ``errors`` mode,
        #: acks not waited for whose subscription is gone.
        self.deferred: Deque[BaseException] = deque()
        #: Set by ``feed`` when the connection must be dropped: a leader to
        #: go to after ``not_leader`` ("" if none), or a lost reply-mode sync.
        self.redirect: Optional[str] = None
        self._buf = b""

    # --- policy ---------------------------------------------------------------

    def reconnecting(self) -> bool:
        """Whether a dropped connection is replaced: explicitly, or for a
        durable subscriber, a group member, or a client with several
        addresses."""
        if self.reconnect is not None:
            return self.reconnect
        if self.name is not None or self.multi:
            return True
        return any(getattr(s, "group", None) for s in list(self.routes.values()))

    # --- writing ----------------------------------------------------------------

    def register(self, cmd: Command) -> str:
        """Takes a command; returns the text to write now ("" if none)."""
        if cmd.kind == QUIT:
            self.quitting = True
        if not self.connected:
            if self.mode == "errors" and cmd.kind in SILENT_KINDS:
                settle(cmd.waiter)
            self.queued.append(cmd)
            return ""
        return self._emit(cmd)

    def _emit(self, cmd: Command) -> str:
        pending = self.pending
        tail = pending[-1] if pending else None
        kind = cmd.kind
        if kind == SILENT or (self.mode == "errors" and kind in SILENT_KINDS):
            if kind == SILENT:
                lines = cmd.lines or []
            elif kind == BATCH:
                lines = cmd.lines or []
            else:
                lines = [cmd.line]
            settle(cmd.waiter)
            if kind == SILENT and not cmd.open:
                # A closed group sent again after a reconnect: with its ping.
                pending.append(cmd)
                return "".join(lines) + "ping\n"
            if tail is not None and tail.kind == SILENT and tail.open:
                group = tail
                group.lines.extend(lines)  # type: ignore[union-attr]
                group.retried = group.retried or cmd.retried
            else:
                group = Command(SILENT, lines=list(lines))
                group.open = True
                group.retried = cmd.retried
                pending.append(group)
            text = "".join(lines)
            if len(group.lines) >= SILENT_GROUP_LINES:  # type: ignore[arg-type]
                group.open = False
                text += "ping\n"
            return text
        prefix = ""
        if tail is not None and tail.kind == SILENT and tail.open:
            tail.open = False
            prefix = "ping\n"
        if kind == REPLIES:
            # arg: (new mode, the mode to go back to if the broker refuses).
            cmd.arg = (cmd.arg[0], self.mode)
            self.mode = cmd.arg[0]
        pending.append(cmd)
        if kind == BATCH:
            done = len(cmd.results or ())
            return prefix + "".join((cmd.lines or [])[done:])
        return prefix + cmd.line

    # --- reading ----------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Handles every complete line in ``data``. False: stop reading and
        drop this connection (see ``redirect``); the rest is ignored."""
        if self._buf:
            data = self._buf + data
        lines = data.split(b"\n")
        self._buf = lines.pop()
        pending = self.pending
        for raw in lines:
            if raw[-1:] == b"\r":
                raw = raw[:-1]
            if not raw:
                continue
            first = raw[0]
            if first == 123:  # "{": a delivery
                self._deliver(raw)
                continue
            if first == 43 and pending:  # "+": the common cases first
                cmd = pending[0]
                if cmd.kind == ACK and cmd.waiter is None:
                    # An ack nobody waits for: nothing to hand over.
                    pending.popleft()
                    continue
                if cmd.kind == BATCH:
                    results = cmd.results
                    if raw.startswith(b"+OK published"):
                        results.append(PUBLISHED)  # type: ignore[union-attr]
                    elif raw.startswith(b"+OK duplicate"):
                        results.append(DUPLICATE)  # type: ignore[union-attr]
                    else:
                        results.append(reply_text(raw))  # type: ignore[union-attr]
                    if len(results) == len(cmd.lines):  # type: ignore[arg-type]
                        pending.popleft()
                        settle(cmd.waiter, results)
                    continue
            if first == 43 or first == 45:
                if not self._reply(raw):
                    self._buf = b""
                    return False
            else:
                log.warning("herald: ignored an unexpected line from the broker: %r", raw[:200])
        return True

    def _deliver(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            topic = event["topic"]
        except (ValueError, KeyError, TypeError):
            log.warning("herald: ignored a malformed delivery: %r", raw[:200])
            return
        sub = self.routes.get(topic)
        if sub is None:
            # Possible just after an unsub: the broker wrote it first.
            log.debug("herald: delivery for %r with no subscription", topic)
            return
        sub._push(event, self.gen)

    def _reply(self, raw: bytes) -> bool:
        ok = raw[0] == 43
        err = None if ok else _errors.error_from_line(raw)
        pending = self.pending
        if not pending:
            if err is not None:
                self._defer(err, None)
            else:
                log.warning("herald: the broker sent a reply to no command: %r", raw[:200])
            return True
        cmd = pending[0]
        kind = cmd.kind
        if err is not None and self._redirects(err):
            return False
        if kind == SILENT:
            if err is not None:
                if not (cmd.retried and err.code in ("no_event", "not_subscribed")):
                    self._defer(err, None)
            elif raw.startswith(b"+OK pong"):
                pending.popleft()
            # Any other +OK here is the reply of a silent command sent while a
            # switch to errors mode was under way (or refused): nothing waits.
            return True
        if kind == BATCH:
            cmd.results.append(err)  # type: ignore[union-attr]
            if len(cmd.results) == len(cmd.lines):  # type: ignore[arg-type]
                pending.popleft()
                settle(cmd.waiter, cmd.results)
            return True
        pending.popleft()
        if err is not None:
            done_code = _ALREADY_DONE.get(kind)
            stale = cmd.gen >= 0 and cmd.gen != self.gen
            if done_code == err.code and (cmd.retried or stale):
                err = None
        text = reply_text(raw) if ok else ""
        if err is None:
            self._on_ok(cmd, text)
            settle(cmd.waiter, text)
            return True
        return self._on_err(cmd, err)

    def _on_ok(self, cmd: Command, text: str) -> None:
        kind = cmd.kind
        if kind == SUB:
            self.routes[cmd.topic] = cmd.sub  # type: ignore[index]
            cmd.sub._subscribed(cmd.line, cmd.arg)
        elif kind == UNSUB:
            sub = self.routes.get(cmd.topic)  # type: ignore[arg-type]
            if sub is not None and (cmd.arg is None or getattr(sub, "group", None) == cmd.arg):
                del self.routes[cmd.topic]  # type: ignore[arg-type]
                sub._end(None)
        elif kind == NAME:
            self.name = cmd.arg
        elif kind == AUTH:
            self.auth = cmd.arg

    def _on_err(self, cmd: Command, err: _errors.HeraldError) -> bool:
        kind = cmd.kind
        if kind == RESUB:
            log.warning("herald: resubscribing to %r failed (%s); the subscription ends", cmd.topic, err)
            if self.routes.get(cmd.topic) is cmd.sub:  # type: ignore[arg-type]
                del self.routes[cmd.topic]  # type: ignore[arg-type]
            cmd.sub._end(err)
            return True
        if kind == REPLIES:
            self.mode = cmd.arg[1]
            settle(cmd.waiter, exc=err)
            if self.pending:
                # Commands written behind the refused switch were counted in
                # the wrong mode: only a new connection can resynchronise.
                self.redirect = ""
                return False
            return True
        if cmd.waiter is None:
            self._defer(err, cmd.sub if kind in (ACK, NACK) else None)
        else:
            settle(cmd.waiter, exc=err)
        return True

    def _defer(self, err: BaseException, sub: Any) -> None:
        if sub is not None:
            routed = self.routes.get(sub.topic)
            if routed is not None and routed is sub:
                routed._defer(err)
                return
        log.warning("herald: a command nobody waited for was refused: %s", err)
        self.deferred.append(err)

    def _redirects(self, err: _errors.HeraldError) -> bool:
        if isinstance(err, _errors.NotLeader) and err.leader and self.reconnecting():
            self.redirect = err.leader
            return True
        return False

    # --- connection changes -------------------------------------------------

    def on_drop(
        self, allow_reconnect: bool, exc: BaseException, end_subs_with: Optional[BaseException]
    ) -> bool:
        """The connection is gone. Returns whether to reconnect. If not (not
        allowed because the client is closing, ``quit`` was sent, or this
        client does not reconnect), every waiting command fails with
        ``exc`` and every subscription ends with ``end_subs_with``."""
        self.connected = False
        self._buf = b""
        if not (allow_reconnect and not self.quitting and self.reconnecting()):
            self.fail_all(exc, end_subs_with)
            return False
        kept: List[Command] = []
        for cmd in self.pending:
            if cmd.kind == RESUB:
                continue  # the new connection resubscribes from the routes
            if cmd.kind == QUIT:
                settle(cmd.waiter, "bye")
                continue
            cmd.retried = True
            kept.append(cmd)
        self.pending.clear()
        self.queued[:0] = kept
        # Deliveries not yet handed out come again (redelivered) after the
        # resubscription; handing out the old copies too would double them.
        for sub in self.routes.values():
            sub._clear()
        return True

    def resume(self) -> str:
        """A new connection is ready (named, authenticated): the text that
        resubscribes every route, then resends every queued command."""
        self.gen += 1
        self.connected = True
        self.redirect = None
        out = []
        for topic, sub in list(self.routes.items()):
            cmd = Command(RESUB, sub._line, topic=topic, sub=sub)
            self.pending.append(cmd)
            out.append(cmd.line)
        queued, self.queued = self.queued, []
        for cmd in queued:
            out.append(self._emit(cmd))
        return "".join(out)

    def fail_all(self, exc: BaseException, end_subs_with: Optional[BaseException]) -> None:
        """Every waiting command fails with ``exc`` (``quit`` succeeds), every
        subscription ends (with ``end_subs_with``, None: cleanly)."""
        self.connected = False
        waiting = list(self.pending) + self.queued
        self.pending.clear()
        self.queued = []
        for cmd in waiting:
            if cmd.kind == QUIT:
                settle(cmd.waiter, "bye")
            else:
                settle(cmd.waiter, exc=exc)
        routes = list(self.routes.values())
        self.routes.clear()
        for sub in routes:
            sub._end(end_subs_with)

