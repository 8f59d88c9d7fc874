"""Home Assistant's own names — exposed entities, areas, floors — as Bodhi hotwords.

A recogniser stumbles on proper nouns, and a home is full of them: "Rasoi ki batti",
"Bedroom fan", "Ground floor". Assist can only act on what the user exposed to it, so exactly
those names are worth biasing recognition towards.

Two layers:

* :func:`collect_names` is pure: raw WebSocket command results in, ordered de-duplicated
  names out. All the policy (what counts as exposed, order, de-duplication) lives here.
* :class:`HassNames` fetches those results in the background and keeps the last good answer,
  so the request path only ever reads a tuple and never waits on Home Assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ..text import quoted

_LOGGER = logging.getLogger(__name__)

# Assist's id in ``homeassistant/expose_entity/list`` (the cloud assistants have their own).
ASSISTANT = "conversation"

# Error codes from homeassistant.components.websocket_api.const that change what we do.
_ERR_UNKNOWN_COMMAND = "unknown_command"
_ERR_UNAUTHORIZED = "unauthorized"

# The first retry after a failure comes this soon, doubling up to refresh_seconds: a Home
# Assistant that is restarting is back within a minute, and waiting ten for it is a long time
# to go without the user's names.
RETRY_FIRST = 5.0
# The socket is only closed once we have what we want, or gave up; a server that does not
# answer the closing handshake must not hold up stop() or the next refresh.
_CLOSE_TIMEOUT = 1.0
# get_states of a large install is several MB; aiohttp's 4 MB default would cut it off. The
# Supervisor's own proxy allows 64 MB, so anything it forwards fits.
_MAX_MESSAGE = 64 * 1024 * 1024


class HassDataError(ValueError):
    """A command answered with a shape we cannot read."""


# --------------------------------------------------------------------------------------------
# The pure core


@dataclass(frozen=True)
class _RegistryEntry:
    hidden: bool
    categorised: bool
    aliases: list[str]


def _clean(value: object) -> str | None:
    """One name, whitespace collapsed, or None when there is nothing to say."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _aliases(value: object) -> list[str]:
    # Aliases are a set in Home Assistant, so the JSON list comes in any order; sorting keeps
    # the output identical from fetch to fetch. Newer versions put a null in the list to stand
    # for "the entity's own name", which the friendly name already covers.
    if not isinstance(value, list):
        return []
    return sorted((name for item in value if (name := _clean(item))), key=_sort_key)


def _sort_key(name: str) -> tuple[str, str]:
    return name.casefold(), name


def _records(value: object, what: str) -> list[Mapping[str, Any]]:
    """The dicts in a list result; a single odd item is skipped, a wrong shape is an error."""
    if not isinstance(value, list):
        raise HassDataError(f"{what} answered with {type(value).__name__}, not a list")
    return [item for item in value if isinstance(item, Mapping)]


