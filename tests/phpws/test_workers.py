"""
phpws across processes: ``twistd ratchetpy --workers 2 --redis URL``, where
the kernel spreads clients over two workers; feedback (by uuid and by
ident) and broadcast reach clients on the other worker through Redis.
"""

from __future__ import annotations

import json

import pytest

from tests.phpws.support import NEXT, RawClient
from tests.support.redis import shared_redis, unique

pytestmark = pytest.mark.slow


def _ready(client: RawClient) -> str:
    client.read_head()
    packet = client.packet()
    assert packet["opcode"] == "ready"
    return str(packet["uuid"])


def _node(uuid: str) -> str:
    return uuid.split(".")[0]


def test_feedback_and_broadcast_cross_workers(twistd):
    url = f"{shared_redis().url}?prefix={unique('phpws')}:"
    server = twistd("--route", "/web=phpws", "--route", "/php=phpws", "--workers", "2", "--redis", url)
    server.wait_listening()
    browsers: list[tuple[RawClient, str]] = []
    workers: list[tuple[RawClient, str, str]] = []
    # Connect until both workers hold a browser and a PHP client (the kernel picks).
    for n in range(40):
        if len({_node(u) for _, u in browsers}) == 2 and len({_node(u) for _, u, _ in workers}) == 2:
            break
        browser = RawClient(server.port, "/web")
        browsers.append((browser, _ready(browser)))
        ident = f"worker-{n}"
        php = RawClient(server.port, "/php", php=True, ident=ident)
        workers.append((php, _ready(php), ident))
    assert len({_node(u) for _, u in browsers}) == 2, "the kernel put every browser on one worker"
    assert len({_node(u) for _, u, _ in workers}) == 2, "the kernel put every PHP client on one worker"

    sender, sender_uuid = browsers[0]
    far_browser, far_uuid = next((b, u) for b, u in browsers if _node(u) != _node(sender_uuid))
    far_php, _, far_ident = next(w for w in workers if _node(w[1]) != _node(sender_uuid))

    sender.send(json.dumps({"opcode": "feedback", "uuid": far_uuid, "message": "across by uuid"}))
    assert sender.frame() == (0x81, NEXT)
    assert far_browser.packet() == {"opcode": "feedback", "uuid": far_uuid, "message": "across by uuid"}

    sender.send(json.dumps({"opcode": "feedback", "ident": far_ident, "uuid": "", "message": "across by ident"}))
    assert sender.frame() == (0x81, NEXT)
    assert far_php.packet()["message"] == "across by ident"

    raw = '{"opcode":"broadcast", "message":"to every browser"}'
    sender.send(raw)
    assert sender.frame() == (0x81, NEXT)
    for browser, uuid in browsers[1:]:
        assert browser.frame() == (0x81, raw.encode()), uuid
    assert sender.silent(0.3)
    for php, _, _ in workers:  # PHP clients never get broadcasts
        assert php.silent(0.05)
