"""Building command lines and reading reply values: no sockets, no threads.

Everything here turns Python values into the bytes of one command line, or
the text of a reply into Python values. The one invariant it guards is the
one pipelining rests on: **every command is exactly one line**. A token
(topic, id, name, ...) may hold no whitespace at all and may not be empty,
since either would shift or split the words of the command and every reply
after it would be matched to the wrong command; such a value raises
:class:`ValueError` before anything is sent. Whether a token is otherwise
valid (``a/b`` is not a topic) is the broker's to say, with its own error.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

#: A duration: seconds (int or float) or a :class:`datetime.timedelta`.
Duration = Union[int, float, _dt.timedelta]
#: An event: a mapping (encoded as JSON), or its JSON text already encoded.
EventLike = Union[Mapping[str, Any], str, bytes]
#: An address: ``"host:port"``, ``"host"`` (port 8000) or ``(host, port)``.
Address = Union[str, Tuple[str, int]]

DEFAULT_PORT = 8000
#: Compact JSON, ASCII only (so the bytes are 7-bit). ``json.dumps`` with
#: non-default arguments builds a new encoder per call, and even a reused
#: ``JSONEncoder.encode`` builds its C encoder again on every call, which
#: costs as much as encoding a small event: so the C encoder is made once
#: (``json.encoder.c_make_encoder``, what ``JSONEncoder.iterencode`` calls),
#: with the stdlib's own arguments, falling back to ``JSONEncoder`` where the
#: C accelerator is missing. It makes ``publish_many`` about twice as fast.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _fast_encoder() -> Optional[Callable[[Any], str]]:
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - every CPython has them
        return None
    if c_make_encoder is None:  # pragma: no cover - no C accelerator
        return None
    # No circular-reference markers: they would be shared between calls (a
    # failed call leaves its marks behind); a cycle is then a RecursionError.
    make = c_make_encoder(None, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, True)
    join = "".join

    def encode(value: Any) -> str:
        return join(make(value, 0))

    return encode


encode_json: Callable[[Any], str] = _fast_encoder() or _ENCODER.encode

_WS = re.compile(r"\s")
_MAX_DURATION_MS = 30 * 24 * 3600 * 1000


def parse_address(addr: Address) -> Tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"``, ``"host"`` or ``(host, port)`` -> ``(host, port)``."""
    if isinstance(addr, tuple):
        return str(addr[0]), int(addr[1])
    text = str(addr).strip()
    if not text:
        raise ValueError("empty broker address")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    try:
        return host, int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bad broker address {addr!r}: the port is not a number") from None


def parse_addresses(addrs: Union[Address, Sequence[Address]]) -> List[Tuple[str, int]]:
    """One address or a list of them, as ``(host, port)`` pairs."""
    if isinstance(addrs, (str, tuple)):
        items: Iterable[Address] = [addrs]
    else:
        items = addrs
    out = [parse_address(a) for a in items]
    if not out:
        raise ValueError("no broker address given")
    return out


