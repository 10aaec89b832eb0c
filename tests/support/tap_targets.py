"""Route targets for tests/test_tap.py: a factory, an instance, and wrong ones."""

from ratchetpy import EchoServer


def make_chat():
    return EchoServer()


INSTANCE = EchoServer()


class NotAComponent:
    pass


class NeedsArgs(EchoServer):
    def __init__(self, required):
        self.required = required


class Pusher:
    """Shaped like a WAMP application."""

    def on_open(self, conn): ...
    def on_close(self, conn): ...
    def on_error(self, conn, exc): ...
    def on_call(self, conn, id, topic, params): ...
    def on_subscribe(self, conn, topic): ...
    def on_unsubscribe(self, conn, topic): ...
    def on_publish(self, conn, topic, event, exclude, eligible): ...


class Explodes(EchoServer):
    def __init__(self):
        raise RuntimeError("database is down")
