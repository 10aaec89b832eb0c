"""
Redis servers for the tests, and ``redis-cli`` as the independent client.

``shared_redis()``: the server most tests use: ``RATCHETPY_TEST_REDIS``
(a ``redis://127.0.0.1:PORT/DB`` URL; .ci/run starts one) when set, else a
private ``redis-server`` started once per test process and killed at exit.
Tests on it use keys and channels of their own (``unique()``) and never
flush it.

``RedisServer``: a private ``redis-server`` on a free loopback port in a
temporary directory (no persistence), which a test may configure (ACL
users, TLS), kill, pause (SIGSTOP), resume and restart on the same port.

Both need ``redis-server`` and ``redis-cli`` (Debian: ``redis-server``,
which brings ``redis-tools``); without them a test skips, or fails in CI
(``tests/support/ci.py``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.ci import require_tool
from tests.support.processes import free_port
from tests.support.timing import seconds

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
ENV = "RATCHETPY_TEST_REDIS"


def require_redis() -> None:
    """Skip (fail in CI) unless redis-server and redis-cli are installed."""
    __tracebackhide__ = True
    require_tool(
        REDIS_SERVER is not None and REDIS_CLI is not None,
        "redis-server/redis-cli are not installed",
        "apt-get install redis-server",
    )


def unique(prefix: str = "t") -> str:
    """A key or channel name no other test uses."""
    return f"ratchetpy-test:{prefix}:{uuid.uuid4().hex[:12]}"


class RedisCli:
    """``redis-cli`` against one server (host, port, db, optional password)."""

    __name__ = "redis-cli"  # trial names cleanups by their function's __name__

    def __init__(self, host: str, port: int, db: int = 0, password: str | None = None) -> None:
        self.host, self.port, self.db, self.password = host, port, db, password

    def __call__(
        self, *args: str | int, user: str | None = None, password: str | None = None
    ) -> str:
        """Run one command; its reply as redis-cli prints it (raw, one value a line)."""
        assert REDIS_CLI is not None
        command = [REDIS_CLI, "-h", self.host, "-p", str(self.port), "-n", str(self.db)]
        env = dict(os.environ)
        password = password or self.password
        if user is not None:
            command += ["--user", user]
        if password is not None:
            env["REDISCLI_AUTH"] = password  # not on the command line
        done = subprocess.run(
            [*command, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=seconds(10),
            env=env,
        )
        if (
            done.returncode != 0
            or done.stdout.startswith("ERR")
            or done.stdout.startswith("(error)")
        ):
            raise AssertionError(f"redis-cli {args!r} failed: {done.stdout}{done.stderr}")
        return done.stdout.rstrip("\n")

    def with_db(self, db: int) -> RedisCli:
        """The same server, another database."""
        return RedisCli(self.host, self.port, db, self.password)

    def numsub(self, channel: str, sharded: bool = False) -> int:
        """Subscribers of ``channel`` (PUBSUB NUMSUB, or SHARDNUMSUB)."""
        out = self("PUBSUB", "SHARDNUMSUB" if sharded else "NUMSUB", channel).split("\n")
        return int(out[1])

    def numpat(self) -> int:
        return int(self("PUBSUB", "NUMPAT"))


class RedisServer:
    """
    A private ``redis-server`` on 127.0.0.1 (see the module docs).

    Args:
        directory: where its working directory and log go.
        extra: more ``redis-server`` arguments (``--tls-port`` ...).
        port: the plain TCP port (0 turns plain TCP off; default: a free one).
    """

    def __init__(self, directory: Path | str, *extra: str, port: int | None = None) -> None:
        require_redis()
        self.directory = Path(directory).resolve()  # redis-server changes into --dir first
        self.port = free_port() if port is None else port
        self.extra = extra
        self.log = self.directory / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.cli = RedisCli("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.log),
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._output(),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + seconds(10)
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{self.log_text()}")
            if self.port == 0 or _answers_ping(self.port):
                return
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer in time:\n{self.log_text()}")

    def _output(self) -> object:
        # what redis-server says before its log file is open (bad arguments)
        self._out = open(self.directory / f"redis-{self.port}.out", "ab")
        return self._out

    def log_text(self) -> str:
        texts = [
            p.read_text(errors="replace")
            for p in (self.directory / f"redis-{self.port}.out", self.log)
            if p.exists()
        ]
        return "\n".join(texts)

    def pause(self) -> None:
        """SIGSTOP: TCP still connects (the kernel answers), nothing replies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (after SIGCONT, so a paused server dies too); waits for the exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=seconds(10))
        if getattr(self, "_out", None) is not None:
            self._out.close()

    def restart(self) -> None:
        """Kill, then start again on the same port (all data and clients gone)."""
        self.kill()
        self.start()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
            # +PONG, or -NOAUTH when a password is set: either way it is up
            return reply.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class _Shared:
    url: str
    cli: RedisCli


_shared: _Shared | None = None


def shared_redis() -> _Shared:
    """The server most tests share (see the module docs); started on first use."""
    global _shared
    if _shared is not None:
        return _shared
    require_redis()  # redis-cli is the tests' independent client either way
    shared = _Shared()
    url = os.environ.get(ENV)
    if url:
        parts = urlsplit(url)
        db = int(parts.path.strip("/") or 0)
        shared.url = url
        shared.cli = RedisCli(parts.hostname or "127.0.0.1", parts.port or 6379, db, parts.password)
    else:
        directory = tempfile.mkdtemp(prefix="ratchetpy-redis-")
        server = RedisServer(directory).start()
        atexit.register(shutil.rmtree, directory, True)
        atexit.register(server.kill)
        shared.url, shared.cli = server.url, server.cli
    _shared = shared
    return shared


def wait_for(
    reactor: object, predicate: object, timeout: float = 10.0, step: float = 0.02
) -> object:
    """
    A Deferred that fires once ``predicate()`` is true, polling every
    ``step`` seconds; fails with AssertionError after ``timeout`` (stretched
    by RATCHETPY_TESTS_TIMEOUT_FACTOR).
    """
    from twisted.internet import defer, task

    @defer.inlineCallbacks
    def poll() -> object:
        deadline = reactor.seconds() + seconds(timeout)  # type: ignore[attr-defined]
        while not predicate():  # type: ignore[operator]
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                raise AssertionError(f"not true within {timeout} s: {predicate!r}")
            yield task.deferLater(reactor, step, lambda: None)
        return True

    return poll()
