"""
Replay every WAMP row of PHP Ratchet's recorded wire transcript
(``tests/data/ratchet_wamp_frames.txt``, the WAMP section of
``ratchet-wire/frames.txt``) against ratchetpy over real loopback sockets,
with an independent client (``websockets``), and compare what comes back.

Messages are compared byte for byte (session ids substituted), except the
rows listed in ``DEVIATIONS``, where ratchetpy differs from PHP on purpose.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from twisted.internet import threads
from twisted.trial import unittest

from ratchetpy.wamp import WampServer
from tests.support.paths import DATA
from tests.support.wamp import LoopbackMixin, WampEcho
from tests.support.wamp_client import WampClient

TRANSCRIPT = DATA / "ratchet_wamp_frames.txt"

T = "http://example.com/simple"

# The transcript's PUBLISH rows name what was sent instead of recording it.
PUBLISH_SENT: dict[str, Any] = {
    "PUBLISH [7,T,'Hello, world!'] from A": [7, T, "Hello, world!"],
    "PUBLISH excludeMe=true from A": [7, T, {"x": 1}, True],
    "PUBLISH exclude=[sid_b]": [7, T, "ex", ["<sid_b>"]],
    "PUBLISH exclude=[] eligible=[sid_b]": [7, T, "el", [], ["<sid_b>"]],
    "PUBLISH excludeMe=false": [7, T, "f", False],
    "PUBLISH null event": [7, T, None],
    "PUBLISH to topic with no subscribers": [7, "http://example.com/nobody", "x"],
    "PUBLISH to calc:topic": [7, "calc:topic", "via-curie"],
    "PUBLISH after B unsub": [7, T, "after-unsub"],
}

# The handler-throws rows' messages are truncated in the transcript.
THROW_SENT = {
    "WAMP CALL -> handler throws \\Exception": [2, "t1", T + "/calc#throw"],
    "WAMP CALL -> handler throws Ratchet\\Wamp\\Exception": [2, "t2", T + "/calc#wamp-exception"],
}

# Where ratchetpy answers differently from PHP on purpose (see README, WAMP).
DEVIATIONS: dict[str, Any] = {
    # PHP prints 1.0 as 1 and {} as []; ratchetpy keeps the client's values.
    "CALL misc args (slashes, unicode, floats, {})": ['[3,"c8",["x\\/y","\\u00fc",1.5,1.0,true,{}]]'],
    # PHP's bare close() on a WAMP connection sends the invalid code 0;
    # ratchetpy sends 1000 (WampServer(default_close_code=0) restores 0).
    "WAMP CALL -> handler throws \\Exception": 1000,
}

_SEND_ROW = re.compile(r"^(?P<label>.+?)  SEND (?P<send>.+?)  RECV: (?P<recv>\[.*\])$")
_PUBLISH_ROW = re.compile(r"^(?P<label>PUBLISH.*?) -> A(?: receives)?(?: \([^)]*\))?: (?P<frames>\[.*\])$")
_B_ROW = re.compile(r"^\s+-> B(?: receives)?: (?P<frames>\[.*\])$")
_BINARY_ROW = re.compile(r"^CALL sent in a BINARY frame -> A: (?P<frames>\[.*\])$")
_MALFORMED_ROW = re.compile(r"^(?P<label>WAMP .*?) \((?P<bytes>b'.*')\) ->: (?P<frames>\[.*\])$")
_SID = re.compile(r"^[0-9a-f]{30,32}$")


def parse_transcript() -> list[dict[str, Any]]:
    """The transcript's rows, in order, as dicts with a ``kind``."""
    rows: list[dict[str, Any]] = []
    for line in TRANSCRIPT.read_text().splitlines()[1:]:
        if not line.strip() or line.startswith("server TCP close:"):
            continue
        if line.startswith("handshake response: "):
            rows.append({"kind": "handshake", "raw": json.loads(line.split(": ", 1)[1])})
        elif line.startswith("WELCOME frame: "):
            rows.append({"kind": "welcome", "frames": json.loads(line.split(": ", 1)[1])})
        elif line.startswith("session ids: "):
            rows.append({"kind": "session_ids", "ids": json.loads(line.split(": ", 1)[1])})
        elif m := _SEND_ROW.match(line):
            rows.append({"kind": "send", "label": m["label"], "send": json.loads(m["send"]),
                         "recv": json.loads(m["recv"])})
        elif m := _PUBLISH_ROW.match(line):
            rows.append({"kind": "publish", "label": m["label"],
                         "a": [f["text"] for f in json.loads(m["frames"])], "b": None})
        elif m := _B_ROW.match(line):
            rows[-1]["b"] = [f["text"] for f in json.loads(m["frames"])]
        elif m := _BINARY_ROW.match(line):
            rows.append({"kind": "binary", "a": [f["text"] for f in json.loads(m["frames"])]})
        elif m := _MALFORMED_ROW.match(line):
            frames = json.loads(m["frames"])
            rows.append({"kind": "malformed", "label": m["label"],
                         "bytes": ast.literal_eval(m["bytes"]),
                         "code": frames[0]["close_code"], "reason": frames[0]["close_reason"]})
        else:
            raise AssertionError(f"transcript row not understood: {line[:100]!r}")
    return rows


