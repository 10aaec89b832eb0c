"""
The fallback to Autobahn's stock path is real.

``tests/support/stock_fallback_probe.py`` renames, before ratchetpy is imported, the
private Autobahn names the fast path, the memory trimming and the
hostile-peer defences rely on (as an Autobahn release might), and watches
every read of a private Autobahn attribute by ratchetpy code. A real server
must still echo, broadcast and close over loopback with the ``websockets``
client, on the stock protocol class, after one RuntimeWarning, and no
ratchetpy code but the self-check itself may touch a private name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_renamed_private_names_leave_a_working_stock_path() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "stock_fallback_probe.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "client_error" not in result, result
    assert result["text"] == "hello"
    assert result["broadcast"] == "to all"
    assert result["binary"] == [0, 1]
    assert result["close"] == [4001, "done"]
    assert result["server_close"] == [4001, "done"]
    assert result["errors"] == []
    assert result["fast_class"] is False
    assert len(result["warnings"]) == 1
    assert "fast data path disabled" in result["warnings"][0]
    assert "_dataReceived" in result["warnings"][0]
    data_path = [v for v in result["violations"] if not v.startswith("ratchetpy.websocket._selfcheck ")]
    assert data_path == []
