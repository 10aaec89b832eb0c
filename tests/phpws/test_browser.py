"""
A page in headless Chromium (examples/phpws/page.html, which queues its
messages until ``next`` as phpWebSocketServer's socketWebClient.js does)
against ``twistd ratchetpy``'s phpws mode, reached by a PHP backend
script that knows nothing but the page's uuid.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading

import pytest

from tests.integration.test_demo_browser import CHROMIUM, chromium
from tests.phpws.support import serve_phpws
from tests.support.ci import require_tool
from tests.support.paths import ROOT
from tests.support.php import PHP, require_php
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "phpws"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_page_queues_until_next_and_gets_feedback_from_a_php_backend_by_uuid(tmp_path):
    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    require_php()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(EXAMPLES)))
    threading.Thread(target=web.serve_forever, daemon=True).start()
    servers = serve_phpws(tmp_path)
    server = next(servers)
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}/page.html?ws=ws://127.0.0.1:{server.port}/web"
        with chromium(tmp_path) as tools:
            pages = []
            for _ in range(2):
                target = tools.call("Target.createTarget", url=url)["targetId"]
                pages.append(tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
            page, other = pages
            uuid = tools.wait_for(page, "phpws.uuid", "the page's uuid from ready")
            tools.wait_for(other, "phpws.uuid", "the other page's uuid")

            # five messages queued at once go out one per next
            tools.evaluate(page, "['q1','q2','q3','q4','q5'].forEach(function (m) { phpws.echo(m); }); 1")
            tools.wait_for(page, "phpws.received.length === 5", "the five echoes")
            events = tools.evaluate(page, "phpws.events")
            assert events == [e for m in ("q1", "q2", "q3", "q4", "q5") for e in (f"send {m}", f"got echo {m}", "next")]

            # a PHP script reaches exactly this page, knowing only its uuid
            done = subprocess.run(
                [PHP, str(EXAMPLES / "backend.php"), f"ws://127.0.0.1:{server.port}/php", uuid, "3"],
                capture_output=True, timeout=seconds(30),
            )
            assert done.returncode == 0, done.stderr
            tools.wait_for(page, "phpws.received.length === 8", "the backend's three updates")
            got = tools.evaluate(page, "phpws.received.slice(5).map(function (p) { return p.message; })")
            assert got == ["step 1 of 3 done", "step 2 of 3 done", "step 3 of 3 done"]
            assert tools.evaluate(other, "phpws.received.length") == 0

            # a broadcast from one page reaches the other, not itself
            tools.evaluate(other, "phpws.broadcast('hello pages'); 1")
            tools.wait_for(page, "phpws.received.length === 9", "the broadcast")
            assert tools.evaluate(page, "phpws.received[8].message") == "hello pages"
            assert tools.evaluate(other, "phpws.received.length") == 0
    finally:
        servers.close()
        web.shutdown()
        web.server_close()
