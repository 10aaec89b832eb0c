"""WAMP v1 message type ids (http://wamp.ws/spec, version 1); public in ``protocol``."""

from __future__ import annotations

__all__ = [
    "MSG_WELCOME",
    "MSG_PREFIX",
    "MSG_CALL",
    "MSG_CALL_RESULT",
    "MSG_CALL_ERROR",
    "MSG_SUBSCRIBE",
    "MSG_UNSUBSCRIBE",
    "MSG_PUBLISH",
    "MSG_EVENT",
]

MSG_WELCOME = 0  # server -> client
MSG_PREFIX = 1  # both ways
MSG_CALL = 2  # client -> server
MSG_CALL_RESULT = 3  # server -> client
MSG_CALL_ERROR = 4  # server -> client
MSG_SUBSCRIBE = 5  # client -> server
MSG_UNSUBSCRIBE = 6  # client -> server
MSG_PUBLISH = 7  # client -> server
MSG_EVENT = 8  # server -> client
