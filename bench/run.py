"""
ratchetpy's benchmarks: ratchetpy vs raw Autobahn vs ``websockets``, in one run.

    (cd bench && npm install)          # the load client, npm ws
    python bench/run.py [--rounds 3] [--duration 5] [--only echo32,broadcast,...]
        [--variants ratchetpy,autobahn,websockets,ratchetpy-stock] [--json out.json]

Each benchmark runs every server variant in turn, alternating, ``--rounds``
times; the server is pinned to CPU 0 (``taskset -c 0``) and the Node client
to CPU 1. Server CPU time comes from /proc/<pid>/stat (utime+stime) over the
client's measured window. Figures are medians over the rounds of this run;
ratios compare variants within the same run.

Benchmarks: ``echo32`` (100 connections, 32 B text, one in flight each),
``echo16k`` (100 connections, 16 KiB text), ``broadcast`` (1,000
subscribers, one 32 B binary message at a time to all), ``handshake``
(50 concurrent open/close loops), ``idle`` (RSS per idle connection with
10,000 connections). Loopback only; each variant runs for ``--duration``
seconds plus a one-second warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

BENCHMARKS = {
    "echo32": ["--mode", "echo", "-c", "100", "-s", "32"],
    "echo16k": ["--mode", "echo", "-c", "100", "-s", "16384"],
    "broadcast": ["--mode", "broadcast", "-c", "1000", "-s", "32"],
    "handshake": ["--mode", "handshake", "-c", "50"],
    "idle": ["--mode", "idle", "-c", "10000"],
}
VARIANTS = {
    "ratchetpy": ["ratchetpy"],
    "ratchetpy-stock": ["ratchetpy", "--no-fastpath"],
    "autobahn": ["autobahn"],
    "websockets": ["websockets"],
}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def start_server(variant: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, os.path.join(HERE, "servers.py"), *VARIANTS[variant]],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{variant} server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def client(port: int, bench: str, duration: float) -> subprocess.Popen:
    return subprocess.Popen(
        ["taskset", "-c", "1", "node", os.path.join(HERE, "load_ws.js"),
         "--url", f"ws://127.0.0.1:{port}/", "-d", str(duration), *BENCHMARKS[bench]],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )


def run_load(variant: str, bench: str, duration: float) -> dict:
    server, port = start_server(variant)
    try:
        time.sleep(0.3)
        load = client(port, bench, duration)
        cpu0 = None
        result = None
        for line in load.stdout:
            if line.startswith("MEASURE"):
                cpu0 = cpu_seconds(server.pid)
            elif line.startswith("RESULT"):
                cpu1 = cpu_seconds(server.pid)
                result = json.loads(line.split(" ", 1)[1])
                break
        load.wait(30)
        if result is None or cpu0 is None:
            raise RuntimeError(f"{variant}/{bench}: client gave no result")
        count = max(result["count"], 1)
        return {
            "rate": result["rate"],
            "us_per_msg": (cpu1 - cpu0) / count * 1e6,
            "server_cpu": (cpu1 - cpu0) / result["secs"],
        }
    finally:
        stop(server)


def run_idle(variant: str, n: int = 10000) -> dict:
    server, port = start_server(variant)
    try:
        time.sleep(0.3)
        # warm up code paths (imports, first handshake) before the baseline
        warm = client(port, "echo32", 0.5)
        warm.communicate(timeout=30)
        time.sleep(0.5)
        base = rss_bytes(server.pid)
        load = client(port, "idle", 1)
        for line in load.stdout:
            if line.startswith("OPEN"):
                break
        time.sleep(1.5)
        after = rss_bytes(server.pid)
        load.stdin.close()
        load.wait(30)
        return {"kib_per_conn": (after - base) / n / 1024, "rss_mib": after / 2**20}
    finally:
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--only", default="echo32,echo16k,broadcast,handshake,idle")
    parser.add_argument("--variants", default="ratchetpy,autobahn,websockets")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        print("run `npm install` in bench/ first (the load client needs npm ws)")
        return 2
    variants = args.variants.split(",")
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": {}}
    for bench in args.only.split(","):
        samples: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                if bench == "idle":
                    samples[variant].append(run_idle(variant))
                else:
                    samples[variant].append(run_load(variant, bench, args.duration))
        medians = {
            v: {k: statistics.median(s[k] for s in runs) for k in runs[0]}
            for v, runs in samples.items()
        }
        report["results"][bench] = {"median": medians, "samples": samples}
        print(f"\n== {bench} (median of {args.rounds})")
        base = medians.get("autobahn")
        for v, m in medians.items():
            if bench == "idle":
                print(f"  {v:16s} {m['kib_per_conn']:7.2f} KiB/conn  (RSS {m['rss_mib']:.0f} MiB)")
                continue
            ratio = f"  {m['rate'] / base['rate']:.2f}x autobahn" if base else ""
            unit = "delivery" if bench == "broadcast" else "handshake" if bench == "handshake" else "msg"
            print(
                f"  {v:16s} {m['rate']:9.0f}/s  {m['us_per_msg']:6.2f} server CPU us/{unit}"
                f"  (server CPU {m['server_cpu'] * 100:.0f}%){ratio}"
            )
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
