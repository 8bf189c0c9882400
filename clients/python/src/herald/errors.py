"""Exceptions: one class per ``-ERR`` code of the protocol, and the client's own.

Every ``-ERR <code> <text>`` line the broker sends becomes an instance of the
:class:`HeraldError` subclass named after its code (``no_event`` ->
:class:`NoEvent`), carrying ``code`` and ``text``. A code this client does not
know yet becomes a plain :class:`HeraldError` with that code, so a newer
broker never breaks an older client.

Problems of the connection itself are not broker errors: a connection that
ends while a command waits raises :class:`ConnectionClosed` (an
:class:`OSError`, like the socket errors it stands for), and a line the
client cannot make sense of raises :class:`ProtocolError`.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Type, Union

__all__ = [
    "HeraldError",
    "UnknownCommand",
    "BadArgs",
    "BadTopic",
    "BadEvent",
    "BadRequest",
    "NoTopic",
    "NotSubscribed",
    "NoEvent",
    "NameInUse",
    "BadState",
    "LineTooLong",
    "Unavailable",
    "Full",
    "AuthRequired",
    "AuthFailed",
    "Forbidden",
    "NotLeader",
    "ConnectionClosed",
    "ProtocolError",
    "error_from_line",
]


class HeraldError(Exception):
    """The broker refused a command: a ``-ERR <code> <text>`` reply.

    ``code`` is the machine-readable word after ``-ERR`` (stable across
    versions); ``text`` is the human explanation after it (may change).
    """

    #: The wire code this class stands for ("" on the base class).
    CODE = ""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text
        #: For :meth:`herald.Client.publish_many`: the outcome of every event
        #: of the call ("published", "duplicate" or the error), when this
        #: error is the first refusal among them.
        self.results: Optional[List[Union[str, HeraldError]]] = None
        #: For :meth:`herald.Client.publish_many`: the index of the event
        #: this error refused.
        self.index: Optional[int] = None

    def __str__(self) -> str:
        return f"{self.code}: {self.text}" if self.text else self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.text!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Picklable despite the two-argument constructor of the subclasses.
        return (_rebuild, (self.code, self.text))


def _rebuild(code: str, text: str) -> HeraldError:
    return error_from_code(code, text)


class UnknownCommand(HeraldError):
    """``unknown_command``: the command word is not one the broker knows."""

    CODE = "unknown_command"


class BadArgs(HeraldError):
    """``bad_args``: a missing or extra argument, or a bad value or option."""

    CODE = "bad_args"


class BadTopic(HeraldError):
    """``bad_topic``: a topic name outside 1-128 bytes of ``A-Za-z0-9_-.``."""

    CODE = "bad_topic"


class BadEvent(HeraldError):
    """``bad_event``: the event is not a JSON object with a valid id and msg."""

    CODE = "bad_event"


class BadRequest(HeraldError):
    """``bad_request``: the line was not valid UTF-8."""

    CODE = "bad_request"


class NoTopic(HeraldError):
    """``no_topic``: the topic does not exist."""

    CODE = "no_topic"


class NotSubscribed(HeraldError):
    """``not_subscribed``: this connection has no such subscription."""

    CODE = "not_subscribed"


class NoEvent(HeraldError):
    """``no_event``: no event with that id is pending for this subscription."""

    CODE = "no_event"


class NameInUse(HeraldError):
    """``name_in_use``: another live connection holds that durable name."""

    CODE = "name_in_use"


class BadState(HeraldError):
    """``bad_state``: the command is not allowed in the connection's state."""

    CODE = "bad_state"


class LineTooLong(HeraldError):
    """``line_too_long``: the command line exceeded the broker's line limit."""

    CODE = "line_too_long"


class Unavailable(HeraldError):
    """``unavailable``: the broker could not store the change (disk full, no
    cluster leader); nothing was changed, so retrying is safe."""

    CODE = "unavailable"


class Full(HeraldError):
    """``full``: a subscription's limit refused the publish (version 2)."""

    CODE = "full"


class AuthRequired(HeraldError):
    """``auth_required``: the broker has users and this connection has not
    authenticated (version 2)."""

    CODE = "auth_required"


class AuthFailed(HeraldError):
    """``auth_failed``: wrong user or password (version 2)."""

    CODE = "auth_failed"


class Forbidden(HeraldError):
    """``forbidden``: the user may not do this on that topic or name (version 2)."""

    CODE = "forbidden"


class NotLeader(HeraldError):
    """``not_leader``: this cluster node is not the leader (version 2).

    ``leader`` is the leader's client address (``HOST:PORT``), the third word
    of the line, or None if the line did not name one.
    """

    CODE = "not_leader"

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)
        first = text.split(None, 1)[0] if text.strip() else ""
        self.leader: Optional[str] = first if ":" in first else None


_CLASSES: Dict[str, Type[HeraldError]] = {
    cls.CODE: cls
    for cls in (
        UnknownCommand,
        BadArgs,
        BadTopic,
        BadEvent,
        BadRequest,
        NoTopic,
        NotSubscribed,
        NoEvent,
        NameInUse,
        BadState,
        LineTooLong,
        Unavailable,
        Full,
        AuthRequired,
        AuthFailed,
        Forbidden,
        NotLeader,
    )
}


def error_from_code(code: str, text: str = "") -> HeraldError:
    """The exception for ``code``: its class, or :class:`HeraldError` if unknown."""
    return _CLASSES.get(code, HeraldError)(code, text)


def error_from_line(line: Union[str, bytes]) -> HeraldError:
    """The exception for a ``-ERR <code> <text>`` line (CRLF already removed)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    rest = line[4:] if line.startswith("-ERR") else line
    parts = rest.strip().split(None, 1)
    code = parts[0] if parts else ""
    text = parts[1] if len(parts) > 1 else ""
    return error_from_code(code, text)


class ConnectionClosed(ConnectionError):
    """The connection to the broker ended (or the client was closed) before
    the reply came, and the client is not reconnecting.

    A command that was sent may or may not have been applied; publishing
    again with the same id is safe (it is then a duplicate).
    """


class ProtocolError(Exception):
    """The broker sent something this client does not understand."""
