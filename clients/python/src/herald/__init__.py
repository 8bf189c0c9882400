"""Herald client for Python: ``import herald``.

>>> import herald
>>> with herald.Client("127.0.0.1:8000") as c:             # doctest: +SKIP
...     c.create("tweets")
...     sub = c.subscribe("tweets", prefetch=10)
...     c.publish("tweets", {"id": "1", "priority": 3, "msg": "tweet 1"})
...     for d in sub:
...         print(d.id, d.msg)
...         d.ack()
...         break

:class:`herald.Client` is blocking (thread-safe, a reader thread per
client); :mod:`herald.aio` has the same API for asyncio. Every ``-ERR
<code>`` from the broker raises the :class:`HeraldError` subclass named
after its code (:class:`NoTopic`, :class:`NoEvent`, ...).
"""

from .client import Client, Delivery, Subscription, connect
from .errors import (
    AuthFailed,
    AuthRequired,
    BadArgs,
    BadEvent,
    BadRequest,
    BadState,
    BadTopic,
    ConnectionClosed,
    Forbidden,
    Full,
    HeraldError,
    LineTooLong,
    NameInUse,
    NoEvent,
    NoTopic,
    NotLeader,
    NotSubscribed,
    ProtocolError,
    Unavailable,
    UnknownCommand,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Subscription",
    "Delivery",
    "connect",
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
]
