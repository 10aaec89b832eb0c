# -*- test-case-name: tests.websocket.test_fastpath -*-
"""
The fast data path: ordinary WebSocket traffic without Autobahn's per-frame
machinery, and writes straight to the socket.

Autobahn stays the protocol engine. Once a connection is open, each read is
scanned for *ordinary* frames (final, masked, text or binary, no RSV bits,
7- or 16-bit length, within the size limits, valid UTF-8 for text) which
are unmasked and delivered in a tight loop. At the first byte that is
anything else (a control frame, a fragment, a 64-bit length, an RSV bit, an
unmasked frame, invalid UTF-8, an oversize frame) the rest of the read is
handed to Autobahn at that exact offset, so Autobahn produces its normal
reactions: pong, the closing handshake, 1002/1007/1009.

This mixin is part of the protocol class only when the self-check of
Autobahn/Twisted versions and internals passed (see ``_selfcheck``);
otherwise connections use Autobahn's stock path with no private name on
the data path. With the mixin, the fast path is still off for a connection
when any of these holds: ``RATCHETPY_FASTPATH=0`` is set,
``WsServer(fast_path=False)``, permessage-deflate was negotiated, Autobahn
frame/octet logging or timing is on, or the protocol class overrides one of
Autobahn's streaming hooks (``onMessageBegin`` ... ``onMessageEnd``), which
the fast path does not call.

Differences from the stock path in the fast case: the streaming hooks are
not called, ``trafficStats`` is updated per read rather than per frame, and
Autobahn's debug-level per-message log lines are not emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._engine import STATE_OPEN, STREAMING_HOOKS, WebSocketServerProtocol
from ._selfcheck import fastpath_enabled_by_env
from ._tcpwrite import direct_write
from ._trim import trim_after_open
from .frames import encode_header

__all__ = ["FastPathMixin", "unmask", "xor_masker", "SELF_BUFFER_LIMIT"]

_from_bytes = int.from_bytes

SELF_BUFFER_LIMIT = 64 * 1024
"""A partial ordinary frame up to this size waits (for one more read) in our
buffer for the rest; a bigger one is streamed through Autobahn."""

try:
    from autobahn.websocket import USES_NVX as _USES_NVX
    from autobahn.websocket.xormasker import (  # type: ignore[attr-defined]  # not re-exported
        create_xor_masker as _create_xor_masker,
    )
except ImportError:  # pragma: no cover - Autobahn without NVX support
    _USES_NVX = False
    _create_xor_masker = None  # type: ignore[assignment]  # checked before use


def xor_masker() -> Callable[[bytes, bytes], bytes] | None:
    """
    Autobahn's NVX (SIMD) unmasker as ``unmask(mask, payload) -> bytes``, or
    ``None`` when Autobahn was built without NVX.
    """
    if not _USES_NVX or _create_xor_masker is None:
        return None
    create: Any = _create_xor_masker  # Autobahn's, unannotated

    def unmask(mask: bytes, payload: bytes) -> bytes:
        return create(mask, len(payload)).process(payload)  # type: ignore[no-any-return]

    return unmask


_NVX_THRESHOLD = 512
_nvx_unmask = xor_masker()

try:  # the optional C helper, built by ``pip install`` when a compiler exists
    from ._speedups import unmask as _c_unmask  # type: ignore[import-not-found]
except ImportError:
    _c_unmask = None


def _py_unmask(mask: bytes, payload: bytes) -> bytes:
    # One big-integer XOR over the whole payload: linear time in C, no
    # per-byte Python loop.
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (_from_bytes(payload, "little") ^ _from_bytes(key, "little")).to_bytes(n, "little")


def _unmask_nvx(mask: bytes, payload: bytes) -> bytes:
    if len(payload) < _NVX_THRESHOLD:
        return _py_unmask(mask, payload)
    return _nvx_unmask(mask, payload)  # type: ignore[misc]  # only used when not None


unmask: Callable[[bytes, bytes], bytes]
"""``unmask(mask, payload)``: the C helper, else Python with Autobahn's NVX for large frames."""
if _c_unmask is not None:
    unmask = _c_unmask
elif _nvx_unmask is not None:
    unmask = _unmask_nvx
else:
    unmask = _py_unmask


def _overrides_streaming_hooks(cls: type) -> list[str]:
    return [
        name
        for name in STREAMING_HOOKS
        if getattr(cls, name) is not getattr(WebSocketServerProtocol, name)
    ]


