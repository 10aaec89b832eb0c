"""
The hub across processes through Redis (issue 10), measured in one run.

    (cd bench && npm install)          # the load clients, npm ws
    python bench/scaleout.py [--rounds 3] [--duration 5] [--only broadcast,latency,pushapi]
        [--subscribers 1000] [--configs local,redis-1,redis-2] [--spread] [--json out.json]

Starts a private ``redis-server`` on a free loopback port (no persistence,
in a temporary directory, removed at the end) and, per measurement, one or
two hub nodes (``bench/scaleout_node.py``: route ``/sub`` joins channel
``bench`` and publishes what a client sends to it, publish API at
``/push``). Configurations, alternating within each round:

- ``local``: one process, no Redis (the hub as it was before issue 10);
- ``redis-1``: one process with a ``RedisBackplane`` (each publication also
  goes through Redis, where no other node listens);
- ``redis-2``: two processes sharing the Redis; the subscribers are split
  between them (connection i on node i % 2), the publisher is on node 0.

Benchmarks:

- ``broadcast``: ``--subscribers`` connections (1,000) in the channel;
  connection 0 sends one 32 B binary message at a time, the next once every
  subscriber has it (``bench/load_hub.js``). Deliveries per second, the
  servers' CPU µs per delivery (all nodes together), Redis CPU per
  publication, and per node the latency of each delivery (receive time -
  send time, one clock: the load client's).
- ``latency``: the same with 10 subscribers and a 2 ms pause between
  messages (no queueing): the latency a message gains by crossing Redis is
  node 1's latency minus node 0's in ``redis-2``.
- ``pushapi``: 32 concurrent loops POSTing ``{"channel": "bench", "data":
  ...}`` to node 0's publish API, one request per connection
  (``bench/load_http.js``), 10 subscribers in the channel (split as above,
  and each answer must say ``delivered: 10``: with two nodes that includes
  node 1's acknowledgement through Redis). Requests per second, servers' and
  Redis' CPU per request, latency.

- ``redis``: Redis alone, for the paper estimate: ``redis-benchmark``
  PUBLISHes a 154 B message (the size of a hub envelope with 100 B of
  payload) with 16 connections x 16 pipelined, to 1 and to 8 subscribed
  ``redis-cli`` processes (8 nodes). Publications per second, and Redis'
  CPU per publication (whole process, ``INFO cpu``): 1 s / that is what
  one Redis core can carry. Not part of the default ``--only``.

Placement (2 cores): by default every node is pinned to CPU 0 and the load
clients and redis-server to CPU 1, so the nodes' CPU per delivery is
comparable between configurations, but two nodes share one core: this
machine cannot show two nodes delivering twice as much. ``--spread`` pins
node i to CPU i % 2 and leaves the clients and Redis unpinned instead.
127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import stop  # noqa: E402  (bench/run.py, beside this file)
from scaleout_node import CHANNEL, PUSH_KEY  # noqa: E402

CONFIGS = {"local": (1, False), "redis-1": (1, True), "redis-2": (2, True)}
PYTHON = sys.executable
START_TIMEOUT = 30.0


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s main thread, to the nanosecond (``/proc/PID/schedstat``:
    the clock ticks of ``/proc/PID/stat`` are 10 ms, too coarse for Redis)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """A private redis-server on a free loopback port, pinned like the clients."""

    def __init__(self, tmp: str, pin: list[str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*pin, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", tmp, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return out.stdout.strip()

    def subscribers(self, channel: str) -> int:
        lines = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        return int(lines[1]) if len(lines) == 2 else -1

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def commandstats(self) -> dict[str, dict[str, float]]:
        """Calls and microseconds per command since the last ``CONFIG RESETSTAT``."""
        stats = {}
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, fields = line[8:].split(":", 1)
                values = dict(f.split("=", 1) for f in fields.split(","))
                stats[name] = {"calls": float(values["calls"]), "usec": float(values["usec"])}
        return stats

    def stop(self) -> None:
        stop(self.proc)


class Nodes:
    """One or two scaleout_node.py processes (a context manager)."""

    prefixes = 0

    def __init__(self, config: str, redis: Redis, tmp: str, spread: bool) -> None:
        count, use_redis = CONFIGS[config]
        Nodes.prefixes += 1
        self.prefix = f"bench{Nodes.prefixes}:"
        self.redis = redis if use_redis else None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.logs: list[str] = []
        for i in range(count):
            port_file = os.path.join(tmp, f"node{Nodes.prefixes}-{i}.port")
            log = port_file[:-5] + ".log"
            command = [PYTHON, os.path.join(HERE, "scaleout_node.py"), port_file]
            if self.redis is not None:
                command += ["--redis", self.redis.url, "--prefix", self.prefix]
            with open(log, "wb") as out:
                self.procs.append(subprocess.Popen(
                    ["taskset", "-c", str(i % 2 if spread else 0), *command],
                    stdout=out, stderr=subprocess.STDOUT, env=_env(),
                ))
            self.logs.append(log)
            self.ports.append(self._port(port_file, self.procs[-1], log))

    @staticmethod
    def _port(port_file: str, proc: subprocess.Popen[bytes], log: str) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log) as f:
                    raise RuntimeError(f"node did not start:\n{f.read()[-2000:]}")
            time.sleep(0.05)
        with open(port_file) as f:
            return int(f.read())

    def urls(self, scheme: str = "ws", path: str = "/sub") -> list[str]:
        return [f"{scheme}://127.0.0.1:{port}{path}" for port in self.ports]

    def wait_subscribed(self) -> None:
        """Until every node has subscribed to the channel's Redis channel."""
        if self.redis is None:
            return
        channel = f"{self.prefix}ch:{{{CHANNEL}}}"
        deadline = time.monotonic() + START_TIMEOUT
        while self.redis.subscribers(channel) != len(self.procs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every node subscribed to {channel} in Redis")
            time.sleep(0.05)

    def cpu(self) -> list[float]:
        return [cpu_seconds(p.pid) for p in self.procs]

    def __enter__(self) -> Nodes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            stop(proc)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def node_client(script: str, args: list[str], pin: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*pin, "node", os.path.join(HERE, script), *args],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, cwd=HERE,
    )