def format_address(addr: Tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def token(value: Any, what: str) -> str:
    """``value`` as one command word: non-empty, no whitespace."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    text = str(value)
    if not text:
        raise ValueError(f"{what} must not be empty")
    if _WS.search(text):
        raise ValueError(f"{what} {text!r} contains whitespace")
    return text


def duration_ms(value: Duration, what: str, *, allow_zero: bool = False) -> int:
    """Seconds or a timedelta as whole milliseconds (at least 1 ms unless
    ``allow_zero``; a positive value below 1 ms rounds up to 1 ms)."""
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be seconds or a timedelta, not {type(value).__name__}")
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{what} must not be negative")
    ms = int(round(seconds * 1000))
    if ms == 0 and seconds > 0:
        ms = 1
    if ms == 0 and not allow_zero:
        raise ValueError(f"{what} must be at least 1 ms")
    if ms > _MAX_DURATION_MS:
        raise ValueError(f"{what} must be at most 30 days")
    return ms


def epoch_ms(value: Union[int, float, _dt.datetime]) -> int:
    """A datetime (naive means local time) or epoch seconds as epoch ms."""
    if isinstance(value, _dt.datetime):
        return int(round(value.timestamp() * 1000))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(round(value * 1000))
    raise TypeError(f"not_before must be a datetime or epoch seconds, not {type(value).__name__}")


def count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


# --- events -----------------------------------------------------------------


def event_fields(
    ttl: Optional[Duration], delay: Optional[Duration], not_before: Any
) -> Optional[dict]:
    """The publisher fields that ``ttl=``, ``delay=`` and ``not_before=`` set."""
    extra = {}
    if ttl is not None:
        extra["ttl_ms"] = duration_ms(ttl, "ttl")
    if delay is not None:
        extra["delay_ms"] = duration_ms(delay, "delay", allow_zero=True)
    if not_before is not None:
        extra["not_before"] = epoch_ms(not_before)
    return extra or None


def encode_event(event: EventLike, extra: Optional[dict] = None) -> str:
    """The JSON text of one event, on one line."""
    if isinstance(event, Mapping):
        if extra:
            event = {**event, **extra}
        return encode_json(event)
    if isinstance(event, bytes):
        text = event.decode("utf-8", "surrogateescape")
    elif isinstance(event, str):
        text = event
    else:
        raise TypeError(f"an event is a dict or its JSON text, not {type(event).__name__}")
    if "\n" in text or "\r" in text:
        raise ValueError("an event's JSON text must not contain a line break")
    if extra:
        # Pre-encoded text with convenience fields: decode, merge, encode.
        decoded = json.loads(text)
        if not isinstance(decoded, dict):
            raise ValueError("ttl=, delay= and not_before= need an event that is a JSON object")
        decoded.update(extra)
        return encode_json(decoded)
    return text


def to_bytes(text: str) -> bytes:
    # surrogateescape round-trips bytes events that are not valid UTF-8, so
    # the broker (not the client) says bad_request, as it would on the wire.
    return text.encode("utf-8", "surrogateescape")


# --- command lines ----------------------------------------------------------

SUB_OPTIONS = (
    "group",
    "wait",
    "backoff",
    "max_deliveries",
    "dead",
    "age",
    "limit",
    "limit_bytes",
    "overflow",
)


def sub_line(topic: str, prefetch: Optional[int], options: Mapping[str, Any]) -> str:
    """``sub <topic> [prefetch] [key=value ...]``, options in the protocol's order."""
    words = ["sub", token(topic, "topic")]
    if prefetch is not None:
        words.append(str(count(prefetch, "prefetch")))
    for key in SUB_OPTIONS:
        value = options.get(key)
        if value is None:
            continue
        if key in ("wait", "age"):
            text = str(duration_ms(value, key))
        elif key == "backoff":
            steps = value if isinstance(value, (list, tuple)) else [value]
            if not steps:
                raise ValueError("backoff needs at least one duration")
            text = ",".join(str(duration_ms(s, "backoff", allow_zero=True)) for s in steps)
        elif key in ("max_deliveries", "limit", "limit_bytes"):
            text = str(count(value, key))
        else:
            text = token(value, key)
        words.append(f"{key}={text}")
    unknown = set(options) - set(SUB_OPTIONS)
    if unknown:
        raise TypeError(f"unknown subscription option(s): {', '.join(sorted(unknown))}")
    return " ".join(words) + "\n"


def nack_line(topic: str, id: str, delay: Optional[Duration], dead: bool) -> str:
    words = ["nack", token(topic, "topic"), token(id, "id")]
    if dead and delay is not None:
        raise ValueError("nack takes a delay or dead=True, not both")
    if dead:
        words.append("dead")
    elif delay is not None:
        words.append(str(duration_ms(delay, "delay", allow_zero=True)))
    return " ".join(words) + "\n"


def line(*words: Any) -> str:
    return " ".join(words) + "\n"


# --- replies ----------------------------------------------------------------


def reply_text(line: bytes) -> str:
    """The text after ``+OK `` of a reply line (CRLF removed)."""
    return line[4:].decode("utf-8", "replace") if len(line) > 4 else ""


def reply_json(text: str, after: str = "") -> Any:
    """The JSON value of ``+OK <json>`` (``after`` a leading keyword, if any)."""
    if after and text.startswith(after):
        text = text[len(after) :]
    return json.loads(text)
