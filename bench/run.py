"""
ratchetpy's benchmarks: ratchetpy vs raw Autobahn, ``websockets`` and picows, in one run.

    (cd bench && npm install)          # the load client, npm ws
    pip install picows==2.3.1          # for the picows variant
    python bench/run.py [--rounds 3] [--duration 5] [--only echo32,broadcast,...]
        [--variants ratchetpy,autobahn,websockets,picows,ratchetpy-stock,ratchetpy-metrics]
        [--tree PATH] [--base REF] [--json out.json]

``--tree`` is the ratchetpy source tree the ``ratchetpy`` variants import
(``PYTHONPATH`` = PATH; default: the repository holding this file).
``--base REF`` (e.g. ``--base e5681f6``) also runs variant ``ratchetpy@REF``:
``git archive REF`` of the tree's repository unpacked into a temporary
directory (removed at the end, also on error), same ``servers.py``, only the
library differs. If the tree has a built C helper (``_speedups*.so``), the
baseline gets one too: the same file when ``_speedups.c`` is identical,
otherwise built with ``setup.py build_ext --inplace``. ``ratchetpy@REF`` runs
right after ``ratchetpy`` in every round, and a ``ratchetpy vs
ratchetpy@REF`` line gives the change's effect measured within the run, e.g.
``python bench/run.py --only echo32 --base e5681f6`` prints per benchmark::

    ratchetpy            rate/us vs autobahn 3.41x/0.29x  websockets ...  picows ...
    ratchetpy vs ratchetpy@e5681f6: rate 1.01x (+1.0 %; rounds 1.02/0.99/1.01), us/msg ...

(``rate/us``: ratchetpy's rate / the other's, and its server CPU µs per
message / the other's; ``rounds``: the same ratio within each round.)

Each benchmark runs every server variant in turn, alternating, ``--rounds``
times; the server is pinned to CPU 0 (``taskset -c 0``) and the Node client
to CPU 1. Server CPU time comes from /proc/<pid>/stat (utime+stime) over the
client's measured window. Figures are medians over the rounds of this run;
ratios compare variants within the same run: each ratchetpy variant against
each of autobahn, websockets and picows (rate ratio, higher is better, and
server CPU µs per message ratio, lower is better).

Variant ``ratchetpy-metrics`` is ``ratchetpy`` serving Prometheus metrics
too (``servers.py --metrics``: a second loopback port in the same process),
scraped every second from this process while the load runs; a
``ratchetpy-metrics vs ratchetpy`` line gives the cost of metrics within the
run, e.g. ``python bench/run.py --only echo32 --variants
ratchetpy,ratchetpy-metrics``.

Benchmarks: ``echo32`` (100 connections, 32 B text, one in flight each),
``echo16k`` (100 connections, 16 KiB text), ``broadcast`` (1,000
subscribers, one 32 B binary message at a time to all), ``handshake``
(50 concurrent open/close loops), ``idle`` (RSS per idle connection with
10,000 connections). Loopback only; each variant runs for ``--duration``
seconds plus a one-second warm-up.
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

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
    "ratchetpy-metrics": ["ratchetpy", "--metrics"],
    "autobahn": ["autobahn"],
    "websockets": ["websockets"],
    "picows": ["picows"],
}
REFERENCES = ("autobahn", "websockets", "picows")
SPEEDUPS = os.path.join("ratchetpy", "websocket", "_speedups")
# variant -> directory put first on PYTHONPATH (the ratchetpy it imports)
TREES: dict[str, str] = {}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def server_env(variant: str) -> dict[str, str]:
    env = dict(os.environ)
    tree = TREES.get(variant, TREES.get("ratchetpy", os.path.dirname(HERE)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH")) if p)
    return env


SCRAPE_INTERVAL = 1.0
"""Seconds between metrics scrapes of the ``ratchetpy-metrics`` variant."""


def start_server(variant: str) -> tuple[subprocess.Popen, int, int | None]:
    """Start a server; its process, port and metrics port (``None`` without metrics)."""
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, os.path.join(HERE, "servers.py"), *VARIANTS[variant]],
        stdout=subprocess.PIPE,
        text=True,
        env=server_env(variant),
    )
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{variant} server did not start: {line!r}")
    words = line.split()
    metrics = int(words[3]) if len(words) > 3 and words[2] == "METRICS" else None
    return proc, int(words[1]), metrics


class Scraper(threading.Thread):
    """Scrapes ``http://127.0.0.1:PORT/metrics`` every ``SCRAPE_INTERVAL`` until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stopped = threading.Event()
        self.scrapes = 0
        self.failures = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    body = response.read()
                if b"ratchetpy_messages_received_total" not in body:
                    raise ValueError("no ratchetpy series in the scrape")
                self.scrapes += 1
            except (OSError, ValueError):
                self.failures += 1
            self.stopped.wait(SCRAPE_INTERVAL)

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


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
    server, port, metrics_port = start_server(variant)
    load = None
    scraper = Scraper(metrics_port) if metrics_port is not None else None
    try:
        time.sleep(0.3)
        load = client(port, bench, duration)
        if scraper is not None:
            scraper.start()
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
        figures = {
            "rate": result["rate"],
            "us_per_msg": (cpu1 - cpu0) / count * 1e6,
            "server_cpu": (cpu1 - cpu0) / result["secs"],
        }
        if scraper is not None:
            scraper.stop()
            if scraper.failures or not scraper.scrapes:
                raise RuntimeError(
                    f"{variant}/{bench}: {scraper.failures} of "
                    f"{scraper.scrapes + scraper.failures} metrics scrapes failed"
                )
            figures["scrapes"] = scraper.scrapes
        return figures
    finally:
        if scraper is not None and scraper.is_alive():
            scraper.stop()
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        stop(server)


