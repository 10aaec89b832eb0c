# -*- test-case-name: tests.server.test_workers -*-
"""
``--workers N``: N server processes on the same listening sockets.

The parent binds every listening socket itself (so port 0, privileged
ports and ``interface=`` work as for one process), then starts N worker
processes that inherit those sockets and accept on them; the kernel
spreads new connections between the workers. The parent accepts nothing
and runs no component: it restarts a worker that dies (with a backoff if
it keeps dying at once), forwards SIGTERM/SIGINT to every worker and
waits for each one's graceful stop, killing any that is still running
``grace`` seconds later.

Each worker is an ordinary single-process server (a node with its own
``conn.id`` prefix), built from the same options, listening on
``InheritedPortEndpoint``\\ s instead of binding. State shared between
workers goes through the Redis hub; without it each worker would be an
island, which is why ``twistd ratchetpy --workers`` requires ``--redis``.

Workers write their log to the parent's stdout and stderr (inherited), or,
with ``relay_logs=True`` (``twistd`` daemonized or logging to a file),
send it to the parent as JSON events that the parent logs in its own log,
each event marked with the worker's index (``worker 1``); lines a worker
writes outside the logger (stderr) are relayed as warnings.

Failure modes, and what happens:

- a worker exits or is killed while the server runs: logged with its
  exit status, restarted after ``restart_delay`` (doubling up to
  ``MAX_RESTART_DELAY`` while workers die within ``MIN_UPTIME`` of
  starting; back to the start after one lived that long);
- a worker ignores SIGTERM: SIGKILL after ``grace`` seconds;
- a socket cannot be bound: ``ListenError`` before any worker starts;
- the parent is killed with SIGKILL: workers keep serving until they
  notice (a ``twistd ratchetpy`` worker checks every second that its
  parent is alive, and stops gracefully once it is gone).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, eventFromJSON
from twisted.python.failure import Failure
from zope.interface import implementer

from ..exceptions import ConfigurationError, ListenError
from .backlog import DEFAULT_BACKLOG

__all__ = [
    "ListenSocket",
    "bind_listen_spec",
    "InheritedPortEndpoint",
    "WorkerSupervisor",
    "inherit_arg",
    "parse_inherit_arg",
    "MIN_UPTIME",
    "MAX_RESTART_DELAY",
    "worker_command",
    "exit_status",
    "relay_line",
    "split_spec",
    "PARENT_ENV",
]

_log = Logger(namespace="ratchetpy.workers")

MIN_UPTIME = 10.0
"""A worker that lived less than this many seconds counts as dying at once."""

MAX_RESTART_DELAY = 30.0
"""Longest wait before restarting a worker that keeps dying."""

PARENT_ENV = "RATCHETPY_WORKERS_PARENT"
"""Set in each worker's environment to the parent's pid, so a worker can
tell when its parent is gone (even if that happened before it started)."""

MAX_RELAYED_LINE = 256 * 1024
"""Longest line relayed from a worker; a longer one is relayed in pieces."""


@dataclass
class ListenSocket:
    """A socket the parent bound and listens on, for workers to inherit."""

    spec: str
    sock: socket.socket
    tls: bool

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


def split_spec(spec: str) -> list[str]:
    """An endpoint description's fields, split at unescaped colons (``interface=\\:\\:1`` stays whole)."""
    return re.split(r"(?<!\\):", spec)


def _fields(spec: str) -> tuple[str, list[str], dict[str, str]]:
    kind, *rest = [f.replace("\\:", ":") for f in split_spec(spec)]
    positional = [f for f in rest if "=" not in f]
    keywords = dict(f.split("=", 1) for f in rest if "=" in f)
    return kind.lower(), positional, keywords


def bind_listen_spec(spec: str, backlog: int = DEFAULT_BACKLOG) -> ListenSocket:
    """
    Bind and listen on a ``tcp:``, ``tcp6:`` or ``ssl:`` endpoint description.

    Raises:
        ConfigurationError: another kind of endpoint (``unix:``,
            ``systemd:``), which ``--workers`` does not share.
        ListenError: the address cannot be bound.
    """
    kind, positional, keywords = _fields(spec)
    if kind not in ("tcp", "tcp6", "ssl"):
        raise ConfigurationError(
            f"--workers shares tcp:, tcp6: and ssl: listeners only, not {spec!r}"
        )
    try:
        port = int(keywords.get("port") or positional[0])
        backlog = int(keywords.get("backlog", backlog))
    except (IndexError, ValueError):
        raise ConfigurationError(f"{spec!r}: give a port, e.g. tcp:8080:interface=127.0.0.1") from None
    interface = keywords.get("interface", "::" if kind == "tcp6" else "0.0.0.0")
    family = socket.AF_INET6 if kind == "tcp6" or ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {spec}: {exc.strerror} (choose a free port, or stop the "
            "process using it)"
        ) from exc
    sock.setblocking(False)
    return ListenSocket(spec, sock, kind == "ssl")


