"""twistd ratchetpy --redis and --workers: options, ini, environment, errors, makeService."""

from __future__ import annotations

import os
import sys
import time

import pytest
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import LogLevel, eventAsJSON

from ratchetpy._tapworkers import (
    REDIS_URL_ENV,
    offset_port,
    relay_wanted,
    worker_argv,
)
from ratchetpy.app import App
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.server.workers import (
    InheritedPortEndpoint,
    WorkerSupervisor,
    _Worker,
    bind_listen_spec,
    exit_status,
    relay_line,
)
from ratchetpy.tap import WORKER_GRACE_MARGIN, Options, makeService
from tests.support.tap import error, parse

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def no_redis_env(monkeypatch):
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)


def test_redis_flag_ini_and_environment(tmp_path, monkeypatch):
    """--redis wins over redis in --config, which wins over RATCHETPY_REDIS_URL."""
    assert parse("--route", "/chat")["redis"] is None
    assert parse("--route", "/chat", "--redis", f" {URL} ")["redis"] == URL
    ini = tmp_path / "r.ini"
    ini.write_text("[ratchetpy]\nroute = /chat\nredis = redis://127.0.0.1:6380/1\nworkers = 3\n")
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:6381/2")
    assert parse("--route", "/chat")["redis"] == "redis://127.0.0.1:6381/2"
    from_ini = parse("--config", str(ini))
    assert from_ini["redis"] == "redis://127.0.0.1:6380/1" and from_ini["workers"] == 3
    flags = parse("--config", str(ini), "--redis", URL, "--workers", "2")
    assert flags["redis"] == URL and flags["workers"] == 2


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (["--redis", "http://u:hunter22@h"], None, "--redis: Redis URL http://u:***@h must start with redis://"),
        (["--redis", "redis://:hunter22@h:99999"], None, "--redis: Redis URL redis://:***@h:99999 is not valid"),
        ([], "redis://h/?bogus=1", f"{REDIS_URL_ENV}: Redis URL redis://h/?bogus=1 has an unknown option"),
        (["--workers", "0"], None, "--workers '0': give a number of processes, 1 or more, or auto"),
        (["--workers", "two"], None, "--workers 'two': give a number"),
        (["--workers", "2"], None, "--workers 2 needs --redis URL"),
        (["--workers", "auto"], None, "--workers auto needs --redis URL"),
        (["--workers", "2", "--redis", URL, "--listen", "unix:/tmp/x.sock"], None,
         "--listen unix:/tmp/x.sock: --workers shares tcp:, tcp6: and ssl: listeners only"),
        (["--workers", "2", "--redis", URL, "--metrics", "/metrics"], None,
         "use --metrics-listen tcp:9100:interface=127.0.0.1"),
        (["--workers", "3", "--redis", URL, "--metrics-listen", "tcp:65534"], None,
         "--metrics-listen tcp:65534 with --workers 3: port 65534 + 2 is beyond 65535"),
        (["--inherit", "x=tcp:1"], None, "--inherit 'x=tcp:1': expected FD=SPEC"),
        (["--inherit", "987654=tcp:1"], None, "file descriptor 987654 (tcp:1) is not open"),
        (["--worker-index", "1"], None, "--worker-index is for the workers of --workers"),
    ],
)
def test_bad_values_are_one_line_naming_the_fix(args, env, expected, monkeypatch):
    """Each mistake ends with one line naming the flag; a password never shows."""
    if env is not None:
        monkeypatch.setenv(REDIS_URL_ENV, env)
    message = error("--route", "/chat", *args)
    assert expected in message, message
    assert "hunter22" not in message


def test_workers_without_redis_names_every_way_to_give_it():
    message = error("--route", "/chat", "--workers", "4")
    assert f"add --redis {URL}" in message
    assert "redis in --config" in message and REDIS_URL_ENV in message


def test_workers_one_and_auto(monkeypatch):
    """1 is a single process (no Redis needed); auto is one per CPU and needs Redis anyway."""
    assert parse("--route", "/chat")["workers"] == 1
    assert parse("--route", "/chat", "--workers", "1")["workers"] == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert parse("--route", "/chat", "--workers", "auto", "--redis", URL)["workers"] == 6
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert parse("--route", "/chat", "--workers", "AUTO")["workers"] == 6


def test_help_hides_the_worker_flags():
    usage = Options().getUsage()
    assert "--workers" in usage and "--redis" in usage
    assert "--inherit" not in usage and "--worker-index" not in usage


def test_make_service_with_redis_attaches_a_backplane():
    """--redis: the App's hub gets a RedisBackplane for that URL (password kept out of its address)."""
    options = parse("--route", "/chat", "--redis", "redis://:hunter22@127.0.0.1:6390/3?prefix=x:")
    app = makeService(options, reactor=MemoryReactor())
    assert isinstance(app, App)
    assert app.backplane is not None and app.hub.backplane is app.backplane
    assert app.backplane.config.address == "redis://:***@127.0.0.1:6390/3"
    assert app.backplane.names.prefix == "x:"
    assert app.backplane.config.password == "hunter22"


