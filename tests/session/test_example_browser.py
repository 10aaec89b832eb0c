"""
examples/sessions in a real browser: headless Chromium logs in on the PHP
page (``php -S`` on one port), and the page's own WebSocket to the
ratchetpy server (another port) carries the PHP session cookie and is
greeted by name: the cookie and Origin as a browser really sends them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from twisted.internet import defer, threads

from examples.sessions.server import build
from tests.integration.test_demo_browser import CHROMIUM, chromium
from tests.session import test_example
from tests.session.tempdirs import TempDirCase
from tests.support.ci import require_tool
from tests.support.loopback import start_app

pytestmark = pytest.mark.slow

LOG = "document.getElementById('log').textContent"


class BrowserSessionTests(TempDirCase):
    timeout = 90
    start_php = test_example.SessionsExampleTests.start_php

    @defer.inlineCallbacks
    def test_a_browser_logs_in_and_is_greeted(self):
        require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
        from twisted.internet import reactor

        directory = self.temp_dir()
        ws_port = start_app(self, build(0, reactor, ["localhost"], directory))
        php_port = self.start_php(directory, f"ws://localhost:{ws_port}/sessDemo")
        profile = Path(self.temp_dir())

        def browse() -> tuple[str, str]:
            with chromium(profile) as tools:
                target = tools.call("Target.createTarget", url=f"http://localhost:{php_port}/")["targetId"]
                page = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
                before = tools.wait_for(page, f"{LOG}.indexOf('server: ') !== -1 && {LOG}", "the anonymous greeting")
                tools.evaluate(
                    page,
                    "document.querySelector('input[name=name]').value = " + json.dumps("Zoë")
                    + "; document.querySelector('form').submit(); true",
                )
                after = tools.wait_for(page, f"{LOG}.indexOf('Hello Zoë') !== -1 && {LOG}", "the greeting by name")
                return before, after

        before, after = yield threads.deferToThread(browse)
        self.assertIn("server: Hello stranger", before)
        self.assertIn("server: Hello Zoë", after)
