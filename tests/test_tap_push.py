"""twistd ratchetpy's publish API options: --push-api, --push-key, --push-listen, ini keys, environment."""

from __future__ import annotations

import textwrap

import pytest
from twisted.internet.testing import MemoryReactor

from ratchetpy.hub.pushapi import PushApi
from ratchetpy.tap import PUSH_KEY_ENV, makeService
from tests.support.tap import error, parse

KEY = "flag-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv(PUSH_KEY_ENV, raising=False)




def config(tmp_path, body: str) -> str:
    path = tmp_path / "websock.ini"
    path.write_text(textwrap.dedent(body))
    return str(path)


def push_api_of(app) -> list[PushApi]:
    routes = [r.controller for r in app.router.routes]
    return [c for c in routes if isinstance(c, PushApi)]


def test_flags():
    options = parse("--route", "/chat", "--push-api", "/push/", "--push-key", KEY)
    assert (options["push-api"], options["push-key"]) == ("/push", KEY)
    app = makeService(options, MemoryReactor())
    (api,) = push_api_of(app)
    assert (api.path, api.key, api.hub) == ("/push", KEY, app.hub)
    assert len(app.servers) == 1  # beside the routes


def test_push_listen_gives_the_api_its_own_endpoint():
    options = parse(
        "--route", "/chat", "--push-api", "/push", "--push-key", KEY,
        "--push-listen", "tcp:8081:interface=127.0.0.1",
    )
    app = makeService(options, MemoryReactor())
    assert push_api_of(app) == []
    assert len(app.servers) == 2
    (route,) = app.servers[1].component.component.routes
    assert isinstance(route.controller, PushApi)


def test_key_from_the_environment(monkeypatch):
    monkeypatch.setenv(PUSH_KEY_ENV, "env-key-0123456789abcdef")
    assert parse("--route", "/chat", "--push-api", "/push")["push-key"] == "env-key-0123456789abcdef"
    # A flag wins over the environment.
    assert parse("--route", "/chat", "--push-api", "/push", "--push-key", KEY)["push-key"] == KEY


def test_ini_keys(tmp_path, monkeypatch):
    monkeypatch.setenv(PUSH_KEY_ENV, "env-key-0123456789abcdef")
    path = config(tmp_path, """
        [ratchetpy]
        route = /chat
        push-api = /api/push
        push-key = ini-key-0123456789abcdef
        push-listen = tcp:8081:interface=127.0.0.1
    """)
    options = parse("--config", path)
    assert options["push-api"] == "/api/push"
    assert options["push-key"] == "ini-key-0123456789abcdef"  # the ini file wins over the environment
    assert options["push-listen"] == ["tcp:8081:interface=127.0.0.1"]
    assert parse("--config", path, "--push-key", KEY)["push-key"] == KEY  # a flag wins over the ini


def test_push_api_without_a_key_names_the_fix():
    message = error("--route", "/chat", "--push-api", "/push")
    assert "--push-api /push needs a key" in message
    assert "--push-key" in message and PUSH_KEY_ENV in message and "secrets.token_urlsafe" in message


@pytest.mark.parametrize(
    "args, words",
    [
        (["--push-key", "short"], "--push-key: the publish API key is 5 characters; use at least 16"),
        (["--push-key", "has spaces in the key"], "--push-key: the publish API key must be printable ASCII"),
        (["--push-api", "push"], "--push-api push: the publish API path must start with '/'"),
        (["--push-api", "/"], "path of its own"),
        (["--push-api", "/chat"], "--push-api /chat: /chat is a --route"),
        (["--push-listen", "nonsense:1"], "--push-listen nonsense:1:"),
    ],
)
def test_bad_values_are_one_line(args, words):
    base = ["--route", "/chat", "--push-api", "/push", "--push-key", KEY]
    # later flags win for single values; --push-listen adds
    assert words in error(*base, *args)


def test_short_environment_key_names_the_variable(monkeypatch):
    monkeypatch.setenv(PUSH_KEY_ENV, "tiny")
    assert f"{PUSH_KEY_ENV}: the publish API key is 4 characters" in error("--route", "/chat", "--push-api", "/push")


def test_short_ini_key_names_the_file(tmp_path):
    path = config(tmp_path, """
        [ratchetpy]
        route = /chat
        push-api = /push
        push-key = tiny
    """)
    assert f"push-key in {path}: the publish API key is 4" in error("--config", path)


@pytest.mark.parametrize(
    "args, flag",
    [(["--push-key", KEY], "--push-key"), (["--push-listen", "tcp:8081"], "--push-listen")],
)
def test_push_options_without_push_api(args, flag):
    assert f"{flag} is set but --push-api is not" in error("--route", "/chat", *args)


def test_environment_key_alone_is_ignored(monkeypatch):
    """RATCHETPY_PUSH_KEY set for other reasons does not turn the API on."""
    monkeypatch.setenv(PUSH_KEY_ENV, "env-key-0123456789abcdef")
    options = parse("--route", "/chat")
    assert options["push-api"] is None
    assert push_api_of(makeService(options, MemoryReactor())) == []
