"""Home Assistant's WebSocket API, asked once for what :func:`~.names.collect_names` needs.

Connect, authenticate with a token (a long-lived access token, or the add-on's Supervisor
token through ``http://supervisor/core``), run a handful of commands one after another, and
close. Every failure becomes a :class:`HassError` whose message says what to do, built from
our own words and the server's, never from the token. Keeping the answer, refreshing it and
warning about failures is :mod:`.hass_names`' job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from ..text import quoted
from .names import HassDataError, collect_names, exposed_entity_ids

_LOGGER = logging.getLogger(__name__)

# Error codes from homeassistant.components.websocket_api.const that change what we do.
_ERR_UNKNOWN_COMMAND = "unknown_command"
_ERR_UNAUTHORIZED = "unauthorized"

# The socket is only closed once we have what we want, or gave up; a server that does not
# answer the closing handshake must not hold up stop() or the next refresh.
_CLOSE_TIMEOUT = 1.0
# get_states of a large install is several MB; aiohttp's 4 MB default would cut it off. The
# Supervisor's own proxy allows 64 MB, so anything it forwards fits.
_MAX_MESSAGE = 64 * 1024 * 1024


class HassError(Exception):
    """A failed fetch.

    ``kind`` groups failures so each is warned about once; the message says what to do. Both
    are built from our own words and the server's, never from the token.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Closed(Exception):
    """The socket ended, or broke, before Home Assistant answered."""


class CommandError(Exception):
    def __init__(self, command: str, code: str, message: str) -> None:
        super().__init__(f"{command}: {code}: {message}")
        self.command = command
        self.code = code
        self.message = message


def websocket_url(url: str) -> URL:
    """``http://homeassistant.local:8123`` → ``…/api/websocket``; a full one is kept."""
    base = URL(url.rstrip("/"))
    if base.path.endswith("/api/websocket"):
        return base
    return base.with_path(base.path.rstrip("/") + "/api/websocket")


