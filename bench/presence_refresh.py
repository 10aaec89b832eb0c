"""
What one presence refresh costs Redis, batched (``REFRESH_BATCH`` sets per
script call, the default) against one script call per set (the batch size
set to 1, which is what a refresh did before batching), on a real Redis.

    python bench/presence_refresh.py [--redis redis://127.0.0.1:6379/0] [--channels 5000]

Without ``--redis`` a private ``redis-server`` is started on a free loopback
port (Debian's ``redis-server``). A node with ``--channels`` channels of one
local member each (and one user per 10 channels) refreshes 5 times per
mode (batched, unbatched, batched again); printed: Redis CPU (``INFO cpu``,
user + sys) and script calls per refresh, failed writes (must be 0), and
the ratio batched/unbatched measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import defer, task

import ratchetpy.hub.redis_presence as presence
from ratchetpy.hub import Hub
from ratchetpy.hub.redis_backplane import RedisBackplane
from ratchetpy.testing import FakeConnection


def redis_cpu(cli: list[str]) -> float:
    info = subprocess.run([*cli, "INFO", "cpu"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def start_redis() -> tuple[str, list[str], Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    cli = ["redis-cli", "-p", str(port)]
    for _ in range(100):
        if subprocess.run([*cli, "PING"], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)

    def stop() -> None:
        server.kill()
        server.wait()
        shutil.rmtree(directory, True)

    return f"redis://127.0.0.1:{port}/0", cli, stop


@defer.inlineCallbacks
def measure(reactor: Any, url: str, cli: list[str], channels: int) -> Any:
    hub = Hub()
    backplane = RedisBackplane(hub, f"{url}?prefix=bench-presence:", reactor, presence_ttl=300)
    backplane.startService()
    while not backplane.client.connected:
        yield task.deferLater(reactor, 0.05, lambda: None)
    for n in range(channels):
        conn = FakeConnection()
        hub.register(conn)
        if n % 10 == 0:
            hub.bind(conn, f"user{n}")
        hub.join(conn, f"room{n}")
        if n % 500 == 499:  # as clients arrive: not all joins in one reactor turn
            yield task.deferLater(reactor, 0.05, lambda: None)
    yield task.deferLater(reactor, 1.0, lambda: None)
    backplane.counters["failures"] = 0
    results = {}
    batch_size = presence.REFRESH_BATCH
    for label, batch in (("batched", batch_size), ("one call per set", 1), ("batched ", batch_size)):
        presence.REFRESH_BATCH = batch
        calls = [0]
        real = backplane.client.evalsha_or_eval

        def counting(*args: Any, _calls: list[int] = calls, _real: Any = real, **kwargs: Any) -> Any:
            _calls[0] += 1
            return _real(*args, **kwargs)

        backplane.client.evalsha_or_eval = counting  # type: ignore[method-assign]
        before = redis_cpu(cli)
        for _ in range(5):
            backplane.refresh()
            while backplane._refreshing is not None or backplane.client.pending:
                yield task.deferLater(reactor, 0.01, lambda: None)
        used = (redis_cpu(cli) - before) / 5
        backplane.client.evalsha_or_eval = real  # type: ignore[method-assign]
        results[label] = used
        print(f"{label:>17}: {used * 1000:8.1f} ms of Redis CPU and {calls[0] // 5} script calls per refresh")
    failures = backplane.counters["failures"]
    print(f"failed writes: {failures}" + ("" if failures == 0 else " (the figures above are wrong)"))
    print(f"batched / one call per set: {results['batched '] / results['one call per set']:.2f}x Redis CPU")
    subprocess.run([*cli, "EVAL", "for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", "0", "bench-presence:*"], capture_output=True)
    yield backplane.stopService()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", help="a redis:// URL (default: start a private redis-server)")
    parser.add_argument("--channels", type=int, default=5000)
    options = parser.parse_args()
    stop = None
    if options.redis:
        from urllib.parse import urlsplit

        parts = urlsplit(options.redis)
        url, cli = options.redis, ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    else:
        url, cli, stop = start_redis()
    try:
        task.react(lambda reactor: measure(reactor, url, cli, options.channels))
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    main()