def run_idle(variant: str, n: int = 10000) -> dict:
    server, port, _ = start_server(variant)
    warm = load = None
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
        for proc in (warm, load):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        stop(server)


def git(tree: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", tree, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def prepare_base(tree: str, ref: str, tmp: str) -> str:
    """Unpack ``ref`` of ``tree``'s repository into ``tmp``/src; give it a C
    helper if ``tree`` has one built. Returns the directory."""
    src = os.path.join(tmp, "src")
    os.mkdir(src)
    archive = subprocess.Popen(["git", "-C", tree, "archive", ref], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait():
        raise RuntimeError(f"git archive {ref} failed")
    built = sorted(glob.glob(os.path.join(tree, SPEEDUPS + "*.so")))
    if not built:
        return src  # the tree runs without the C helper: so does the base
    c_tree, c_base = os.path.join(tree, SPEEDUPS + ".c"), os.path.join(src, SPEEDUPS + ".c")
    if not os.path.exists(c_base):
        print(f"  note: {ref} has no _speedups.c; it runs without the C helper", flush=True)
    elif os.path.exists(c_tree) and filecmp.cmp(c_tree, c_base, shallow=False):
        for so in built:
            shutil.copy2(so, os.path.join(src, SPEEDUPS + so.rsplit(SPEEDUPS, 1)[1]))
    else:
        build = subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=src, capture_output=True, text=True, check=False,
        )
        if build.returncode or not glob.glob(os.path.join(src, SPEEDUPS + "*.so")):
            raise RuntimeError(f"building {ref}'s C helper failed:\n{build.stderr[-2000:]}")
    return src


def describe(variant: str) -> str:
    """Which ratchetpy the variant imports, and whether its C helper loads."""
    probe = (
        "import os, ratchetpy\n"
        "try:\n    import ratchetpy.websocket._speedups; c = 'yes'\n"
        "except ImportError:\n    c = 'no'\n"
        "print(os.path.dirname(os.path.dirname(ratchetpy.__file__)), c)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=server_env(variant), capture_output=True,
        text=True, check=True, cwd="/",
    ).stdout.split()
    return f"{out[0]} (C helper: {out[1]})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_pair(a: str, b: str, bench: str, unit: str, medians: dict, samples: dict) -> None:
    """One line: variant ``a`` against ``b``, medians and the ratio within each round."""
    cur, old = medians[a], medians[b]
    if bench == "idle":
        keys = [("KiB/conn", "kib_per_conn")]
    else:
        keys = [("rate", "rate"), (f"us/{unit}", "us_per_msg")]
    parts = []
    for label, key in keys:
        per_round = "/".join(
            f"{x[key] / y[key]:.2f}" if y[key] else "-"
            for x, y in zip(samples[a], samples[b], strict=True)
        )
        change = (cur[key] / old[key] - 1) * 100 if old[key] else float("nan")
        parts.append(f"{label} {ratio(cur[key], old[key])} ({change:+.1f} %; rounds {per_round})")
    print(f"  {a} vs {b}: " + ", ".join(parts))


def print_bench(bench: str, rounds: int, medians: dict, samples: dict, base: str | None) -> None:
    print(f"\n== {bench} (median of {rounds})")
    unit = "delivery" if bench == "broadcast" else "handshake" if bench == "handshake" else "msg"
    for v, m in medians.items():
        if bench == "idle":
            print(f"  {v:20s} {m['kib_per_conn']:7.2f} KiB/conn  (RSS {m['rss_mib']:.0f} MiB)")
        else:
            scrapes = f", {m['scrapes']:.0f} scrapes" if "scrapes" in m else ""
            print(
                f"  {v:20s} {m['rate']:9.0f}/s  {m['us_per_msg']:7.2f} server CPU us/{unit}"
                f"  (server CPU {m['server_cpu'] * 100:.0f}%{scrapes})"
            )
    refs = [r for r in REFERENCES if r in medians]
    for v, m in medians.items():
        if not v.startswith("ratchetpy") or not refs:
            continue
        if bench == "idle":
            parts = [f"{r} {ratio(m['kib_per_conn'], medians[r]['kib_per_conn'])}" for r in refs]
            print(f"  {v:20s} KiB/conn vs " + "  ".join(parts))
        else:
            parts = [
                f"{r} {ratio(m['rate'], medians[r]['rate'])}/"
                f"{ratio(m['us_per_msg'], medians[r]['us_per_msg'])}"
                for r in refs
            ]
            print(f"  {v:20s} rate/us vs " + "  ".join(parts))
    for other in (base, "ratchetpy-metrics"):
        if other and "ratchetpy" in medians and other in medians:
            if other == base:
                print_pair("ratchetpy", base, bench, unit, medians, samples)
            else:
                print_pair(other, "ratchetpy", bench, unit, medians, samples)
    if base and base in medians and "ratchetpy-metrics" in medians:
        print_pair("ratchetpy-metrics", base, bench, unit, medians, samples)
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--only", default="echo32,echo16k,broadcast,handshake,idle")
    parser.add_argument("--variants", default="ratchetpy,autobahn,websockets,picows")
    parser.add_argument(
        "--tree", default=os.path.dirname(HERE),
        help="ratchetpy source tree to benchmark (default: the repository holding run.py)",
    )
    parser.add_argument("--base", metavar="REF", help="also run ratchetpy from git REF of --tree")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        print("run `npm install` in bench/ first (the load client needs npm ws)")
        return 2
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    tree = os.path.abspath(args.tree)
    for v in ("ratchetpy", "ratchetpy-stock", "ratchetpy-metrics"):
        TREES[v] = tree
    # a SIGTERM unwinds like Ctrl-C, so the servers stop and the base checkout goes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = None
    try:
        base = None
        report: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "tree": tree, "results": {}}
        try:
            report["commit"] = git(tree, "rev-parse", "--short", "HEAD")
            report["dirty"] = bool(git(tree, "status", "--porcelain", "--untracked-files=no"))
        except (subprocess.CalledProcessError, OSError):
            pass
        if args.base:
            base = f"ratchetpy@{args.base}"
            try:
                base_commit = git(tree, "rev-parse", "--short", args.base + "^{commit}")
            except subprocess.CalledProcessError:
                parser.error(f"--base {args.base}: not a commit in {tree}")
            tmp = tempfile.mkdtemp(prefix="ratchetpy-base-")
            TREES[base] = prepare_base(tree, args.base, tmp)
            VARIANTS[base] = VARIANTS["ratchetpy"]
            report["base"] = {"ref": args.base, "commit": base_commit}
            # right after ratchetpy in each round, so the pair sees the same load
            at = variants.index("ratchetpy") + 1 if "ratchetpy" in variants else len(variants)
            variants.insert(at, base)
        head = f"{report.get('commit', '?')}{' +changes' if report.get('dirty') else ''}"
        for v in variants:
            if v.startswith("ratchetpy"):
                rev = head if v != base else report["base"]["commit"]
                print(f"{v}: {describe(v)} at {rev}")
        print(f"{len(variants)} variants x {args.rounds} rounds, {args.duration:g} s each; "
              "ratios are ratchetpy/other: rate (higher is better) / server CPU us (lower is better)")
        sys.stdout.flush()
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
            print_bench(bench, args.rounds, medians, samples, base)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
        return 0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