def inherit_arg(sockets: Sequence[ListenSocket]) -> str:
    """The ``--inherit`` value telling a worker which fd is which listener."""
    return ",".join(f"{s.fd}={s.spec}" for s in sockets)


def parse_inherit_arg(value: str) -> list[tuple[int, str]]:
    """``inherit_arg``'s inverse: ``[(fd, spec), ...]``."""
    out = []
    for item in value.split(","):
        fd, sep, spec = item.partition("=")
        if not sep or not fd.isdigit():
            raise ConfigurationError(f"--inherit {value!r}: expected FD=SPEC[,FD=SPEC...]")
        out.append((int(fd), spec))
    return out


@implementer(IStreamServerEndpoint)
class InheritedPortEndpoint:
    """
    Listen on a socket inherited from the parent (``fd``), with TLS when
    the spec it was bound from is ``ssl:`` (built from its ``privateKey=``
    and ``certKey=``).
    """

    def __init__(self, reactor: Any, fd: int, spec: str) -> None:
        self._reactor = reactor
        self._fd = fd
        self._spec = spec

    def listen(self, protocolFactory: Any) -> defer.Deferred[IListeningPort]:
        kind, _, keywords = _fields(self._spec)
        factory: Any = protocolFactory
        if kind == "ssl":
            from twisted.protocols.tls import TLSMemoryBIOFactory

            from .tls import tls_options

            cert = keywords.get("certKey") or keywords.get("privateKey", "")
            context = tls_options(cert, keywords.get("privateKey"))
            factory = TLSMemoryBIOFactory(context, False, factory)
        family = socket.AF_INET6 if kind == "tcp6" or ":" in keywords.get("interface", "") else socket.AF_INET
        return defer.execute(self._reactor.adoptStreamPort, self._fd, family, factory)

    def __repr__(self) -> str:
        return f"<InheritedPortEndpoint fd={self._fd} {self._spec}>"