class HassApi:
    """One Home Assistant, reached at ``url`` with ``token``.

    ``url`` is Home Assistant's base URL (``http://homeassistant.local:8123``) or, in an
    add-on, ``http://supervisor/core``. https certificates are verified (this module never
    turns verification off; aiohttp checks the system's store), unless the caller's session
    was itself built to skip that. ``note(key, message)`` is told, each time, of a degraded
    but working setup (an old Home Assistant, a token without admin rights).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        timeout: float,
        note: Callable[[str, str], object],
    ) -> None:
        self._session = session
        self._url = websocket_url(url)
        self.where = str(URL(url.rstrip("/")).with_user(None))
        """For messages: the URL as given, less any user:password someone might have put in it."""
        self._supervisor = self._url.host == "supervisor"
        self._token = token
        self._timeout = timeout
        self._note = note

    def __repr__(self) -> str:
        # Spelled out so that nothing — a debugger, a log line with %r — ever prints the token.
        return f"HassApi({self.where!r})"

    async def fetch_names(self) -> tuple[str, ...]:
        """The names, within ``timeout``; raises :class:`HassError`."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch_unbounded()
        except TimeoutError:
            raise HassError(
                "timeout",
                f"{self.where} did not answer within {self._timeout:g} s; "
                "is Home Assistant running and is this its URL?",
            ) from None
        except aiohttp.WSServerHandshakeError as err:
            # `from None` throughout: aiohttp's exceptions carry the request, and nothing of
            # ours should ever drag request details along into a traceback.
            raise HassError("handshake", self._handshake_message(err.status)) from None
        except aiohttp.ClientSSLError as err:
            raise HassError(
                "tls",
                f"TLS verification failed for {self.where} ({describe(err)}); give Home "
                "Assistant a certificate this system trusts, or use its http:// LAN address",
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise HassError(
                "connect",
                f"cannot connect to {self.where} ({describe(err)}); "
                "check the Home Assistant URL and that it is reachable from here",
            ) from None
        except Closed as err:
            raise HassError(
                "closed",
                f"{self.where} ended the WebSocket session early ({err}); "
                "is this Home Assistant's URL?",
            ) from None
        except CommandError as err:
            raise HassError(
                "command", f"Home Assistant refused {err.command}: {err.code}: {err.message}"
            ) from None
        except HassDataError as err:
            raise HassError("malformed", f"unexpected answer from Home Assistant: {err}") from None
        except HassError:
            raise
        except Exception as err:
            # Last resort (a closed session, a bug of ours): the refresh loop must outlive it,
            # and the cache must stay as it was.
            raise HassError(
                "unexpected", f"unexpected error fetching from {self.where}: {describe(err)}"
            ) from None

    def _handshake_message(self, status: int) -> str:
        if self._supervisor and status in (401, 403):
            return (
                "the Supervisor refused the add-on's Home Assistant API access "
                f"(HTTP {status}); the add-on needs `homeassistant_api: true`"
            )
        return (
            f"{self.where} refused the WebSocket connection (HTTP {status}); "
            "is this Home Assistant's URL (e.g. http://homeassistant.local:8123)?"
        )

    async def _fetch_unbounded(self) -> tuple[str, ...]:
        async with self._session.ws_connect(
            self._url,
            timeout=aiohttp.ClientWSTimeout(ws_close=min(_CLOSE_TIMEOUT, self._timeout)),
            max_msg_size=_MAX_MESSAGE,
        ) as ws:
            await self._authenticate(ws)
            return tuple(await self._collect(Commands(ws)))

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        first = await receive(ws)
        if first.get("type") != "auth_required":
            raise HassDataError(f"expected auth_required first, got {quoted(first.get('type'))}")
        await ws.send_json({"type": "auth", "access_token": self._token})
        answer = await receive(ws)
        kind = answer.get("type")
        if kind == "auth_ok":
            return
        if kind == "auth_invalid":
            if self._supervisor:
                hint = (
                    "the Supervisor rejected the add-on's token; the add-on needs "
                    "`homeassistant_api: true`"
                )
            else:
                hint = (
                    "Home Assistant rejected the access token: create a long-lived access "
                    "token in your Home Assistant profile (Security tab) and set it as "
                    "hass_token / HASS_TOKEN"
                )
            raise HassError("auth", hint)
        raise HassDataError(f"expected auth_ok or auth_invalid, got {quoted(kind)}")

    async def _collect(self, commands: Commands) -> list[str]:
        # Sequential on purpose: five small round trips every few minutes, and a reply can
        # then only ever be the one we are waiting for.
        try:
            exposed: Any = await commands.run("homeassistant/expose_entity/list")
        except CommandError as err:
            if err.code == _ERR_UNKNOWN_COMMAND:
                # Before 2023.5 Assist used every entity; collect_names mirrors that.
                self._note(
                    "old",
                    "this Home Assistant predates per-assistant exposure (2023.5); using the "
                    "names of all entities that are not hidden",
                )
                exposed = None
            elif err.code == _ERR_UNAUTHORIZED:
                # Listing exposure needs an administrator. Falling back to every entity would
                # send names the user never exposed to a cloud service, so use none.
                self._note(
                    "admin",
                    "the access token's user is not an administrator, so which entities are "
                    "exposed to Assist cannot be read; using area and floor names only "
                    "(create the token as an administrator to add entity names)",
                )
                exposed = {"exposed_entities": {}}
            else:
                raise
        exposed_ids = exposed_entity_ids(exposed)
        states = await commands.run("get_states")
        if exposed_ids is None:
            # Hidden and category flags, for the all-entities fallback; not worth failing for.
            registry = await commands.optional("config/entity_registry/list")
        elif exposed_ids:
            # Aliases are only in the extended entries, and only the exposed ones matter.
            registry = await commands.optional(
                "config/entity_registry/get_entries", entity_ids=sorted(exposed_ids)
            )
        else:
            registry = None
        areas = await commands.run("config/area_registry/list")
        floors = await commands.optional("config/floor_registry/list")
        return collect_names(
            exposed=exposed, states=states, areas=areas, floors=floors, registry=registry
        )


class Commands:
    """Home Assistant's command phase: numbered requests, results matched by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 1

    async def run(self, command: str, **fields: Any) -> Any:
        ident = self._next_id
        self._next_id += 1
        await self._ws.send_json({"id": ident, "type": command, **fields})
        while True:
            message = await receive(self._ws)
            # Nothing else should arrive (we subscribe to nothing), but an id that is not ours
            # is no reason to fail.
            if message.get("id") != ident or message.get("type") != "result":
                continue
            if message.get("success") is True:
                return message.get("result")
            error = message.get("error")
            error = error if isinstance(error, Mapping) else {}
            raise CommandError(
                command, str(error.get("code", "error")), str(error.get("message", ""))
            )

    async def optional(self, command: str, **fields: Any) -> Any:
        """A command some Home Assistant versions lack or refuse: None when they do."""
        try:
            return await self.run(command, **fields)
        except CommandError as err:
            _LOGGER.debug("Home Assistant names: %s unavailable (%s)", command, err.code)
            return None


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next JSON object from Home Assistant."""
    message = await ws.receive()
    if message.type is aiohttp.WSMsgType.TEXT:
        try:
            data = json.loads(message.data)
        except ValueError:
            raise HassDataError("a message that is not JSON") from None
        # Home Assistant only batches messages into JSON arrays for clients that ask for it
        # (coalesce_messages), which we do not.
        if not isinstance(data, dict):
            raise HassDataError(f"a {type(data).__name__} message, not an object")
        return data
    if message.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
    ):
        raise Closed("closed by the server")
    if message.type is aiohttp.WSMsgType.ERROR:
        raise Closed(describe(ws.exception()))
    raise HassDataError(f"an unexpected {message.type.name} message")


def describe(err: BaseException | None) -> str:
    if err is None:
        return "connection lost"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


__all__ = ["Closed", "CommandError", "Commands", "HassApi", "HassError", "receive", "websocket_url"]
