"""Many WAMP subscribers over real loopback sockets receive one publish, framed once."""

from __future__ import annotations

from typing import Any

from twisted.internet import threads
from twisted.trial import unittest

from ratchetpy.wamp import WampServer
from ratchetpy.wamp import topic as topic_module
from tests.support.wamp import LoopbackMixin, WampEcho
from tests.support.wamp_client import WampClient

T = "http://example.com/news"
SUBSCRIBERS = 200


def subscribe_and_publish(url: str) -> tuple[list[str], list[str]]:
    clients: list[WampClient] = []
    try:
        for _ in range(SUBSCRIBERS):
            clients.append(WampClient(url))
        for client in clients:
            client.send([5, T])
        for client in clients:  # each subscription is in place once its barrier returns
            assert client.barrier() == []
        publisher = clients[0]
        publisher.send([7, T, {"headline": "ünïcode/slash"}, True])
        received = [client.recv() for client in clients[1:]]
        return received, publisher.barrier()
    finally:
        for client in clients:
            client.close()


class ManySubscribersTests(LoopbackMixin, unittest.TestCase):
    timeout = 60

    async def test_many_subscribers_receive_one_publish(self) -> None:
        """200 subscribers: each other one gets the EVENT once; the excluded publisher gets nothing."""
        calls: list[int] = []
        real = topic_module._broadcast

        def spy(conns: Any, message: str) -> int:
            conns = list(conns)
            calls.append(len(conns))
            return real(conns, message)

        self.patch(topic_module, "_broadcast", spy)
        app = WampEcho()
        url = await self.serve(WampServer(app))
        received, publisher_got = await threads.deferToThread(subscribe_and_publish, url)
        expected = '[8,"http:\\/\\/example.com\\/news",{"headline":"\\u00fcn\\u00efcode\\/slash"}]'
        self.assertEqual(received, [expected] * (SUBSCRIBERS - 1))
        self.assertEqual(publisher_got, [])
        self.assertEqual(calls, [SUBSCRIBERS - 1])