class _Worker(ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.started = supervisor.reactor.seconds()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.pid: int | None = None
        self._partial = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        self.pid = self.transport.pid if self.transport is not None else None
        if self.transport is not None:
            self.transport.closeStdin()  # a worker reads nothing from the parent

    def outReceived(self, data: bytes) -> None:
        self._lines(1, data)

    def errReceived(self, data: bytes) -> None:
        self._lines(2, data)

    def _lines(self, fd: int, data: bytes) -> None:
        buffered = self._partial[fd] + data
        *lines, rest = buffered.split(b"\n")
        while len(rest) > MAX_RELAYED_LINE:
            lines.append(rest[:MAX_RELAYED_LINE])
            rest = rest[MAX_RELAYED_LINE:]
        self._partial[fd] = rest
        for line in lines:
            relay_line(self.index, line, fd == 2)

    def processEnded(self, reason: Failure) -> None:
        for fd, rest in self._partial.items():
            if rest:
                relay_line(self.index, rest, fd == 2)
        self._partial = {1: b"", 2: b""}
        self.supervisor._ended(self, reason)
        self.ended.callback(None)


def relay_line(index: int, line: bytes, stderr: bool) -> None:
    """
    Log one line a worker wrote: a JSON log event (``twist --log-format
    json``) is emitted again as it was, marked ``worker INDEX``; any other
    line as text (a warning if it came on stderr).
    """
    text = line.decode("utf-8", "replace").strip("\x1e\r")
    if not text.strip():
        return
    if text.startswith("{"):
        try:
            event = eventFromJSON(text)
        except ValueError:
            event = None
        if isinstance(event, dict) and "log_time" in event:
            level = event.get("log_level")
            namespace = event.get("log_namespace", "log_legacy")
            # The parent's own log shows legacy (log.msg) events as [-] too.
            where = "-" if namespace == "log_legacy" else f"{namespace}#{getattr(level, 'name', '-')}"
            event["log_system"] = f"{where} worker {index}"
            event["worker"] = index
            _log.observer(event)
            return
    emit = _log.warn if stderr else _log.info
    emit("worker {worker}: {line}", worker=index, line=text, log_system=f"worker {index}")


class WorkerSupervisor(Service):
    """
    The parent of ``count`` workers running ``argv`` (each gets
    ``--inherit FD=SPEC,...`` and ``--worker-index I`` appended).

    Args:
        argv: the worker command, e.g. ``[sys.executable, "-m", "twisted",
            "ratchetpy", ...options without --workers]``.
        specs: the listen descriptions to bind and share.
        count: how many workers.
        grace: seconds to wait for a worker's graceful stop before SIGKILL.
        restart_delay: seconds before restarting a worker that died (doubled
            while workers die at once, see the module docs).
        env: the workers' environment (default: this process's).
        relay_logs: read the workers' stdout and stderr and log them in this
            process's log (``relay_line``), instead of letting them write
            to this process's stdout and stderr.
    """

    def __init__(
        self,
        argv: Sequence[str],
        specs: Sequence[str],
        count: int,
        reactor: Any,
        *,
        grace: float = 15.0,
        restart_delay: float = 1.0,
        env: dict[str, str] | None = None,
        relay_logs: bool = False,
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"workers must be a positive int, not {count!r}")
        self.argv = list(argv)
        self.specs = list(specs)
        self.count = count
        self.reactor = reactor
        self.grace = grace
        self.restart_delay = restart_delay
        self.env = env
        self.relay_logs = relay_logs
        self.sockets: list[ListenSocket] = []
        self.workers: dict[int, _Worker] = {}
        self.restarts = 0
        self._delay = restart_delay
        self._pending: dict[int, Any] = {}
        self._stopping = False

    def privilegedStartService(self) -> None:
        """Bind every listener (before twistd drops privileges)."""
        Service.privilegedStartService(self)
        if not self.sockets:
            try:
                for spec in self.specs:
                    self.sockets.append(bind_listen_spec(spec))
            except Exception:
                self._close_sockets()
                raise

    def startService(self) -> None:
        if not self.sockets:
            self.privilegedStartService()
        Service.startService(self)
        _log.info(
            "Starting {count} workers on {listen}",
            count=self.count,
            listen=", ".join(f"{s.spec} (port {s.port})" for s in self.sockets),
        )
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        self._pending.pop(index, None)
        if self._stopping:
            return
        worker = _Worker(self, index)
        child_fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"} if self.relay_logs else {0: "w", 1: 1, 2: 2}
        for s in self.sockets:
            child_fds[s.fd] = s.fd
        args = [*self.argv, "--inherit", inherit_arg(self.sockets), "--worker-index", str(index)]
        env = dict(os.environ if self.env is None else self.env)
        env[PARENT_ENV] = str(os.getpid())
        self.reactor.spawnProcess(worker, args[0], args, env=env, childFDs=child_fds)
        self.workers[index] = worker
        _log.info("Worker {index} started (pid {pid})", index=index, pid=worker.pid)

    def _ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        status = exit_status(reason)
        if self._stopping:
            _log.info("Worker {index} (pid {pid}) stopped ({status})", index=worker.index, pid=worker.pid, status=status)
            return
        lived = self.reactor.seconds() - worker.started
        self._delay = self._delay * 2 if lived < MIN_UPTIME else self.restart_delay
        delay = min(self._delay, MAX_RESTART_DELAY)
        _log.warn(
            "Worker {index} (pid {pid}) died after {lived:.1f} s ({status}); restarting in {delay:g} s",
            index=worker.index,
            pid=worker.pid,
            lived=lived,
            status=status,
            delay=delay,
        )
        self.restarts += 1
        self._pending[worker.index] = self.reactor.callLater(delay, self._spawn, worker.index)

    def stopService(self) -> defer.Deferred[None]:
        """SIGTERM every worker, wait for each to stop (SIGKILL after ``grace``)."""
        Service.stopService(self)
        self._stopping = True
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        waits = []
        for worker in list(self.workers.values()):
            waits.append(worker.ended)
            self._signal(worker, signal.SIGTERM)
        # Closed here, not after the workers: the port closes as soon as
        # every worker has stopped listening (the first step of its stop),
        # so new clients are refused rather than left in the backlog.
        self._close_sockets()
        if not waits:
            return defer.succeed(None)
        killer = self.reactor.callLater(self.grace, self._kill_all)

        def done(_: object) -> None:
            if killer.active():
                killer.cancel()

        d = defer.DeferredList(waits, consumeErrors=True)
        return d.addCallback(done)

    def _kill_all(self) -> None:
        for worker in list(self.workers.values()):
            _log.warn("Worker {index} (pid {pid}) did not stop in {grace:g} s: killing it", index=worker.index, pid=worker.pid, grace=self.grace)
            self._signal(worker, signal.SIGKILL)

    @staticmethod
    def _signal(worker: _Worker, signum: int) -> None:
        transport = worker.transport
        if transport is None:
            return
        try:
            transport.signalProcess(signum)
        except Exception:  # noqa: BLE001 - ProcessExitedAlready: nothing to stop
            pass

    def _close_sockets(self) -> None:
        for s in self.sockets:
            s.sock.close()
        self.sockets = []


def exit_status(reason: Failure) -> str:
    """How a process ended, in words: ``exit status 0``, ``ended by SIGKILL``."""
    signum = getattr(reason.value, "signal", None)
    if signum:
        try:
            return f"ended by {signal.Signals(signum).name}"
        except ValueError:
            return f"ended by signal {signum}"
    return f"exit status {getattr(reason.value, 'exitCode', '?')}"


def worker_command(options_argv: Sequence[str], twist_args: Sequence[str] = ()) -> list[str]:
    """
    The command a worker runs: this Python, Twisted's runner (``twist``,
    in the foreground, no pidfile) with ``twist_args`` (e.g.
    ``--log-format=text``), then ``ratchetpy`` and these options.
    """
    return [sys.executable, "-m", "twisted", *twist_args, "ratchetpy", *options_argv]
