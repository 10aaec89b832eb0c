"""
examples/sessions: the PHP login page (run by ``php -S``) writes the
session, the ported tutorial server greets the user by name, as a browser
would see it: the cookie PHP set, the page's Origin, over loopback.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

from twisted.internet import defer, threads
from websockets.sync.client import connect

from examples.sessions.server import build
from tests.session.tempdirs import TempDirCase
from tests.support.loopback import start_app
from tests.support.php import PHP, require_php
from tests.support.processes import free_port
from tests.support.timing import seconds

LOGIN = Path(__file__).resolve().parents[2] / "examples" / "sessions" / "login.php"


class SessionsExampleTests(TempDirCase):
    timeout = 60

    def start_php(self, directory: str, ws_url: str = "ws://localhost:8080/sessDemo") -> int:
        """``php -S`` serving login.php on a free port, its sessions in ``directory``; the port."""
        require_php("session")
        port = free_port()
        env = dict(os.environ, SESSION_DIR=directory, WS_URL=ws_url)
        process = subprocess.Popen(
            [str(PHP), "-S", f"127.0.0.1:{port}", str(LOGIN)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(process.wait, seconds(10))
        self.addCleanup(process.kill)
        deadline = time.monotonic() + seconds(10)
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                return port
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("php -S did not start") from None
                time.sleep(0.05)

    @defer.inlineCallbacks
    def test_logged_in_on_the_php_page_greeted_by_the_websocket(self):
        from twisted.internet import reactor

        directory = self.temp_dir()
        php_port = self.start_php(directory)
        ws_port = start_app(self, build(0, reactor, ["localhost"], directory))

        def browse() -> tuple[str, str, str]:
            site = http.client.HTTPConnection("127.0.0.1", php_port, timeout=seconds(10))
            site.request(
                "POST", "/", urllib.parse.urlencode({"name": "Zoë"}),
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            answer = site.getresponse()
            answer.read()
            assert answer.status == 303, answer.status
            cookie = SimpleCookie(answer.getheader("Set-Cookie"))["PHPSESSID"].value
            site.request("GET", "/", headers={"Cookie": f"PHPSESSID={cookie}"})
            page = site.getresponse().read().decode()
            assert "Logged in as: <b>Zoë</b>" in page
            url = f"ws://127.0.0.1:{ws_port}/sessDemo"
            with connect(
                url, origin="http://localhost:8000", additional_headers={"Cookie": f"PHPSESSID={cookie}"},
                open_timeout=seconds(10),
            ) as ws:
                logged_in = ws.recv(timeout=seconds(10))
            with connect(url, origin="http://localhost:8000", open_timeout=seconds(10)) as ws:
                anonymous = ws.recv(timeout=seconds(10))
            return cookie, logged_in, anonymous

        cookie, logged_in, anonymous = yield threads.deferToThread(browse)
        self.assertEqual(logged_in, "Hello Zoë")
        self.assertEqual(anonymous, "Hello stranger")
        self.assertTrue(os.path.exists(os.path.join(directory, f"sess_{cookie}")))
