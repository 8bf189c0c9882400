"""The fields of a delivery, shared by the blocking and the asyncio client."""

from __future__ import annotations

from typing import Any, Dict, Optional


class DeliveryBase:
    """An event delivered to a subscription (PROTOCOL.md sections 5, 12.3).

    Attributes:
        topic: the topic it was published to.
        id: the event id, always a string (an integer id comes as its
            decimal string).
        priority: 0 to 255, higher first.
        msg: the ``msg`` value as published (any JSON value).
        timestamp: when the broker accepted it, in ms since the epoch.
        redelivered: True if this subscription had been sent it before.
        deliveries: how many times this subscription has been sent it, this
            time included: 1 for a first delivery. A version-1 broker does
            not count redeliveries; its redeliveries report 2.
        event: the whole JSON object as delivered, with the publisher's own
            fields and (version 2) ``dead`` on dead letters.
    """

    __slots__ = (
        "topic",
        "id",
        "priority",
        "msg",
        "timestamp",
        "redelivered",
        "deliveries",
        "event",
        "_sub",
        "_gen",
    )

    def __init__(self, event: Dict[str, Any], sub: Any, gen: int) -> None:
        self.event = event
        self.topic: str = event["topic"]
        ident = event.get("id")
        self.id: str = ident if type(ident) is str else str(ident)
        self.priority: int = event.get("priority", 0)
        self.msg: Any = event.get("msg")
        self.timestamp: Optional[int] = event.get("timestamp")
        redelivered = bool(event.get("redelivered", False))
        self.redelivered = redelivered
        count = event.get("deliveries")
        self.deliveries: int = count if type(count) is int else (2 if redelivered else 1)
        self._sub = sub
        self._gen = gen

    def __repr__(self) -> str:
        extra = f", deliveries={self.deliveries}" if self.redelivered else ""
        return (
            f"{type(self).__name__}(topic={self.topic!r}, id={self.id!r}, "
            f"priority={self.priority}, msg={self.msg!r}{extra})"
        )