def test_make_service_with_workers_is_the_supervisor(tmp_path):
    """--workers N: the parent service, running this Python's twist with the same options minus --workers."""
    options = parse(
        "--route", "/chat", "--workers", "3", "--redis", URL, "--shutdown-timeout", "4",
        "--listen", "tcp:9001:interface=127.0.0.1", "--push-api", "/push", "--push-key", "k" * 20,
        "--push-listen", "tcp:9002:interface=127.0.0.1",
    )
    service = makeService(options, reactor=MemoryReactor())
    assert isinstance(service, WorkerSupervisor)
    assert service.count == 3
    assert service.specs == ["tcp:9001:interface=127.0.0.1", "tcp:9002:interface=127.0.0.1"]
    assert service.grace == 4 + WORKER_GRACE_MARGIN
    assert service.argv[:4] == [sys.executable, "-m", "twisted", "--log-format=text"]
    assert service.argv[4:] == [
        "ratchetpy", "--route", "/chat", "--redis", URL, "--shutdown-timeout", "4",
        "--listen", "tcp:9001:interface=127.0.0.1", "--push-api", "/push", "--push-key", "k" * 20,
        "--push-listen", "tcp:9002:interface=127.0.0.1",
    ]
    assert service.relay_logs is False


def test_worker_argv_drops_only_workers():
    assert worker_argv(["--workers", "2", "--route", "/chat", "--workers=3", "--redis", URL]) == [
        "--route", "/chat", "--redis", URL,
    ]


def test_a_worker_builds_the_app_on_inherited_sockets(tmp_path):
    """--inherit/--worker-index: the same App, listening on the parent's sockets; --workers ignored."""
    shared = bind_listen_spec("tcp:0:interface=127.0.0.1")
    push = bind_listen_spec("tcp:0:interface=127.0.0.1")
    try:
        ini = tmp_path / "w.ini"
        ini.write_text("[ratchetpy]\nworkers = 4\n")
        options = parse(
            "--config", str(ini), "--route", "/chat", "--redis", URL,
            "--listen", "tcp:0:interface=127.0.0.1", "--push-api", "/push", "--push-key", "k" * 20,
            "--push-listen", "tcp:8999:interface=127.0.0.1",
            "--metrics-listen", "tcp:9100:interface=127.0.0.1",
            "--inherit", f"{shared.fd}=tcp:0:interface=127.0.0.1,{push.fd}=tcp:8999:interface=127.0.0.1",
            "--worker-index", "2",
        )
        assert options["workers"] == 1
        app = makeService(options, reactor=MemoryReactor())
        assert isinstance(app, App) and app.worker_index == 2
        endpoints = [server.endpoint for server in app.servers]
        assert [type(e) for e in endpoints] == [InheritedPortEndpoint, InheritedPortEndpoint]
        assert [e._fd for e in endpoints] == [shared.fd, push.fd]
        assert app.backplane is not None
        # Each worker has its own metrics port: 9100 + its index.
        assert app.metrics_servers[0].endpoint._port == 9102
    finally:
        shared.sock.close()
        push.sock.close()


def test_offset_port():
    assert offset_port("tcp:9100:interface=127.0.0.1", 3) == "tcp:9103:interface=127.0.0.1"
    assert offset_port(r"tcp6:interface=\:\:1:port=9100", 1) == r"tcp6:interface=\:\:1:port=9101"
    assert offset_port("tcp6:0", 5) == "tcp6:0"
    with pytest.raises(ConfigurationError, match="give a tcp: endpoint"):
        offset_port("unix:/x", 1)
    with pytest.raises(ConfigurationError, match="give a port"):
        offset_port("tcp:interface=127.0.0.1", 1)


class _Parent(dict):
    pass


@pytest.mark.parametrize(
    "parent, relay",
    [
        (None, False),
        ({"nodaemon": True, "logfile": None, "syslog": False}, False),
        ({"nodaemon": True, "logfile": "-", "syslog": False}, False),
        ({"nodaemon": False, "logfile": None, "syslog": False}, True),  # daemon: stdout is /dev/null
        ({"nodaemon": True, "logfile": "x.log", "syslog": False}, True),
        ({"nodaemon": True, "logfile": None, "syslog": True}, True),
        ({"logFile": sys.stdout}, False),  # python -m twisted
        ({"logFile": sys.stderr}, True),
    ],
)
def test_relay_when_the_parent_does_not_log_to_stdout(parent, relay):
    options = parse("--route", "/chat")
    if parent is not None:
        options.parent = _Parent(parent)
    assert relay_wanted(options) is relay


def test_supervisor_relays_and_workers_log_json_when_twistd_daemonizes():
    options = parse("--route", "/chat", "--workers", "2", "--redis", URL)
    options.parent = _Parent({"nodaemon": False, "logfile": None, "syslog": False})
    service = makeService(options, reactor=MemoryReactor())
    assert service.relay_logs is True and "--log-format=json" in service.argv


