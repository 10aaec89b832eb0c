"""
phpWebSocketServer-style PHP clients (php-cli) against ``twistd ratchetpy``'s
phpws mode: a client written here that reads the 101 with one
``fread($sock, 1024)`` and one frame per read, as phpWebSocketServer's
does, and the PHP examples in examples/phpws/.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.phpws.support import serve_phpws
from tests.support.paths import ROOT
from tests.support.php import PHP, require_php, run_php
from tests.support.processes import Twistd
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "phpws"

# The client of these tests: phpWebSocketServer's habits, none of its code.
CLIENT = r"""<?php
function ws_connect($port, $ident, $lateMicros = 0) {
    $sock = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    if (!$sock) { fwrite(STDERR, "connect: $errstr\n"); exit(2); }
    $key = base64_encode(random_bytes(16));
    fwrite($sock, "GET /php HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: $key\r\nOrigin: http://127.0.0.1\r\nSec-WebSocket-Version: 13\r\n"
        . "Client-Type: php\r\nIdent: $ident\r\nallowRemote: ''\r\n\r\n");
    if ($lateMicros) { usleep($lateMicros); }
    $response = fread($sock, 1024);  // the 101: whatever else this read holds is thrown away
    if (strpos($response, ' 101 ') === false) { fwrite(STDERR, "no 101: $response\n"); exit(3); }
    stream_set_timeout($sock, 2);
    return $sock;
}
function ws_read($sock) {  // one frame per read: a second frame in the same read is lost
    $data = fread($sock, 8192);
    if ($data === false || strlen($data) < 2) { return null; }
    $length = ord($data[1]) & 127; $offset = 2;
    if ($length === 126) { $length = unpack('n', substr($data, 2, 2))[1]; $offset = 4; }
    return json_decode(substr($data, $offset, $length), true);
}
function ws_send($sock, $text) {
    $mask = random_bytes(4); $masked = '';
    for ($i = 0; $i < strlen($text); $i++) { $masked .= $text[$i] ^ $mask[$i % 4]; }
    $n = strlen($text);
    $head = chr(0x81) . ($n < 126 ? chr(0x80 | $n) : chr(0x80 | 126) . pack('n', $n));
    fwrite($sock, $head . $mask . $masked);
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twistd]:
    require_php()
    yield from serve_phpws(tmp_path_factory.mktemp("phpws-php"))


def test_the_single_fread_client_never_misses_ready(server):
    """50 connections, every other one reading 5 ms late: each gets ready on its own."""
    script = CLIENT + r"""
$got = 0;
for ($i = 0; $i < 50; $i++) {
    $sock = ws_connect($argv[1], '', ($i % 2) * 5000);
    $ready = ws_read($sock);
    if (is_array($ready) && $ready['opcode'] === 'ready') { $got++; }
    fclose($sock);
}
echo json_encode(['ready' => $got]);
"""
    done = run_php(script, args=[str(server.port)], timeout=120)
    assert json.loads(done.stdout) == {"ready": 50}


def test_a_one_frame_per_read_receiver_gets_every_feedback_by_ident(server, tmp_path):
    """Three feedbacks sent back to back reach a receiver that loses coalesced frames."""
    receiver_code = CLIENT + r"""
$sock = ws_connect($argv[1], 'one-frame-reader');
$ready = ws_read($sock);
echo json_encode($ready), "\n";
$got = [];
stream_set_timeout($sock, 10);
while (count($got) < 3) {
    $packet = ws_read($sock);
    if ($packet === null) { break; }
    $got[] = $packet['message'];
}
echo json_encode($got), "\n";
"""
    sender_code = CLIENT + r"""
$sock = ws_connect($argv[1], '');
ws_read($sock);
foreach ([1, 22, 333] as $n) {
    ws_send($sock, json_encode(['opcode' => 'feedback', 'ident' => 'one-frame-reader', 'uuid' => '',
        'message' => "Hello $n"]));
    $reply = ws_read($sock);
    if (!is_array($reply) || $reply['opcode'] !== 'next') { fwrite(STDERR, "no next\n"); exit(1); }
}
echo "sent\n";
"""
    receiver = _start_php(receiver_code, server.port, tmp_path)
    try:
        assert json.loads(receiver.stdout.readline())["opcode"] == "ready"
        sent = run_php(sender_code, args=[str(server.port)])
        assert sent.stdout.strip() == b"sent"
        out, err = receiver.communicate(timeout=seconds(20))
    finally:
        _stop(receiver)
    assert json.loads(out) == ["Hello 1", "Hello 22", "Hello 333"], err


def test_php2php_examples_talk_by_ident(server):
    address = f"ws://127.0.0.1:{server.port}/php"
    receiver = subprocess.Popen(
        [PHP, str(EXAMPLES / "receiver.php"), address, "3", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert "ready" in json.loads(receiver.stdout.readline())
        subprocess.run([PHP, str(EXAMPLES / "sender.php"), address, "one", "two / zwei", "drei \u00fc"],
                       check=True, timeout=seconds(20), capture_output=True)
        out, err = receiver.communicate(timeout=seconds(20))
    finally:
        _stop(receiver)
    assert receiver.returncode == 0, err
    assert [json.loads(line)["message"] for line in out.splitlines()] == ["one", "two / zwei", "drei \u00fc"]


def _start_php(code: str, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    script = tmp_path / "receiver.php"
    script.write_text(code)
    return subprocess.Popen([PHP, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