class FastPathMixin:
    """
    Mixed into ``WsServerProtocol`` ahead of Autobahn's protocol.

    The host class provides ``_deliver(msg)`` (``str`` for text,
    ``bytes`` for binary), ``_fastpath_wanted`` (the server's switch) and
    ``_after_buffered(size)`` (called when a write of ``size`` bytes left
    bytes in the transport).
    """

    if TYPE_CHECKING:
        # From the host class (see the class docstring).
        def _deliver(self, msg: str | bytes) -> None: ...
        def _after_buffered(self, size: int) -> None: ...

    # Class defaults so a connection that never opened costs no instance slot.
    _fast_rx = False
    _fast_tx = False
    _fastpath_wanted = True
    _fast_max_frame = 0
    _trim_wanted = False  # set on the per-server class by WsServer

    # -- setup -----------------------------------------------------------

    def _fastpath_setup(self) -> None:
        """Decide, once the handshake is done, whether this connection goes fast."""
        proto: Any = self
        ok = (
            self._fastpath_wanted
            and fastpath_enabled_by_env()
            and proto._perMessageCompress is None
            and not proto.logOctets
            and not proto.logFrames
            and not proto.trackedTimings
            and not _overrides_streaming_hooks(type(self))
        )
        self._fast_tx = bool(ok and not proto.maskServerFrames)
        self._fast_rx = bool(
            ok
            and proto.requireMaskedClientFrames
            and proto.applyMask
            and proto.utf8validateIncoming
            and not getattr(proto, "_listeners", None)
        )
        limits = [v for v in (proto.maxFramePayloadSize, proto.maxMessagePayloadSize) if v]
        self._fast_max_frame = min(limits) if limits else (1 << 62)

    def _onOpen(self) -> None:
        self._fastpath_setup()
        if self._trim_wanted:
            trim_after_open(self)
        super()._onOpen()  # type: ignore[misc]

    # -- receive -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        proto: Any = self
        if (
            not self._fast_rx
            or proto.state != STATE_OPEN
            or proto.current_frame is not None
            or proto.inside_message
        ):
            # Handshake, closing, mid-frame or fast path off: stock Autobahn
            # (skipping only its eagerly formatted debug log line).
            proto._dataReceived(data)
            return
        stats = proto.trafficStats
        stats.incomingOctetsWireLevel += len(data)
        leftover = proto.data
        if leftover:
            # The start of a frame left over from the previous read.
            data = leftover + data
            proto.data = b""
        n = len(data)
        i = 0
        count = 0
        # Truthy when the unprocessed tail is a partial ordinary frame (an
        # int: the mask bit, or a bool).
        keep: int = False
        deliver = self._deliver
        max_frame = self._fast_max_frame
        while i < n:
            if n - i < 6:
                keep = data[i] in (0x81, 0x82) and (n - i < 2 or data[i + 1] & 0x80)
                break
            b0 = data[i]
            if b0 == 0x81:
                binary = False
            elif b0 == 0x82:
                binary = True
            else:
                break  # control, fragment, RSV bit, reserved opcode: Autobahn
            length = data[i + 1]
            if length < 0x80:
                break  # unmasked: Autobahn fails it with 1002
            length -= 0x80
            if length < 126:
                start = i + 6
            elif length == 126:
                if n - i < 8:
                    keep = True
                    break
                length = (data[i + 2] << 8) | data[i + 3]
                if length < 126:
                    break  # non-minimal length encoding: Autobahn fails it
                start = i + 8
            else:
                break  # 64-bit length: Autobahn streams it
            if length > max_frame:
                break  # Autobahn closes with 1009
            end = start + length
            if end > n:
                keep = end - i <= SELF_BUFFER_LIMIT
                break
            payload = unmask(data[start - 4 : start], data[start:end])
            if binary:
                msg: str | bytes = payload
            else:
                try:
                    msg = payload.decode("utf-8")
                except UnicodeDecodeError:
                    break  # Autobahn fails it with 1007
            i = end
            count += 1
            deliver(msg)
            if proto.state != STATE_OPEN:
                break  # the app closed: Autobahn handles what follows
        if count:
            stats.incomingWebSocketFrames += count
            stats.incomingWebSocketMessages += count
            if proto.autoPingTimeoutCall and proto.autoPingRestartOnAnyTraffic:
                proto._cancelAutoPingTimeoutCall()
        if i >= n:
            return
        rest = data[i:] if i else data
        proto.data = rest
        if keep and proto.state == STATE_OPEN and not (leftover and i == 0):
            # Wait for the rest of this frame, once: a frame still incomplete
            # after a second read goes to Autobahn, which streams it, so a
            # client dripping bytes cannot make us re-join a buffer per read.
            return
        proto.consumeData()

    # -- send ----------------------------------------------------------------

    def _fast_send(self, payload: bytes, opcode: int) -> bool:
        """
        Send one final unmasked frame at once; False if this connection
        must use Autobahn's ``sendFrame`` (fast path off, closing, queued).
        """
        n = len(payload)
        if n < 126:  # the common case, without a call
            return self._fast_write_frame(bytes((0x80 | opcode, n)) + payload)
        return self._fast_write_frame(encode_header(opcode, n) + payload)

    def _fast_write_frame(self, frame: bytes) -> bool:
        """Write an already encoded frame at once; False when not eligible."""
        proto: Any = self
        if not self._fast_tx or proto.state != STATE_OPEN or proto.triggered:
            return False
        stats = proto.trafficStats
        stats.outgoingOctetsWireLevel += len(frame)
        stats.outgoingWebSocketFrames += 1
        if direct_write(proto.transport, frame):
            self._after_buffered(len(frame))
        return True

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """
        Autobahn's write (control frames, the stock send path) made
        write-through once the connection is open: the same bytes, in the
        same order, without a reactor turn.
        """
        proto: Any = self
        if sync or chopsize or proto.triggered or not self._fast_tx:
            super().sendData(data, sync, chopsize)  # type: ignore[misc]
            return
        if proto.state == STATE_OPEN:
            proto.trafficStats.outgoingOctetsWireLevel += len(data)
        direct_write(proto.transport, data)