def read_until(proc: subprocess.Popen[str], prefix: str, timeout: float = START_TIMEOUT) -> str:
    """The first line of ``proc``'s output starting with ``prefix``."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"load client: no {prefix!r} line (exit {proc.poll()})")


def kill(proc: subprocess.Popen[str] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def measure(
    proc: subprocess.Popen[str], nodes: Nodes, redis: Redis, sink: subprocess.Popen[str] | None = None
) -> tuple[dict[str, Any], list[float], float]:
    """Server and Redis CPU seconds over the client's window, and its RESULT;
    ``sink`` gets a line when the window starts and its stdin closed at the end."""
    read_until(proc, "MEASURE")
    redis.cli("CONFIG", "RESETSTAT")
    cpu0, r0 = nodes.cpu(), redis.cpu()
    if sink is not None and sink.stdin is not None:
        sink.stdin.write("go\n")
        sink.stdin.flush()
    line = read_until(proc, "RESULT")
    cpu1, r1 = nodes.cpu(), redis.cpu()
    commands = redis.commandstats()
    if sink is not None and sink.stdin is not None:
        sink.stdin.close()
    proc.wait(30)
    result = json.loads(line.split(" ", 1)[1])
    result["redis_commands"] = commands
    return result, [b - a for a, b in zip(cpu0, cpu1, strict=True)], r1 - r0


def run_hub(config: str, bench: str, args: argparse.Namespace, redis: Redis, tmp: str) -> dict[str, Any]:
    conns, interval = (args.subscribers, 0) if bench == "broadcast" else (10, 2)
    load = None
    with Nodes(config, redis, tmp, args.spread) as nodes:
        try:
            load = node_client("load_hub.js", [
                "--urls", ",".join(nodes.urls()), "--mode", "broadcast", "-c", str(conns),
                "-s", "32", "-d", str(args.duration), "--interval", str(interval),
            ], args.client_pin)
            read_until(load, "OPEN")
            nodes.wait_subscribed()
            assert load.stdin is not None
            load.stdin.write("go\n")
            load.stdin.flush()
            result, cpu, redis_cpu = measure(load, nodes, redis)
        finally:
            kill(load)
    count = max(result["count"], 1)
    return {
        "rate": result["rate"],
        "us_per_delivery": sum(cpu) / count * 1e6,
        "node_cpu": [c / result["secs"] for c in cpu],
        "publications": result["rounds"] / result["secs"],
        "redis_us_per_publication": redis_cpu / max(result["rounds"], 1) * 1e6,
        "redis_cpu": redis_cpu / result["secs"],
        "lost": result["lost"],
        "latency_us": result["latency_us"],
        "redis_commands": result["redis_commands"],
    }


def run_push(config: str, args: argparse.Namespace, redis: Redis, tmp: str) -> dict[str, Any]:
    subscribers = 10
    sink = load = None
    with Nodes(config, redis, tmp, args.spread) as nodes:
        try:
            sink = node_client("load_hub.js", [
                "--urls", ",".join(nodes.urls()), "--mode", "sink", "-c", str(subscribers),
            ], args.client_pin)
            read_until(sink, "OPEN")
            nodes.wait_subscribed()
            load = node_client("load_http.js", [
                "--url", nodes.urls("http", "/push")[0], "--key", PUSH_KEY,
                "--body", json.dumps({"channel": CHANNEL, "data": "x" * 32}),
                "-c", "32", "-d", str(args.duration), "--expect", str(subscribers),
            ], args.client_pin)
            # the sink counts deliveries over the HTTP client's window
            result, cpu, redis_cpu = measure(load, nodes, redis, sink)
            sunk = json.loads(read_until(sink, "RESULT").split(" ", 1)[1])
        finally:
            kill(load)
            kill(sink)
    count = max(result["count"], 1)
    return {
        "rate": result["rate"],
        "us_per_request": sum(cpu) / count * 1e6,
        "node_us_per_request": [c / count * 1e6 for c in cpu],
        "node_cpu": [c / result["secs"] for c in cpu],
        "redis_us_per_request": redis_cpu / count * 1e6,
        "statuses": result["statuses"],
        "errors": result["errors"],
        "wrong_count": result["wrong_count"],
        "deliveries_per_request": sunk["count"] / sunk["secs"] / max(result["rate"], 1e-9),
        "latency_us": result["latency_us"],
        "redis_commands": result["redis_commands"],
    }


def redis_cpu_info(redis: Redis) -> float:
    """Redis' CPU seconds, all threads (``INFO cpu``, getrusage)."""
    fields = dict(
        line.split(":", 1) for line in redis.cli("INFO", "cpu").splitlines() if ":" in line
    )
    return float(fields["used_cpu_sys"]) + float(fields["used_cpu_user"])


