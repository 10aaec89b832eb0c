"""
Whether the fast data path can run on the installed Autobahn and Twisted.

The fast path (``_fastpath``, ``_tcpwrite``, ``_trim``) reads and writes
Autobahn and Twisted state that neither documents as public. It runs only
when all of these hold, checked once, lazily, by the first ``WsServer``
that wants it (importing ratchetpy checks nothing):

- the installed versions are in ``VERIFIED_VERSIONS`` (the fast path is
  tested byte for byte against the stock path and with the Autobahn
  TestSuite on exactly those); ``RATCHETPY_FASTPATH=force`` skips this
  version test, not the name check;
- every name in ``FASTPATH_NAMES`` and ``TRANSPORT_NAMES`` exists, checked
  on the classes and on a scratch connection completed in memory;
- ``RATCHETPY_FASTPATH`` is not ``0``/``false``/``no``/``off``.

Otherwise one ``RuntimeWarning`` says why, and every connection uses
Autobahn's stock path: a protocol class without the fast-path mixin, no
class-level memory trimming, no private Autobahn name on the data path.
Correct, and slower (see BENCHMARKS.md).
"""

from __future__ import annotations

import os
import warnings

from ._engine import STATE_OPEN, STREAMING_HOOKS, WebSocketServerProtocol, build_factory

__all__ = [
    "VERIFIED_VERSIONS",
    "FASTPATH_NAMES",
    "TRANSPORT_NAMES",
    "FASTPATH_ENV",
    "fastpath_problems",
    "version_problems",
    "fastpath_available",
    "fastpath_enabled_by_env",
]

VERIFIED_VERSIONS: dict[str, tuple[str, ...]] = {
    "autobahn": ("26.10.2",),
    "twisted": ("26.10.0",),
}
"""Versions the fast path was verified against (tests + Autobahn TestSuite)."""

FASTPATH_NAMES: dict[str, tuple[str, ...]] = {
    "protocol_class": (
        "_dataReceived",
        "consumeData",
        "_cancelAutoPingTimeoutCall",
        "_onOpen",
        "sendData",
        "_trigger",
        *STREAMING_HOOKS,
        "onMessage",
    ),
    # set per connection by Autobahn; checked on a connected instance
    "protocol_instance": (
        "state",
        "data",
        "current_frame",
        "inside_message",
        "_perMessageCompress",
        "logOctets",
        "logFrames",
        "trackedTimings",
        "trafficStats",
        "maxFramePayloadSize",
        "maxMessagePayloadSize",
        "utf8validateIncoming",
        "maskServerFrames",
        "autoFragmentSize",
        "requireMaskedClientFrames",
        "applyMask",
        "send_queue",
        "autoPingTimeoutCall",
        "autoPingRestartOnAnyTraffic",
        "triggered",
    ),
    "traffic_stats": (
        "incomingOctetsWireLevel",
        "incomingWebSocketFrames",
        "incomingWebSocketMessages",
        "outgoingOctetsWireLevel",
        "outgoingWebSocketFrames",
        "outgoingWebSocketMessages",
    ),
    # the memory trimming (``_trim``) copies these onto the per-server class
    "protocol_config": ("CONFIG_ATTRS_COMMON", "CONFIG_ATTRS_SERVER"),
    # overridden or read by _hardening (hostile peers; see _limits.py)
    "hardening_class": (
        "onFrameBegin",
        "onCloseFrame",
        "dropConnection",
        "connectionLost",
        "_dataReceived",
        "_onMessageFrame",  # Twisted adapter; assembles into ``message_data``
        "CLOSE_STATUS_CODES_ALLOWED",
    ),
    "hardening_instance": (
        "current_frame",
        "failedByMe",
        "wasClean",
        "wasNotCleanReason",
        "closeHandshakeTimeout",
        "maxMessagePayloadSize",
    ),
}
"""Autobahn internals the fast path reads (and for ``data``/stats, writes)."""

TRANSPORT_NAMES: tuple[str, ...] = (
    "socket",
    "dataBuffer",
    "offset",
    "_tempDataLen",
    "connected",
    "disconnecting",
    "_writeDisconnected",
    "producer",
)
"""Twisted ``tcp.Connection`` internals used to write straight to the socket."""

