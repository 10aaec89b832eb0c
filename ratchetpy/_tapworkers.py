# -*- test-case-name: tests.test_tap_workers -*-
"""
``twistd ratchetpy --redis URL --workers N``: the checks of those flags and
what a worker needs to be built.

With ``--workers N`` (N > 1) the twistd process is the parent: it binds
every ``--listen`` and ``--push-listen`` socket and runs N workers
(``WorkerSupervisor``), each ``python -m twisted ratchetpy`` with the same
options plus the hidden ``--inherit FD=SPEC,...`` and ``--worker-index I``.
A worker builds the same ``App`` listening on the inherited sockets
(``inherited_endpoints``), and ``--metrics-listen`` on port + I (a scrape
must reach one worker, each having its own counters). The workers share
their hub through Redis, which is why ``--workers`` needs ``--redis``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from twisted.python import usage

from .exceptions import ConfigurationError
from .server.workers import InheritedPortEndpoint, parse_inherit_arg, split_spec

__all__ = [
    "REDIS_URL_ENV",
    "REDIS_EXAMPLE",
    "check_redis",
    "check_workers",
    "worker_argv",
    "inherited_endpoints",
    "offset_port",
    "relay_wanted",
]

REDIS_URL_ENV = "RATCHETPY_REDIS_URL"
"""The environment variable holding the Redis URL (``--redis`` and ``redis`` in --config win)."""

REDIS_EXAMPLE = "redis://127.0.0.1:6379/0"

_SHARED_KINDS = ("tcp", "tcp6", "ssl")


def check_redis(options: usage.Options, source: str) -> None:
    """
    Check the Redis URL (``--redis``, ``redis`` in ``--config``, or
    ``RATCHETPY_REDIS_URL``, in that order); ``source`` names where a given
    ``redis`` came from. Leaves the URL in ``options["redis"]`` (or ``None``).
    """
    from .redis.url import RedisConfig

    url = options["redis"]
    if url is None:
        url, source = os.environ.get(REDIS_URL_ENV) or None, REDIS_URL_ENV
    if url is None:
        return
    url = url.strip()
    try:
        # The message shows the URL with its password replaced by ***.
        RedisConfig.from_url(url)
    except ConfigurationError as exc:
        raise usage.UsageError(f"{source}: {exc}; e.g. {REDIS_EXAMPLE}") from exc
    options["redis"] = url


def check_workers(options: usage.Options) -> None:
    """
    Check ``--workers`` (``workers`` in ``--config``) and the hidden worker
    flags; leaves the count in ``options["workers"]`` (1 in a worker) and
    the inherited sockets in ``options["inherited"]`` (``{spec: fd}``).
    """
    raw = options["workers"]
    text = "1" if raw is None else str(raw).strip().lower()
    if text == "auto":
        count = os.cpu_count() or 1
    elif text.isdigit() and int(text) >= 1:
        count = int(text)
    else:
        raise usage.UsageError(
            f"--workers {raw!r}: give a number of processes, 1 or more, or auto (one per CPU)"
        )
    options["inherited"] = {}
    if options["inherit"] is not None:
        _check_worker_flags(options)
        options["workers"] = 1  # a worker never starts workers (the ini may say so)
        return
    if options["worker-index"] is not None:
        raise usage.UsageError("--worker-index is for the workers of --workers; do not give it")
    options["workers"] = count
    if count == 1 and text != "auto":
        return
    if options["redis"] is None:
        raise usage.UsageError(
            f"--workers {text} needs --redis URL, or each worker would have a hub, a chat "
            f"and presence of its own: add --redis {REDIS_EXAMPLE} (or redis in --config, "
            f"or {REDIS_URL_ENV} in the environment)"
        )
    for flag, specs in (("--listen", options["listen"]), ("--push-listen", options["push-listen"])):
        for spec in specs:
            if spec.split(":", 1)[0].lower() not in _SHARED_KINDS:
                raise usage.UsageError(
                    f"{flag} {spec}: --workers shares tcp:, tcp6: and ssl: listeners only; "
                    "listen on tcp:PORT, or run one process per socket without --workers"
                )
    if options["metrics"] is not None:
        raise usage.UsageError(
            f"--metrics {options['metrics']} with --workers: a scrape on the shared port would "
            "reach one worker at random; use --metrics-listen tcp:9100:interface=127.0.0.1 "
            "(worker I answers on port 9100 + I)"
        )
    spec = options["metrics-listen"]
    if spec is not None:
        try:
            offset_port(spec, count - 1)
        except ConfigurationError as exc:
            raise usage.UsageError(f"--metrics-listen {spec} with --workers {count}: {exc}") from exc


def _check_worker_flags(options: usage.Options) -> None:
    try:
        pairs = parse_inherit_arg(options["inherit"])
    except ConfigurationError as exc:
        raise usage.UsageError(str(exc)) from exc
    for fd, spec in pairs:
        try:
            os.fstat(fd)
        except OSError:
            raise usage.UsageError(
                f"--inherit: file descriptor {fd} ({spec}) is not open; --inherit is for "
                "the workers of --workers, not to be given by hand"
            ) from None
    index = options["worker-index"]
    if index is None or not str(index).isdigit():
        raise usage.UsageError(f"--worker-index {index!r}: give the worker's number, 0 or more")
    options["worker-index"] = int(index)
    options["inherited"] = {spec: fd for fd, spec in pairs}


def worker_argv(raw: Sequence[str]) -> list[str]:
    """
    The options a worker runs with: ``raw`` (as given to ``twistd
    ratchetpy``) without ``--workers N``. A worker ignores ``--workers``
    anyway (it may come from ``--config``); this keeps ``ps`` readable.
    """
    out: list[str] = []
    skip = False
    for arg in raw:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def inherited_endpoints(
    specs: Sequence[str], inherited: dict[str, int], reactor: Any
) -> list[str | InheritedPortEndpoint]:
    """``specs`` with each one the parent bound replaced by its inherited socket."""
    return [
        InheritedPortEndpoint(reactor, inherited[spec], spec) if spec in inherited else spec
        for spec in specs
    ]


def offset_port(spec: str, offset: int) -> str:
    """
    ``spec`` (``tcp:PORT...`` or ``tcp6:PORT...``) with ``offset`` added to
    its port (a port of 0 stays 0: any free port).

    Raises:
        ConfigurationError: not tcp:/tcp6:, no port, or beyond 65535.
    """
    kind, *fields = split_spec(spec)
    if kind.lower() not in ("tcp", "tcp6"):
        raise ConfigurationError("give a tcp: endpoint, e.g. tcp:9100:interface=127.0.0.1")
    for i, value in enumerate(fields):
        if value.startswith("port="):
            name, port = "port=", value[len("port="):]
        elif "=" not in value:
            name, port = "", value
        else:
            continue  # interface=, backlog=, ...
        if not port.isdigit():
            break
        moved = int(port) + offset if int(port) else 0
        if moved > 65535:
            raise ConfigurationError(f"port {int(port)} + {offset} is beyond 65535; choose a lower port")
        fields[i] = f"{name}{moved}"
        return ":".join([kind, *fields])
    raise ConfigurationError("give a port, e.g. tcp:9100:interface=127.0.0.1")


def relay_wanted(options: usage.Options) -> bool:
    """
    True when workers must send their log through the parent: ``twistd``
    daemonizes (its stdout is /dev/null) or logs to a file or syslog, or
    ``twist`` logs to a file.
    """
    parent = getattr(options, "parent", None)
    if parent is None:
        return False
    if "nodaemon" in parent:  # twistd
        logfile = parent.get("logfile")
        return not parent["nodaemon"] or bool(parent.get("syslog")) or logfile not in (None, "-")
    log_file = parent.get("logFile") if "logFile" in parent else sys.stdout
    return log_file is not sys.stdout