def run_redis(fanout: int, args: argparse.Namespace, redis: Redis) -> dict[str, Any]:
    channel, count = f"fanout{fanout}", 200_000
    subs = [
        subprocess.Popen([*args.client_pin, "redis-cli", "-p", str(redis.port), "SUBSCRIBE", channel],
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        for _ in range(fanout)
    ]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while redis.subscribers(channel) != fanout:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-cli subscribers did not subscribe")
            time.sleep(0.05)
        cpu0 = redis_cpu_info(redis)
        out = subprocess.run(
            [*args.client_pin, "redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port),
             "-n", str(count), "-c", "16", "-P", "16", "-q", "--csv", "PUBLISH", channel, "m" * 154],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout
        cpu = redis_cpu_info(redis) - cpu0
        still = redis.subscribers(channel)
    finally:
        for sub in subs:
            sub.kill()
            sub.wait()
    rate = float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
    return {"rate": rate, "redis_us_per_publication": cpu / count * 1e6,
            "messages_out": rate * fanout, "subscribers_left": still}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _lat(runs: list[dict[str, Any]], node: int, p: str) -> float:
    return statistics.median(r["latency_us"][node][p] for r in runs)


def report(bench: str, samples: dict[str, list[dict[str, Any]]]) -> None:
    rounds = len(next(iter(samples.values())))
    print(f"\n== {bench} (median of {rounds})")
    if bench == "redis":
        for config, runs in samples.items():
            per_round = "/".join(f"{r['redis_us_per_publication']:.2f}" for r in runs)
            print(f"  {config:10s} {_median(runs, 'rate'):9.0f} PUBLISH/s  "
                  f"{_median(runs, 'messages_out'):9.0f} messages out/s  Redis CPU "
                  f"{_median(runs, 'redis_us_per_publication'):.2f} us/publication "
                  f"(rounds {per_round}); subscribers left {min(r['subscribers_left'] for r in runs)}")
        sys.stdout.flush()
        return
    if bench == "pushapi":
        for config, runs in samples.items():
            nodes = "/".join(f"{statistics.median(r['node_us_per_request'][i] for r in runs):.0f}"
                             for i in range(len(runs[0]["node_us_per_request"])))
            statuses = {k: sum(r["statuses"].get(k, 0) for r in runs)
                        for k in {k for r in runs for k in r["statuses"]}}
            print(
                f"  {config:8s} {_median(runs, 'rate'):7.0f} req/s  {_median(runs, 'us_per_request'):6.0f} "
                f"server CPU us/req (per node {nodes})  Redis {_median(runs, 'redis_us_per_request'):5.1f} us/req  "
                f"latency p50 {statistics.median(r['latency_us']['p50'] for r in runs) / 1000:.2f} ms "
                f"p99 {statistics.median(r['latency_us']['p99'] for r in runs) / 1000:.2f} ms  "
                f"deliveries/req {_median(runs, 'deliveries_per_request'):.2f}  statuses {statuses}  "
                f"wrong delivered {sum(r['wrong_count'] for r in runs)}  "
                f"errors {sum(sum(r['errors'].values()) for r in runs)}"
            )
        pairs, key = [("redis-1", "local"), ("redis-2", "local"), ("redis-2", "redis-1")], "us_per_request"
    else:
        for config, runs in samples.items():
            lat = "  ".join(
                f"node{i} p50 {_lat(runs, i, 'p50'):.0f} p99 {_lat(runs, i, 'p99'):.0f} us"
                for i in range(len(runs[0]["latency_us"]))
            )
            cpu = "/".join(f"{statistics.median(r['node_cpu'][i] for r in runs) * 100:.0f}%"
                           for i in range(len(runs[0]["node_cpu"])))
            print(
                f"  {config:8s} {_median(runs, 'rate'):8.0f} deliveries/s  "
                f"{_median(runs, 'us_per_delivery'):6.2f} server CPU us/delivery (CPU {cpu})  "
                f"{_median(runs, 'publications'):6.0f} pub/s  Redis {_median(runs, 'redis_us_per_publication'):5.1f} "
                f"us/pub  lost {sum(r['lost'] for r in runs)}  {lat}"
            )
        pairs, key = [("redis-1", "local"), ("redis-2", "local"), ("redis-2", "redis-1")], "us_per_delivery"
    for config, runs in samples.items():
        commands = runs[len(runs) // 2]["redis_commands"]
        if any(not name.startswith(("config", "info")) for name in commands):
            print(f"  {config:8s} Redis commands in the window (round {len(runs) // 2 + 1}): " + ", ".join(
                f"{name} {c['calls']:.0f} x {c['usec'] / max(c['calls'], 1):.1f} us"
                for name, c in sorted(commands.items()) if not name.startswith(("config", "info"))
            ))
    for a, b in pairs:
        if a in samples and b in samples:
            per_round = [x[key] / y[key] for x, y in zip(samples[a], samples[b], strict=True)]
            rates = [x["rate"] / y["rate"] for x, y in zip(samples[a], samples[b], strict=True)]
            print(
                f"  {a} vs {b}: CPU per item {statistics.median(per_round):.2f}x "
                f"(rounds {'/'.join(f'{r:.2f}' for r in per_round)}), rate "
                f"{statistics.median(rates):.2f}x (rounds {'/'.join(f'{r:.2f}' for r in rates)})"
            )
    if bench == "latency" and "redis-2" in samples:
        runs = samples["redis-2"]
        for p in ("p50", "p99"):
            gained = [r["latency_us"][1][p] - r["latency_us"][0][p] for r in runs]
            print(f"  redis-2: cross-process minus local {p}: {statistics.median(gained):.0f} us "
                  f"(rounds {'/'.join(f'{g:.0f}' for g in gained)})")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--only", default="broadcast,latency,pushapi")
    parser.add_argument("--configs", default="local,redis-1,redis-2")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--spread", action="store_true", help="node i on CPU i %% 2; clients and Redis unpinned")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        print("run `npm install` in bench/ first (the load clients need npm ws)")
        return 2
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        print("redis-server and redis-cli are needed (Debian: apt-get install redis-server)")
        return 2
    configs = args.configs.split(",")
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"unknown configurations {unknown}; known: {sorted(CONFIGS)}")
    benches = args.only.split(",")
    if unknown := [b for b in benches if b not in ("broadcast", "latency", "pushapi", "redis")]:
        parser.error(f"unknown benchmarks {unknown}")
    args.client_pin = [] if args.spread else ["taskset", "-c", "1"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="ratchetpy-scaleout-")
    redis = None
    report_data: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args), "results": {}}
    try:
        redis = Redis(tmp, args.client_pin)
        print(f"redis-server on 127.0.0.1:{redis.port} ({redis.cli('INFO', 'server').split('redis_version:')[1].split()[0]}); "
              f"{len(configs)} configurations x {args.rounds} rounds, {args.duration:g} s each"
              f"{', spread over both CPUs' if args.spread else '; nodes on CPU 0, clients and Redis on CPU 1'}")
        sys.stdout.flush()
        for bench in benches:
            names = ["fanout-1", "fanout-8"] if bench == "redis" else configs
            samples: dict[str, list[dict[str, Any]]] = {c: [] for c in names}
            for _ in range(args.rounds):
                for config in names:
                    if bench == "redis":
                        samples[config].append(run_redis(int(config.split("-")[1]), args, redis))
                    elif bench == "pushapi":
                        samples[config].append(run_push(config, args, redis, tmp))
                    else:
                        samples[config].append(run_hub(config, bench, args, redis, tmp))
            report_data["results"][bench] = samples
            report(bench, samples)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report_data, f, indent=1)
        return 0
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
