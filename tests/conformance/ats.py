"""
Run the Autobahn TestSuite (RFC 6455 conformance) against ratchetpy's echo.

    python tests/conformance/ats.py                 # core: all but 12.*, 13.* (~20-60 s)
    python tests/conformance/ats.py --compression   # 12.*, 13.* with deflate on (~10 min)
    python tests/conformance/ats.py --no-fastpath   # the stock Autobahn path

Needs ``tests/conformance/setup_ats.sh`` (wstest in a Python 2.7 venv).
Starts ``bench/servers.py ratchetpy`` on a free port, runs ``wstest -m
fuzzingclient``, reads the JSON report and exits 1 unless every case is
OK or INFORMATIONAL (NON-STRICT, UNIMPLEMENTED and FAILED all count as
failures). Reports go to ``tests/conformance/reports/``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WSTEST = os.path.join(HERE, ".ats-venv", "bin", "wstest")
GOOD = ("OK", "INFORMATIONAL")


def wstest_path() -> str | None:
    """The installed wstest, or None (run setup_ats.sh)."""
    return WSTEST if os.access(WSTEST, os.X_OK) else None


def start_server(extra: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bench", "servers.py"), "ratchetpy", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"echo server did not start: {line!r}")
    return proc, int(line.split()[1])


def run(compression: bool = False, fastpath: bool = True, cases: list[str] | None = None,
        outdir: str | None = None) -> dict[str, int]:
    """Run the suite; return the count of each result ("OK": n, ...) over all cases."""
    wstest = wstest_path()
    if wstest is None:
        raise RuntimeError("wstest not installed: run tests/conformance/setup_ats.sh")
    extra = []
    if compression:
        extra.append("--compression")
    if not fastpath:
        extra.append("--no-fastpath")
    # The suite sends messages up to 16 MiB (cases 9.*); allow them.
    extra += ["--max-message-size", str(64 * 1024 * 1024)]
    proc, port = start_server(extra)
    work = tempfile.mkdtemp(prefix="ats-")
    outdir = outdir or os.path.join(work, "reports")
    try:
        spec = {
            "outdir": outdir,
            "servers": [{"agent": "ratchetpy", "url": f"ws://127.0.0.1:{port}"}],
            "cases": cases or (["12.*", "13.*"] if compression else ["*"]),
            "exclude-cases": [] if compression else ["12.*", "13.*"],
            "exclude-agent-cases": {},
        }
        spec_path = os.path.join(work, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        subprocess.run(
            [wstest, "-m", "fuzzingclient", "-s", spec_path],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(os.path.join(outdir, "index.json")) as f:
            index = json.load(f)
    finally:
        proc.terminate()
        proc.wait(10)
        if outdir.startswith(work):
            shutil.rmtree(work, ignore_errors=True)
    results = index["ratchetpy"]
    counts: dict[str, int] = collections.Counter()
    bad = []
    for case, result in sorted(results.items()):
        for key in ("behavior", "behaviorClose"):
            if result[key] not in GOOD:
                bad.append((case, key, result[key]))
        counts[result["behavior"]] += 1
    counts["_cases"] = len(results)
    counts["_bad"] = len(bad)
    run.last_bad = bad  # type: ignore[attr-defined]
    return dict(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compression", action="store_true", help="run 12.* and 13.* with deflate")
    parser.add_argument("--no-fastpath", action="store_true")
    parser.add_argument("--cases", nargs="*")
    parser.add_argument("--outdir", default=os.path.join(HERE, "reports"))
    args = parser.parse_args()
    counts = run(args.compression, not args.no_fastpath, args.cases, os.path.abspath(args.outdir))
    print(json.dumps(counts, sort_keys=True))
    for case, key, value in run.last_bad:  # type: ignore[attr-defined]
        print(f"{case}: {key} = {value}")
    return 1 if counts["_bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