def _named(records: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """Area or floor names, each followed by its aliases."""
    for record in records:
        if name := _clean(record.get("name")):
            yield name
        yield from _aliases(record.get("aliases"))


def _exposed_ids(exposed: object) -> set[str] | None:
    if exposed is None:
        return None
    entities = exposed.get("exposed_entities") if isinstance(exposed, Mapping) else None
    if not isinstance(entities, Mapping):
        raise HassDataError("homeassistant/expose_entity/list has no exposed_entities mapping")
    # Only an explicit True counts: an entity whose Assist setting is missing or False is
    # something the user chose not to (or never meant to) talk about.
    return {
        entity_id
        for entity_id, settings in entities.items()
        if isinstance(entity_id, str) and isinstance(settings, Mapping)
        if settings.get(ASSISTANT) is True
    }


def _registry(registry: object) -> dict[str, _RegistryEntry]:
    """Entity registry entries by entity id, from whichever registry command answered.

    ``config/entity_registry/get_entries`` gives ``{entity_id: entry or null}`` and is the only
    one carrying aliases; ``config/entity_registry/list`` gives a list of entries;
    ``list_for_display`` gives ``{"entities": [...]}`` with one- and two-letter keys.
    """
    items: list[Mapping[str, Any]]
    if registry is None:
        return {}
    if isinstance(registry, Mapping) and isinstance(registry.get("entities"), list):
        items = _records(registry["entities"], "config/entity_registry/list_for_display")
    elif isinstance(registry, Mapping):
        items = [
            {"entity_id": entity_id, **entry}
            for entity_id, entry in registry.items()
            if isinstance(entry, Mapping)
        ]
    else:
        items = _records(registry, "config/entity_registry/list")
    entries: dict[str, _RegistryEntry] = {}
    for item in items:
        entity_id = item.get("entity_id", item.get("ei"))
        if not isinstance(entity_id, str):
            continue
        entries[entity_id] = _RegistryEntry(
            hidden=bool(item.get("hidden_by") or item.get("hb")),
            # list_for_display numbers the categories from 0 ("config"), hence `is not None`.
            categorised=item.get("entity_category", item.get("ec")) is not None,
            aliases=_aliases(item.get("aliases")),
        )
    return entries


def _entity_names(
    states: object, exposed: set[str] | None, registry: dict[str, _RegistryEntry]
) -> Iterable[str]:
    groups: list[list[str]] = []
    for state in _records(states, "get_states"):
        entity_id = state.get("entity_id")
        if not isinstance(entity_id, str) or "." not in entity_id:
            continue
        attributes = state.get("attributes")
        if not isinstance(attributes, Mapping):
            attributes = {}
        entry = registry.get(entity_id)
        if exposed is None:
            # Home Assistant before 2023.5 had no per-assistant exposure and Assist understood
            # every entity, so mirror that, less what Home Assistant itself keeps out of sight:
            # hidden entities (registry, or the old `hidden` attribute) and config/diagnostic
            # ones, which are not things anyone asks to switch on.
            if attributes.get("hidden") is True:
                continue
            if entry is not None and (entry.hidden or entry.categorised):
                continue
        elif entity_id not in exposed:
            continue
        # This is how Home Assistant names a state (State.name), and so what Assist matches.
        name = _clean(attributes.get("friendly_name")) or _clean(
            entity_id.split(".", 1)[1].replace("_", " ")
        )
        group = ([name] if name else []) + (entry.aliases if entry else [])
        if group:
            groups.append(group)
    # get_states comes in the order entities were set up, which changes with every restart of
    # Home Assistant; sorting keeps the list, and whatever a cap cuts off, the same.
    groups.sort(key=lambda group: _sort_key(group[0]))
    for group in groups:
        yield from group


def collect_names(
    *,
    exposed: object,
    states: object,
    areas: object,
    floors: object = None,
    registry: object = None,
    limit: int | None = None,
) -> list[str]:
    """The names worth biasing recognition towards, most valuable first.

    Arguments are the ``result`` of each WebSocket command, as parsed JSON:

    * ``exposed`` — ``homeassistant/expose_entity/list``. ``None`` means this Home Assistant
      predates per-assistant exposure (before 2023.5), and every entity that is neither hidden
      nor a config/diagnostic one counts. To use no entities at all, pass
      ``{"exposed_entities": {}}``.
    * ``states`` — ``get_states``: friendly names.
    * ``areas`` — ``config/area_registry/list``; ``floors`` — ``config/floor_registry/list``
      (``None`` before Home Assistant 2024.4 had floors).
    * ``registry`` — ``config/entity_registry/get_entries`` (aliases), ``list`` or
      ``list_for_display`` (hidden, category), or ``None``.

    Area then floor names and their aliases come first, in the registry's order: they are
    few, short and in almost every command. Then entities, sorted by name, each followed by its
    aliases. Whitespace is collapsed, empty names dropped, and a name that differs from an
    earlier one only in case is dropped too (the first spelling wins). ``limit`` keeps the
    first so many; ``None`` keeps all.

    Raises :class:`HassDataError` when a result has the wrong shape as a whole; single odd
    records inside one are skipped.
    """
    exposed_ids = _exposed_ids(exposed)
    entries = _registry(registry)
    area_names = _named(_records(areas, "config/area_registry/list"))
    floor_names = _named(_records(floors, "config/floor_registry/list") if floors else [])
    entity_names = _entity_names(states, exposed_ids, entries)

    names: list[str] = []
    seen: set[str] = set()
    if limit is not None and limit <= 0:
        return names
    for name in (*area_names, *floor_names, *entity_names):
        key = name.casefold()
        if key in seen:
            continue
        seen.add(key)
        names.append(name)
        if limit is not None and len(names) >= limit:
            break
    return names


# --------------------------------------------------------------------------------------------
# The fetcher


class HassError(Exception):
    """A failed fetch.

    ``kind`` groups failures so each is warned about once; the message says what to do. Both
    are built from our own words and the server's, never from the token.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Closed(Exception):
    """The socket ended, or broke, before Home Assistant answered."""


class _CommandError(Exception):
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


class HassNames:
    """Home Assistant's names, fetched in the background and cached.

    ``names`` is what the last good fetch found (empty until one succeeds). It is a plain
    attribute read: safe on the request path, never awaited, never raising. A failed fetch
    keeps the previous names, warns once per kind of failure, and is retried sooner
    (:data:`RETRY_FIRST`, doubling, never later than ``refresh_seconds``).

    ``url`` is Home Assistant's base URL (``http://homeassistant.local:8123``) or, in an
    add-on, ``http://supervisor/core`` with the Supervisor token. https certificates are
    verified (this module never turns verification off; aiohttp checks the system's store), unless
    the caller's session was itself built to skip that.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        refresh_seconds: float = 600,
        timeout: float = 10,
    ) -> None:
        if refresh_seconds <= 0 or timeout <= 0:
            raise ValueError("refresh_seconds and timeout must be positive")
        self._session = session
        self._url = websocket_url(url)
        # For messages: the URL as given, less any user:password someone might have put in it.
        self._where = str(URL(url.rstrip("/")).with_user(None))
        self._supervisor = self._url.host == "supervisor"
        self._token = token
        self._refresh = float(refresh_seconds)
        self._timeout = float(timeout)
        self._names: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        self._notes: set[str] = set()
        #: Set after every successful fetch; clear it to wait for the next one.
        self.updated = asyncio.Event()
        #: Set after every failed fetch; clear it to wait for the next one.
        self.failed = asyncio.Event()
        #: What the last fetch got wrong, None after a success.
        self.last_error: str | None = None

    def __repr__(self) -> str:
        # Spelled out so that nothing — a debugger, a log line with %r — ever prints the token.
        return f"HassNames({self._where!r}, names={len(self._names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def start(self) -> None:
        """Fetch now, then every ``refresh_seconds``, until :meth:`stop`. Idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hass-names")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        failures = 0
        while True:
            error = await self.refresh()
            if error is None:
                failures = 0
                delay = self._refresh
            elif error.kind == "auth":
                # A rejected token will not fix itself in a few seconds, and Home Assistant
                # bans an address after repeated failed logins if the user turned that on.
                delay = self._refresh
            else:
                failures += 1
                delay = min(self._refresh, RETRY_FIRST * 2 ** (failures - 1))
            await asyncio.sleep(delay)

    async def refresh(self) -> HassError | None:
        """Fetch once now: None on success, else what went wrong (already logged)."""
        started = time.monotonic()
        try:
            names = await self._fetch()
        except HassError as err:
            # Rebuilt, not re-used: server text is in the message and must pass _redact.
            failure = HassError(err.kind, self._redact(str(err)))
            self._fail(failure)
            return failure
        elapsed = time.monotonic() - started
        changed = names != self._names
        recovered = bool(self._warned)
        self._names = names
        self._warned.clear()
        self.last_error = None
        level = logging.INFO if changed or recovered else logging.DEBUG
        _LOGGER.log(
            level,
            "Using %d names from Home Assistant at %s as hotwords (fetched in %.2f s)",
            len(names),
            self._where,
            elapsed,
        )
        self.updated.set()
        return None

    def _fail(self, err: HassError) -> None:
        message = str(err)
        self.last_error = message
        kept = f"; keeping the {len(self._names)} names fetched before" if self._names else ""
        if err.kind in self._warned:
            _LOGGER.debug("Home Assistant names: %s%s", message, kept)
        else:
            self._warned.add(err.kind)
            _LOGGER.warning("Home Assistant names: %s%s", message, kept)
        self.failed.set()

    def _note(self, key: str, message: str) -> None:
        """A degraded but working setup: say so once for the life of this fetcher."""
        if key not in self._notes:
            self._notes.add(key)
            _LOGGER.warning("Home Assistant names: %s", message)

    def _redact(self, text: str) -> str:
        # Server text goes into our messages; a misbehaving server could echo the token back.
        return text.replace(self._token, "***") if self._token else text

    async def _fetch(self) -> tuple[str, ...]:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch_unbounded()
        except TimeoutError:
            raise HassError(
                "timeout",
                f"{self._where} did not answer within {self._timeout:g} s; "
                "is Home Assistant running and is this its URL?",
            ) from None
        except aiohttp.WSServerHandshakeError as err:
            # `from None` throughout: aiohttp's exceptions carry the request, and nothing of
            # ours should ever drag request details along into a traceback.
            raise HassError("handshake", self._handshake_message(err.status)) from None
        except aiohttp.ClientSSLError as err:
            raise HassError(
                "tls",
                f"TLS verification failed for {self._where} ({_describe(err)}); give Home "
                "Assistant a certificate this system trusts, or use its http:// LAN address",
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise HassError(
                "connect",
                f"cannot connect to {self._where} ({_describe(err)}); "
                "check the Home Assistant URL and that it is reachable from here",
            ) from None
        except _Closed as err:
            raise HassError(
                "closed",
                f"{self._where} ended the WebSocket session early ({err}); "
                "is this Home Assistant's URL?",
            ) from None
        except _CommandError as err:
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
                "unexpected", f"unexpected error fetching from {self._where}: {_describe(err)}"
            ) from None

    def _handshake_message(self, status: int) -> str:
        if self._supervisor and status in (401, 403):
            return (
                "the Supervisor refused the add-on's Home Assistant API access "
                f"(HTTP {status}); the add-on needs `homeassistant_api: true`"
            )
        return (
            f"{self._where} refused the WebSocket connection (HTTP {status}); "
            "is this Home Assistant's URL (e.g. http://homeassistant.local:8123)?"
        )

    async def _fetch_unbounded(self) -> tuple[str, ...]:
        async with self._session.ws_connect(
            self._url,
            timeout=aiohttp.ClientWSTimeout(ws_close=min(_CLOSE_TIMEOUT, self._timeout)),
            max_msg_size=_MAX_MESSAGE,
        ) as ws:
            await self._authenticate(ws)
            return tuple(await self._collect(_Commands(ws)))

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        first = await _receive(ws)
        if first.get("type") != "auth_required":
            raise HassDataError(f"expected auth_required first, got {quoted(first.get('type'))}")
        await ws.send_json({"type": "auth", "access_token": self._token})
        answer = await _receive(ws)
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

    async def _collect(self, commands: _Commands) -> list[str]:
        # Sequential on purpose: five small round trips every few minutes, and a reply can
        # then only ever be the one we are waiting for.
        try:
            exposed: Any = await commands.run("homeassistant/expose_entity/list")
        except _CommandError as err:
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
        exposed_ids = _exposed_ids(exposed)
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


class _Commands:
    """Home Assistant's command phase: numbered requests, results matched by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 1

    async def run(self, command: str, **fields: Any) -> Any:
        ident = self._next_id
        self._next_id += 1
        await self._ws.send_json({"id": ident, "type": command, **fields})
        while True:
            message = await _receive(self._ws)
            # Nothing else should arrive (we subscribe to nothing), but an id that is not ours
            # is no reason to fail.
            if message.get("id") != ident or message.get("type") != "result":
                continue
            if message.get("success") is True:
                return message.get("result")
            error = message.get("error")
            error = error if isinstance(error, Mapping) else {}
            raise _CommandError(
                command, str(error.get("code", "error")), str(error.get("message", ""))
            )

    async def optional(self, command: str, **fields: Any) -> Any:
        """A command some Home Assistant versions lack or refuse: None when they do."""
        try:
            return await self.run(command, **fields)
        except _CommandError as err:
            _LOGGER.debug("Home Assistant names: %s unavailable (%s)", command, err.code)
            return None


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
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
        raise _Closed("closed by the server")
    if message.type is aiohttp.WSMsgType.ERROR:
        raise _Closed(_describe(ws.exception()))
    raise HassDataError(f"an unexpected {message.type.name} message")


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "connection lost"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__