def test_relayed_lines(logged):
    """A worker's JSON events come out as they were, marked with the worker; other lines as text."""
    event = {
        "log_format": "Route {path}", "path": "/chat", "log_namespace": "ratchetpy.app",
        "log_level": LogLevel.info, "log_time": time.time() - 60,
    }
    relay_line(1, ("\x1e" + eventAsJSON(event)).encode(), stderr=False)
    relay_line(0, b"Traceback (most recent call last):", stderr=True)
    relay_line(0, b"  ", stderr=False)  # blank: nothing
    relay_line(0, b'{"not": "an event"}', stderr=False)
    relayed, traceback, text = logged
    assert relayed["path"] == "/chat" and relayed["worker"] == 1
    assert relayed["log_system"] == "ratchetpy.app#info worker 1"
    assert relayed["log_time"] == event["log_time"] and relayed["log_level"] is LogLevel.info
    assert traceback["log_level"] is LogLevel.warn and traceback["worker"] == 0
    assert traceback["line"] == "Traceback (most recent call last):"
    assert text["log_level"] is LogLevel.info and text["line"] == '{"not": "an event"}'
    assert len(logged) == 3


def test_partial_lines_wait_for_their_end(logged):
    supervisor = WorkerSupervisor(["x"], [], 1, MemoryReactorClock())
    worker = _Worker(supervisor, 0)
    worker.outReceived(b"first li")
    assert logged == []
    worker.outReceived(b"ne\nsecond")
    worker.errReceived(b"err")
    assert [e["line"] for e in logged] == ["first line"]
    from twisted.internet.error import ProcessDone
    from twisted.python.failure import Failure

    supervisor._stopping = True
    worker.processEnded(Failure(ProcessDone(0)))
    assert [e.get("line") for e in logged[:3]] == ["first line", "second", "err"]
    assert logged[3]["status"] == "exit status 0"


def test_exit_status_in_words():
    from twisted.internet.error import ProcessDone, ProcessTerminated
    from twisted.python.failure import Failure

    assert exit_status(Failure(ProcessDone(0))) == "exit status 0"
    assert exit_status(Failure(ProcessTerminated(3))) == "exit status 3"
    assert exit_status(Failure(ProcessTerminated(signal=9))) == "ended by SIGKILL"


def test_a_worker_serves_tls_on_the_inherited_socket(tls_files):
    """--tls-cert turns tcp: into ssl: in the parent and in each worker alike: the worker finds its socket."""
    cert, key = tls_files
    shared = bind_listen_spec("tcp:0:interface=127.0.0.1")
    try:
        parent = parse("--route", "/chat", "--workers", "2", "--redis", URL, "--tls-cert", cert, "--tls-key", key,
                       "--listen", "tcp:0:interface=127.0.0.1")  # fmt: skip
        (spec,) = parent["listen"]
        assert spec.startswith("ssl:0:interface=127.0.0.1:certKey=")
        worker = parse(*parent.raw_argv, "--inherit", f"{shared.fd}={spec}", "--worker-index", "0")
        app = makeService(worker, reactor=MemoryReactor())
        (endpoint,) = [server.endpoint for server in app.servers]
        assert isinstance(endpoint, InheritedPortEndpoint) and endpoint._spec == spec
    finally:
        shared.sock.close()


class _Transport:
    def __init__(self, signals: list[tuple[int, int]], index: int) -> None:
        self.signals, self.index, self.pid = signals, index, 1000 + index

    def closeStdin(self) -> None:
        pass

    def signalProcess(self, signum: int) -> None:
        self.signals.append((self.index, signum))


def test_the_parent_stops_workers_and_forwards_a_second_signal():
    """SIGTERM to each worker on stop; a second signal to the parent is sent on (workers then drop clients)."""
    import signal

    options = parse("--route", "/chat", "--workers", "2", "--redis", URL, "--shutdown-timeout", "1")
    reactor = MemoryReactorClock()
    supervisor = makeService(options, reactor=reactor)
    sent: list[tuple[int, int]] = []
    for index in range(2):
        worker = _Worker(supervisor, index)
        worker.makeConnection(_Transport(sent, index))
        supervisor.workers[index] = worker
    supervisor.running = 1
    stopped = supervisor.stopService()
    assert sorted(sent) == [(0, signal.SIGTERM), (1, signal.SIGTERM)]
    supervisor.forward_again()
    assert sorted(sent[2:]) == [(0, signal.SIGTERM), (1, signal.SIGTERM)]
    # Still running after the grace (shutdown timeout + margin): SIGKILL.
    reactor.advance(1 + WORKER_GRACE_MARGIN)
    assert sorted(sent[4:]) == [(0, signal.SIGKILL), (1, signal.SIGKILL)]
    from twisted.internet.error import ProcessTerminated
    from twisted.python.failure import Failure

    for worker in list(supervisor.workers.values()):
        worker.processEnded(Failure(ProcessTerminated(signal=signal.SIGKILL)))
    assert stopped.called and supervisor.workers == {}
