"""
Running a service in the foreground: ``IoServer.run()`` and ``App.run()``.

Both log to stdout, start the service once the reactor runs, and stop it
gracefully before the reactor shuts down. SIGTERM and SIGINT (Ctrl-C)
start that graceful stop; a second one while it is under way drops every
connection at once instead of waiting (rather than Twisted's traceback for
stopping a reactor that is already stopping).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from .._handlers import stop_now

__all__ = ["begin_logging", "run_service", "install_stop_signals"]

_log = Logger(namespace="ratchetpy.server")

_logging_began = False


def begin_logging() -> None:
    """Log to stdout, once per process (Twisted's global log beginner)."""
    global _logging_began
    if not _logging_began:
        globalLogBeginner.beginLoggingTo(
            [textFileLogObserver(sys.stdout)], redirectStandardIO=False
        )
        _logging_began = True


def install_stop_signals(reactor: Any, force: Callable[[], object]) -> None:
    """
    Make SIGTERM/SIGINT stop ``reactor`` gracefully, and a second signal
    during that stop call ``force()`` (drop every connection now).

    Call it once the reactor runs (it replaces the handlers Twisted
    installed at start-up); a no-op outside the main thread.
    """
    state = {"stopping": False}
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not state["stopping"]:
            state["stopping"] = True
            _log.info(
                "Received {signal}: stopping gracefully (send it again to drop every "
                "connection now)",
                signal=name,
            )
            before = previous.get(signum)
            if callable(before) and before is not signal.default_int_handler:
                # Twisted's own handler: it stops the reactor and records the
                # signal, so twistd ends by re-raising it (exit status 143).
                before(signum, frame)
            else:
                reactor.callFromThread(stop_now, reactor)
        else:
            _log.warn("Received {signal} again: dropping every connection now", signal=name)
            reactor.callFromThread(force)

    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave Twisted's handlers
        return


def run_service(service: Any, reactor: Any, force: Callable[[], object]) -> None:
    """Start ``service`` on ``reactor``, run until stopped, stop it gracefully."""
    begin_logging()

    def started() -> None:
        install_stop_signals(reactor, force)
        service.startService()

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