def replay(url: str, rows: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Run every row against ``url``; return (label, expected, got) triples."""
    results: list[tuple[str, Any, Any]] = []
    a, b = WampClient(url), WampClient(url)
    subs = {"<sid_b>": b.session_id}
    try:
        for row in rows:
            kind = row["kind"]
            if kind == "handshake":
                results.append(("handshake subprotocol", "wamp", a.ws.subprotocol))
                results.append(("handshake subprotocol B", "wamp", b.ws.subprotocol))
            elif kind == "welcome":
                expected = row["frames"][0]["text"]
                php_sid = json.loads(expected)[1]
                results.append(("WELCOME", expected, a.welcome_raw.replace(a.session_id, php_sid)))
            elif kind == "session_ids":
                for sid in row["ids"].values():
                    assert _SID.match(sid), sid  # the transcript's own ids fit the pattern
                results.append(("session ids are 30-32 hex", True,
                                all(_SID.match(s) for s in (a.session_id, b.session_id))))
                results.append(("session ids differ", True, a.session_id != b.session_id))
            elif kind == "send":
                client = b if row["label"].startswith("B ") else a
                got = client.exchange(row["send"])
                expected = DEVIATIONS.get(row["label"], row["recv"])
                results.append((row["label"], expected, got))
            elif kind == "publish":
                label = row["label"]
                sent = json.loads(json.dumps(PUBLISH_SENT[label]), object_hook=None)
                sent = json.loads(json.dumps(sent).replace('"<sid_b>"', json.dumps(subs["<sid_b>"])))
                got_a = a.exchange(sent)
                results.append((label + " -> A", row["a"], got_a))
                if row["b"] is not None:
                    results.append((label + " -> B", row["b"], b.barrier()))
            elif kind == "binary":
                got = a.exchange([2, "bin1", T + "/calc#add", 1], binary=True)
                results.append(("CALL in a binary frame", row["a"], got))
            elif kind == "malformed":
                label = row["label"]
                with WampClient(url) as c:
                    c.send(json.dumps(THROW_SENT[label]) if label in THROW_SENT else row["bytes"].decode())
                    code, reason = c.expect_close()
                results.append((label, (DEVIATIONS.get(label, row["code"]), row["reason"]),
                                (code, reason)))
    finally:
        a.close()
        b.close()
    return results


class TranscriptTests(LoopbackMixin, unittest.TestCase):
    timeout = 30

    def test_transcript_is_complete(self) -> None:
        """The parser finds every kind of row the transcript records."""
        rows = parse_transcript()
        kinds = [r["kind"] for r in rows]
        self.assertEqual(kinds.count("send"), 25)
        self.assertEqual(kinds.count("publish"), 9)
        self.assertEqual(kinds.count("malformed"), 10)
        self.assertEqual(set(PUBLISH_SENT), {r["label"] for r in rows if r["kind"] == "publish"})

    async def test_replay(self) -> None:
        """Every WAMP row of PHP Ratchet's transcript gets the same answer from ratchetpy."""
        app = WampEcho()
        url = await self.serve(WampServer(app))
        rows = parse_transcript()
        results = await threads.deferToThread(replay, url + "/wamp", rows)
        mismatches = [(label, exp, got) for label, exp, got in results if exp != got]
        self.assertEqual(mismatches, [])
        self.assertGreaterEqual(len(results), 45)
