"""
A worker for tests/server/test_workers.py: serves /pid on the inherited
sockets, answering every WebSocket message with this process's pid.
"""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor

from ratchetpy.app import App
from ratchetpy.server.workers import InheritedPortEndpoint, parse_inherit_arg
from ratchetpy.testing import RecordingComponent


class Pid(RecordingComponent):
    def on_message(self, conn, msg):
        conn.send(f"{os.getpid()} {sys.argv[sys.argv.index('--worker-index') + 1]}")


def main() -> None:
    inherit = parse_inherit_arg(sys.argv[sys.argv.index("--inherit") + 1])
    endpoints = [InheritedPortEndpoint(reactor, fd, spec) for fd, spec in inherit]
    app = App("*", reactor=reactor, listen=endpoints, shutdown_timeout=2)
    app.route("/pid", Pid(), ["*"])
    if "--ignore-term" in sys.argv:
        import signal

        # After app.run() installed its own handlers (callWhenRunning runs in order).
        reactor.callWhenRunning(reactor.callLater, 0, signal.signal, signal.SIGTERM, signal.SIG_IGN)
    app.run()


if __name__ == "__main__":
    main()
