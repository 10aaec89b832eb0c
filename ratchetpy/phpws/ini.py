# -*- test-case-name: tests.phpws.test_ini -*-
"""
phpWebSocketServer's own ini files, for ``twistd ratchetpy --config FILE``.

Two layouts are read:

- ``server/websock.ini`` (up to 2025): keys without a section, read by
  ``runSocketServer.php -i FILE``;
- ``config/config.ini`` (since): ``[websocketserver]`` with the same keys,
  ``[jsauth]`` for the session check, ``[develop]``, and ``${VAR}``
  replaced from the environment.

Keys of ``[websocketserver]`` (and of the sectionless file):

- ``adress`` (sic): ``scheme://host:port``; ``ws``/``tcp`` listen plain,
  ``wss``/``ssl`` listen with TLS from ``certFile``/``pkFile`` (without
  them plain, as phpWebSocketServer does for a proxy in front); the port
  defaults to 80 (plain) or 443 (TLS);
- ``logfile``: also write the log to this file; ``console``: accepted
  (twistd decides where else the log goes);
- ``certFile``/``pkFile``: PEM certificate (chain) and key.

``[jsauth]``: ``require``, ``ssp`` (session save path), ``cookie_name``,
``key``. Other sections belong to the PHP application and are skipped.
Paths are relative to the ini file's directory.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = ["PhpWsIni", "is_phpws_ini", "read_phpws_ini", "SECTION"]

SECTION = "websocketserver"
JSAUTH = "jsauth"
_SERVER_KEYS = ("adress", "logfile", "console", "certfile", "pkfile")
_JSAUTH_KEYS = ("require", "ssp", "cookie_name", "key")
_DEVELOP_KEYS = ("developsystem",)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("", "0", "false", "off", "no", "none", "null")
_DEFAULT_ROUTES = ("/", "/web", "/php")


@dataclass
class PhpWsIni:
    """
    What a phpWebSocketServer ini file asks for, as ``twistd ratchetpy`` flags.

    Attributes:
        listen: the ``--listen`` endpoint from ``adress``.
        tls_cert, tls_key: ``--tls-cert``/``--tls-key`` (TLS schemes with files).
        log_file: ``logfile``, or ``None``.
        console: ``console``.
        routes: ``--route`` values: ``/``, ``/web``, ``/php`` = ``phpws``.
        jsauth: ``(ssp, key, cookie_name)`` when ``[jsauth] require`` is true.
        notes: lines worth logging (e.g. ``wss`` without certificate files).
    """

    listen: str
    tls_cert: str | None = None
    tls_key: str | None = None
    log_file: str | None = None
    console: bool = False
    routes: list[str] = field(default_factory=lambda: [f"{p}=phpws" for p in _DEFAULT_ROUTES])
    jsauth: tuple[str, str, str] | None = None
    notes: list[str] = field(default_factory=list)


def _parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        interpolation=None, comment_prefixes=("#", ";"), inline_comment_prefixes=(";",)
    )
    return parser


def _text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise ConfigurationError("it is not UTF-8 text") from None


def is_phpws_ini(text: str) -> bool:
    """True when ``text`` is a phpWebSocketServer ini file rather than ours (``[ratchetpy]``)."""
    parser = _parser()
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        return bool(re.search(r"(?im)^\s*adress\s*=", text))
    except configparser.Error:
        return False
    return not parser.has_section("ratchetpy") and parser.has_section(SECTION)


def _value(raw: str, where: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigurationError(
                f"{where} uses ${{{name}}}, which is not set in the environment; export {name}=..."
            )
        return os.environ[name]

    return _VAR.sub(substitute, value)


def _flag(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{where} must be true or false, not {value!r}")


def read_phpws_ini(path: str) -> PhpWsIni:
    """
    Read a phpWebSocketServer ini file.

    Raises:
        ConfigurationError: one line saying what is wrong and how to fix it
            (the caller puts the file name in front).
    """
    text = _text(path)
    parser = _parser()
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        parser = _parser()
        try:
            parser.read_string(f"[{SECTION}]\n{text}")
        except configparser.Error as exc:
            raise ConfigurationError(f"not a valid ini file: {exc}".replace("\n", " ")) from exc
    except configparser.Error as exc:
        raise ConfigurationError(f"not a valid ini file: {exc}".replace("\n", " ")) from exc
    if not parser.has_section(SECTION):
        raise ConfigurationError(
            f"no [{SECTION}] section (phpWebSocketServer's config.ini) and no [ratchetpy] section"
        )
    base = os.path.dirname(os.path.abspath(path))
    values: dict[str, str] = {}
    for key, raw in parser.items(SECTION):
        if key not in _SERVER_KEYS:
            raise ConfigurationError(
                f"unknown key {key!r} in [{SECTION}]; phpWebSocketServer's keys are adress, "
                "logfile, console, certFile, pkFile (other settings: twistd ratchetpy --phpws-* flags)"
            )
        values[key] = _value(raw, f"{key} in [{SECTION}]")
    if not values.get("adress"):
        raise ConfigurationError(
            f"no adress in [{SECTION}]: add adress = 'ws://127.0.0.1:8090' (the address to listen on)"
        )
    listen, tls = _listen(values["adress"])
    result = PhpWsIni(listen=listen)
    cert = values.get("certfile", "")
    key = values.get("pkfile", "")
    if tls:
        if cert and key:
            result.tls_cert = os.path.join(base, os.path.expanduser(cert))
            result.tls_key = os.path.join(base, os.path.expanduser(key))
        elif cert or key:
            raise ConfigurationError(
                f"adress {values['adress']!r} asks for TLS and only one of certFile/pkFile is set; "
                "give both PEM files, or neither to listen plain behind a TLS proxy"
            )
        else:
            result.notes.append(
                f"adress {values['adress']!r} asks for TLS but certFile/pkFile are empty: listening "
                "plain (as phpWebSocketServer does, for a TLS proxy in front)"
            )
    elif cert or key:
        result.notes.append("certFile/pkFile are ignored: adress is ws:// or tcp:// (plain)")
    if values.get("logfile"):
        result.log_file = os.path.join(base, os.path.expanduser(values["logfile"]))
    if "console" in values:
        result.console = _flag(values["console"], f"console in [{SECTION}]")
    if parser.has_section(JSAUTH):
        result.jsauth = _jsauth(parser, base)
    if parser.has_section("develop"):
        for key in parser.options("develop"):
            if key not in _DEVELOP_KEYS:
                raise ConfigurationError(f"unknown key {key!r} in [develop]; the only one is developsystem")
        result.notes.append(
            "[develop] developsystem concerns phpWebSocketServer's PHP client's certificate checks; "
            "the server ignores it"
        )
    return result


def _jsauth(parser: configparser.ConfigParser, base: str) -> tuple[str, str, str] | None:
    values: dict[str, str] = {}
    for key, raw in parser.items(JSAUTH):
        if key not in _JSAUTH_KEYS:
            raise ConfigurationError(
                f"unknown key {key!r} in [{JSAUTH}]; its keys are require, ssp, cookie_name, key"
            )
        values[key] = _value(raw, f"{key} in [{JSAUTH}]")
    if not _flag(values.get("require", "false"), f"require in [{JSAUTH}]"):
        return None
    if not values.get("ssp") or not values.get("key"):
        raise ConfigurationError(
            f"[{JSAUTH}] require is true but ssp or key is empty; set ssp to PHP's session.save_path "
            "and key to the session key that lets a page connect (or require = false)"
        )
    ssp = os.path.join(base, os.path.expanduser(values["ssp"]))
    return ssp, values["key"], values.get("cookie_name") or "PHPSESSID"


def _listen(adress: str) -> tuple[str, bool]:
    where = f"adress {adress!r}"
    if "://" not in adress:
        raise ConfigurationError(f"{where}: write scheme://host:port, e.g. ws://127.0.0.1:8090")
    parts = urlsplit(adress)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "tcp", "wss", "ssl"):
        raise ConfigurationError(
            f"{where}: the scheme must be ws or tcp (plain) or wss or ssl (TLS), not {parts.scheme!r}"
        )
    tls = scheme in ("wss", "ssl")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{where}: the port must be a number from 1 to 65535") from None
    host = parts.hostname
    if not host:
        raise ConfigurationError(f"{where}: no host; e.g. ws://127.0.0.1:8090 or ws://0.0.0.0:8090")
    if port is None:
        port = 443 if tls else 80
    if port == 0:
        raise ConfigurationError(f"{where}: the port must be a number from 1 to 65535")
    interface = host.replace(":", "\\:")
    kind = "tcp6" if ":" in host else "tcp"
    return f"{kind}:{port}:interface={interface}", tls
