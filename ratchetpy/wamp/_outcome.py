# -*- test-case-name: tests.wamp.test_wamp_async -*-
"""
Where the outcome of a WAMP application's handler goes.

A handler that raises synchronously while a message is handled is left to
the layers above (``WampServer`` closes 1007 for ``WampError``, the
WebSocket layer sends anything else to ``on_error``). A handler that
returns an awaitable (``async def``, a ``Deferred``) finishes later, maybe
after its connection closed, when the WebSocket layer no longer knows the
``WampConnection``; so the WAMP layer routes such failures itself, to the
same places: ``WampError`` from a message handler to close 1007 (under
``WampServer``), other exceptions to the application's ``on_error`` with
the ``WampConnection``. The Deferred handed back to the WebSocket layer
fires once all of that is done, so the layer can keep the connection's
later events waiting behind it. ``BaseException`` failures
(``SystemExit``, ...) are passed on untouched for the WebSocket layer's
policy (log, close 1011, stop the process).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .._handlers import as_deferred
from ..exceptions import WampError
from ..interfaces import ConnectionInterface

__all__ = ["INVALID_CLOSE_CODE", "close_invalid", "follow", "follow_on_error", "report"]

INVALID_CLOSE_CODE = 1007
"""The close code for a malformed message or a handler's ``WampError``."""

_log = Logger(namespace="ratchetpy.wamp")


def close_invalid(conn: ConnectionInterface, exc: WampError) -> None:
    """Log ``exc`` and close ``conn`` with 1007."""
    _log.info(
        "Closing WAMP connection #{rid} from {peer} with 1007: {error}",
        rid=getattr(conn, "resource_id", None),
        peer=getattr(conn, "remote_address", None),
        error=exc,
    )
    conn.close(INVALID_CLOSE_CODE)


def follow(
    result: object, app: Any, conn: ConnectionInterface, close_on_wamp_error: bool
) -> Deferred[None] | None:
    """
    ``None`` if the handler's ``result`` is a plain value; otherwise a
    Deferred that fires (with ``None``) once the awaitable finished and
    any failure of it was handled: a ``WampError`` closes ``conn`` with
    1007 when ``close_on_wamp_error``, another ``Exception`` goes to
    ``report``; a ``BaseException`` fails the Deferred.
    """
    if result is None:  # the usual, synchronous case: skip the awaitable checks
        return None
    d = as_deferred(result)
    if d is None:
        return None
    return Deferred.fromCoroutine(_settle(d, app, conn, close_on_wamp_error))


def report(app: Any, conn: ConnectionInterface, exc: Exception) -> Deferred[None] | None:
    """
    Call ``app.on_error(conn, exc)``; returns a Deferred if ``on_error`` is
    async. If ``on_error`` itself fails, log it and close ``conn`` with
    1011, as the WebSocket layer does.
    """
    try:
        result = app.on_error(conn, exc)
    except Exception:  # noqa: BLE001 - on_error itself failed: logged, closed
        _on_error_failed(app, conn, exc)
        return None
    return follow_on_error(result, app, conn, exc)


def follow_on_error(
    result: object, app: Any, conn: ConnectionInterface, exc: Exception
) -> Deferred[None] | None:
    """
    ``None`` if ``on_error``'s ``result`` is a plain value; otherwise a
    Deferred firing once it finished; its failure is logged and closes
    ``conn`` with 1011 (it is not reported to ``on_error`` again).
    """
    if result is None:
        return None
    d = as_deferred(result)
    if d is None:
        return None
    return Deferred.fromCoroutine(_settle_on_error(d, app, conn, exc))


async def _settle(
    d: Deferred[Any], app: Any, conn: ConnectionInterface, close_on_wamp_error: bool
) -> None:
    try:
        await d
    except Exception as exc:  # noqa: BLE001 - goes to on_error, as a sync raise would
        if close_on_wamp_error and isinstance(exc, WampError):
            close_invalid(conn, exc)
            return
        reported = report(app, conn, exc)
        if reported is not None:
            await reported


async def _settle_on_error(
    d: Deferred[Any], app: Any, conn: ConnectionInterface, exc: Exception
) -> None:
    try:
        await d
    except Exception:  # noqa: BLE001 - on_error itself failed: logged, closed
        _on_error_failed(app, conn, exc)


def _on_error_failed(app: Any, conn: ConnectionInterface, exc: Exception) -> None:
    # Called while handling on_error's own exception: logs its traceback.
    _log.failure(
        "on_error of {app!r} raised while handling {error!r}; "
        "closing WAMP connection #{rid} with 1011",
        app=app,
        error=exc,
        rid=getattr(conn, "resource_id", None),
    )
    conn.close(1011)
