"""twistd route targets for the Swoole-style server tests: a factory (a new server each time) and a server that cannot run."""

from ratchetpy.swoole import Server

NO_MESSAGE_HANDLER = Server()


def make_server() -> Server:
    server = Server()
    server.on("open", lambda ws, request: ws.push(request.fd, "welcome"))
    server.on("message", lambda ws, frame: ws.push(frame.fd, "swoole:" + frame.data))
    server.on("request", lambda request, response: response.end("http " + request.server["request_uri"]))
    return server