FASTPATH_ENV = "RATCHETPY_FASTPATH"
"""``0`` forces Autobahn's stock path everywhere; ``force`` allows the fast
path on versions not in ``VERIFIED_VERSIONS`` (names are still checked)."""


def fastpath_enabled_by_env() -> bool:
    """False when ``RATCHETPY_FASTPATH`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get(FASTPATH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def version_problems() -> list[str]:
    """Installed Autobahn/Twisted versions the fast path was not verified on."""
    import autobahn
    import twisted

    problems = []
    for name, module in (("autobahn", autobahn), ("twisted", twisted)):
        version = str(getattr(module, "__version__", "unknown"))
        if version not in VERIFIED_VERSIONS[name]:
            verified = ", ".join(VERIFIED_VERSIONS[name])
            problems.append(f"{name} {version} is not a verified version ({verified})")
    return problems


def fastpath_problems() -> list[str]:
    """
    What is missing for the fast path in the installed Autobahn/Twisted,
    checked on the classes and on a scratch connection completed in memory
    (on a memory reactor: the global reactor is never touched). Empty means
    every name the fast path uses exists.
    """
    problems: list[str] = []
    for name in FASTPATH_NAMES["protocol_class"]:
        if not hasattr(WebSocketServerProtocol, name):
            problems.append(f"autobahn WebSocketServerProtocol.{name}")
    for name in FASTPATH_NAMES["protocol_config"] + FASTPATH_NAMES["hardening_class"]:
        if not hasattr(WebSocketServerProtocol, name):
            problems.append(f"autobahn WebSocketServerProtocol.{name}")
    try:
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        factory = build_factory(MemoryReactorClock(), {})
        factory.protocol = WebSocketServerProtocol
        proto = factory.buildProtocol(None)
        assert proto is not None  # Twisted's Factory types it Optional
        proto.makeConnection(StringTransport())
        # Complete an opening handshake: some state only exists once open.
        proto.dataReceived(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        if getattr(proto, "state", None) != STATE_OPEN:
            problems.append("a scratch Autobahn handshake did not reach STATE_OPEN")
        for name in FASTPATH_NAMES["protocol_instance"] + FASTPATH_NAMES["hardening_instance"]:
            if not hasattr(proto, name):
                problems.append(f"autobahn protocol instance .{name}")
        stats = getattr(proto, "trafficStats", None)
        for name in FASTPATH_NAMES["traffic_stats"]:
            if not hasattr(stats, name):
                problems.append(f"autobahn trafficStats.{name}")
    except Exception as exc:  # noqa: BLE001 - an Autobahn change we cannot even probe
        problems.append(f"cannot build a scratch Autobahn protocol: {exc!r}")
    problems.extend(_transport_problems())
    return problems


def _transport_problems() -> list[str]:
    from twisted.internet import tcp
    from twisted.internet.abstract import FileDescriptor

    # Instance attributes are assigned in these __init__s, not declared on
    # the class: read the names their code assigns.
    assigned = set(FileDescriptor.__init__.__code__.co_names) | set(
        tcp.Connection.__init__.__code__.co_names
    )
    return [
        f"twisted tcp.Server.{name}"
        for name in TRANSPORT_NAMES
        if not hasattr(tcp.Server, name) and name not in assigned
    ]


_checked: bool | None = None


def fastpath_available() -> bool:
    """
    True when the fast path may run (see the module docstring). Checked on
    the first call; a failure warns once (``RuntimeWarning``) and sticks
    for the life of the process.
    """
    global _checked
    if _checked is None:
        _checked = _check()
    return _checked


def _check() -> bool:
    problems = []
    if os.environ.get(FASTPATH_ENV, "").strip().lower() != "force":
        problems.extend(version_problems())
    problems.extend(fastpath_problems())
    if not problems:
        return True
    warnings.warn(
        "ratchetpy: fast data path disabled: "
        + "; ".join(dict.fromkeys(problems))
        + ". Every frame goes through Autobahn's stock path (correct, slower). "
        f"Install the verified versions, or set {FASTPATH_ENV}=force to try the "
        "fast path on these (its names are still checked).",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def _reset() -> None:
    """Forget the result, so the next ``fastpath_available()`` checks again (tests)."""
    global _checked
    _checked = None
