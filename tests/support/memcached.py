"""
A memcached for the tests: ``RATCHETPY_TEST_MEMCACHED`` (``HOST:PORT``;
``.ci/run`` starts one) when set, else a private ``memcached`` started once
per test process on a free loopback port and killed at exit.

Needs Debian's ``memcached``; without it a test skips, or fails in CI
(``tests/support/ci.py``). Tests use keys of their own and never flush it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time

from tests.support.ci import require_tool
from tests.support.processes import free_port
from tests.support.timing import seconds

MEMCACHED = shutil.which("memcached")
ENV = "RATCHETPY_TEST_MEMCACHED"

__all__ = ["require_memcached", "shared_memcached"]

_shared: tuple[str, int] | None = None


def require_memcached() -> None:
    """Skip (fail in CI) unless ``memcached`` is installed or ``RATCHETPY_TEST_MEMCACHED`` is set."""
    __tracebackhide__ = True
    require_tool(
        MEMCACHED is not None or bool(os.environ.get(ENV)),
        "memcached is not installed",
        "apt-get install memcached",
    )


def shared_memcached() -> tuple[str, int]:
    """``(host, port)`` of the memcached most tests share; started on first use."""
    global _shared
    if _shared is not None:
        return _shared
    require_memcached()
    configured = os.environ.get(ENV)
    if configured:
        host, _, port = configured.rpartition(":")
        _shared = (host or "127.0.0.1", int(port))
        return _shared
    assert MEMCACHED is not None
    port = free_port()
    process = subprocess.Popen(
        [MEMCACHED, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
        + (["-u", "root"] if os.getuid() == 0 else []),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.kill)
    deadline = time.monotonic() + seconds(10)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"memcached did not start on 127.0.0.1:{port}") from None
            time.sleep(0.05)
    _shared = ("127.0.0.1", port)
    return _shared
