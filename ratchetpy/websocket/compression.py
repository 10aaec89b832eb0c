# -*- test-case-name: tests.websocket.test_broadcast,tests.websocket.test_loopback_fast -*-
"""
Opt-in permessage-deflate (RFC 7692) with bounded memory.

Browsers always offer permessage-deflate; PHP Ratchet 0.4.4 ignores the
offer, and so does ``WsServer`` unless built with ``compression="deflate"``.
Then the server compresses with at most ``window_bits`` (default 12: a
4 KiB window) and a low ``mem_level``, asks the client to do the same when
the client allows it, and Autobahn applies ``max_message_size`` to the
*inflated* message. A compressed connection uses Autobahn's stock data
path, not the fast path.
"""

from __future__ import annotations

from collections.abc import Callable

from autobahn.websocket.compress import (
    PerMessageCompressOffer,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)

from ..exceptions import ConfigurationError

__all__ = ["deflate_acceptor"]


def deflate_acceptor(
    window_bits: int = 12, mem_level: int = 4
) -> Callable[[list[PerMessageCompressOffer]], PerMessageDeflateOfferAccept | None]:
    """
    Autobahn's ``perMessageCompressionAccept`` callback: accept the first
    permessage-deflate offer with the given bounds, decline anything else.
    """
    if window_bits not in range(9, 16):
        raise ConfigurationError(f"deflate_window_bits must be 9..15, not {window_bits!r}")
    if mem_level not in range(1, 10):
        raise ConfigurationError(f"deflate_mem_level must be 1..9, not {mem_level!r}")

    def accept(offers: list[PerMessageCompressOffer]) -> PerMessageDeflateOfferAccept | None:
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                bits = window_bits
                if offer.request_max_window_bits:
                    bits = min(bits, offer.request_max_window_bits)
                return PerMessageDeflateOfferAccept(
                    offer,
                    # Bound the client's window, and so our inflater, when it lets us.
                    request_max_window_bits=window_bits if offer.accept_max_window_bits else 0,
                    window_bits=bits,
                    mem_level=mem_level,
                )
        return None

    return accept
