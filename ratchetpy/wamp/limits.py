# -*- test-case-name: tests.wamp.test_wamp_limits -*-
"""
Bounds on what one WAMP client can make the server keep.

WAMP v1 lets a client grow state on the server for as long as it stays
connected: every PREFIX adds a CURIE prefix, every SUBSCRIBE a subscription,
and each holds a URI of the client's choosing. Without bounds, 1,000 PREFIX
messages with 100 KB URIs cost about 100 MB, and 100,000 SUBSCRIBEs about
57 MB and a reactor stall of about 0.4 s when the client leaves. The
``WampServer`` options below bound each connection's state; a client that
goes over one is closed with 1008 (policy violation) and the log names the
option to raise.

Defaults, and why:

``max_uri_length`` = 2048 characters
    WAMP v1 topics and procedures are HTTP URIs. 2,048 is the common
    practical limit for URLs (what browsers, proxies and the sitemaps
    protocol accept), so any URI a browser application can use fits, and
    real ones (tens of characters) are far below it.
``max_prefixes`` = 64 per connection
    AutobahnJS applications define a handful of CURIE prefixes (Ratchet's
    tutorials: one to three). 64 leaves ample room while bounding the worst
    case at 64 x (prefix + URI) ~ 0.3 MB.
``max_subscriptions`` = 1,000 per connection
    Dashboards subscribe to tens or hundreds of topics. At the cap a
    connection holds about 0.6 MB with ordinary URIs (2.5 MB with URIs at
    ``max_uri_length``), in line with the WebSocket layer's per-connection
    limits (1 MB message, 4 MB send buffer), and leaving costs a few
    milliseconds.

Pass ``None`` for no limit (Ratchet's behaviour).
"""

from __future__ import annotations

from twisted.logger import Logger

from ..exceptions import ConfigurationError
from ..interfaces import ConnectionInterface

__all__ = [
    "DEFAULT_MAX_URI_LENGTH",
    "DEFAULT_MAX_PREFIXES",
    "DEFAULT_MAX_SUBSCRIPTIONS",
    "LIMIT_CLOSE_CODE",
    "check_limit",
    "refuse",
]

DEFAULT_MAX_URI_LENGTH = 2048
"""Longest URI, CURIE or prefix name a client may send, in characters."""

DEFAULT_MAX_PREFIXES = 64
"""Most CURIE prefixes one connection may define."""

DEFAULT_MAX_SUBSCRIPTIONS = 1000
"""Most topics one connection may be subscribed to at once."""

LIMIT_CLOSE_CODE = 1008
"""The close code for a client that goes over a limit (policy violation)."""

_log = Logger(namespace="ratchetpy.wamp")


def check_limit(name: str, value: int | None) -> int | None:
    """
    Validate the option ``name``: a positive int, or ``None`` for no limit.

    Raises:
        ConfigurationError: anything else (including ``bool`` and ``0``).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int or None, not {value!r}")
    return value


def refuse(conn: ConnectionInterface, what: str, option: str, limit: int, size: int) -> None:
    """
    Close ``conn`` with 1008 because ``what`` (``size``) is over ``option``
    (``limit``), and log it with the option to raise.
    """
    _log.warn(
        "Closing WAMP connection #{rid} from {peer} with {code}: {what} is over the "
        "limit ({size} > {option}={limit}); raise WampServer({option}=...) if "
        "legitimate clients need more",
        rid=getattr(conn, "resource_id", None),
        peer=getattr(conn, "remote_address", None),
        code=LIMIT_CLOSE_CODE,
        what=what,
        option=option,
        limit=limit,
        size=size,
    )
    conn.close(LIMIT_CLOSE_CODE)
