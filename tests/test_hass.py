"""Home Assistant names as hotwords: the pure core, and the fetcher against a fake Home
Assistant speaking the real WebSocket API over loopback."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wyoming.client import AsyncTcpClient

from wyoming_bodhi.homeassistant.hass_names import HassNames
from wyoming_bodhi.homeassistant.names import HassDataError, collect_names
from wyoming_bodhi.homeassistant.websocket_api import websocket_url
from wyoming_bodhi.settings import SettingsError, load

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    SelfSigned,
    bridge_command,
    clean_env,
    free_port,
    process,
    running_simulator,
    transcribe,
    wait_for_port,
)
from .signals import encode, utterances

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiI3ZjNhOWMyMSJ9.Zk9xQ2hTbVd4"
"""Shaped as Home Assistant's tokens are (a JWT): no word of a message is a piece of it."""
WAIT = 5.0  # upper bound on every wait; none of them should come close

# --------------------------------------------------------------------------------------------
# Realistic payloads, shaped like Home Assistant 2025's answers.


def _state(entity_id: str, friendly_name: str | None, **attributes: Any) -> dict[str, Any]:
    if friendly_name is not None:
        attributes["friendly_name"] = friendly_name
    return {
        "entity_id": entity_id,
        "state": "off",
        "attributes": attributes,
        "last_changed": "2025-01-01T00:00:00+00:00",
        "last_updated": "2025-01-01T00:00:00+00:00",
        "context": {"id": "01J0000000000000000000000", "parent_id": None, "user_id": None},
    }


def _entry(
    entity_id: str,
    aliases: list[str | None] | None = None,
    hidden_by: str | None = None,
    entity_category: str | None = None,
) -> dict[str, Any]:
    """An extended registry entry, as config/entity_registry/get_entries gives it."""
    return {
        "entity_id": entity_id,
        "aliases": aliases or [],
        "area_id": None,
        "categories": {},
        "config_entry_id": "abc",
        "device_id": None,
        "disabled_by": None,
        "entity_category": entity_category,
        "has_entity_name": False,
        "hidden_by": hidden_by,
        "icon": None,
        "id": entity_id.replace(".", "_"),
        "labels": [],
        "name": None,
        "options": {},
        "original_name": None,
        "platform": "demo",
        "translation_key": None,
        "unique_id": entity_id,
        "capabilities": None,
        "device_class": None,
        "original_device_class": None,
        "original_icon": None,
    }


STATES = [
    _state("light.rasoi_ki_batti", "Rasoi ki batti"),
    _state("fan.bedroom_fan", "Bedroom fan"),
    _state("switch.geyser", "Geyser"),  # exposed to Google, not to Assist
    _state("light.hidden_lamp", "Hidden lamp"),  # hidden, and so never exposed
    _state("light.kitchen_main", "KITCHEN"),  # the same as an area alias, up to case
    _state("media_player.living_room_tv", "  "),  # no usable friendly name
    _state("sensor.wifi_signal", "Wifi signal"),  # a diagnostic entity
]

EXPOSED = {
    "exposed_entities": {
        "light.rasoi_ki_batti": {"conversation": True, "cloud.alexa": False},
        "fan.bedroom_fan": {"conversation": True},
        "switch.geyser": {"conversation": False, "cloud.google_assistant": True},
        "light.hidden_lamp": {},
        "light.kitchen_main": {"conversation": True},
        "media_player.living_room_tv": {"conversation": True},
        "sensor.wifi_signal": {"conversation": False},
        "light.removed_yesterday": {"conversation": True},  # exposed, but no state any more
    }
}

REGISTRY = {
    "light.rasoi_ki_batti": _entry("light.rasoi_ki_batti", ["Kitchen light", None, "  Batti "]),
    "fan.bedroom_fan": _entry("fan.bedroom_fan", ["Pankha"]),
    "switch.geyser": _entry("switch.geyser", ["Water heater"]),
    "light.hidden_lamp": _entry("light.hidden_lamp", hidden_by="user"),
    "light.kitchen_main": _entry("light.kitchen_main", ["Rasoi light"]),
    "media_player.living_room_tv": _entry("media_player.living_room_tv"),
    "sensor.wifi_signal": _entry("sensor.wifi_signal", entity_category="diagnostic"),
}

AREAS = [
    {
        "area_id": "rasoi",
        "name": "Rasoi",
        "aliases": ["rasoi ghar", "Kitchen"],
        "floor_id": "ground",
    },
    {"area_id": "bedroom", "name": "Bedroom", "aliases": [], "floor_id": "first"},
    {"area_id": "blank", "name": "   ", "aliases": ["", "  "], "floor_id": None},
    {"area_id": "kitchen", "name": "kitchen", "aliases": [], "floor_id": "ground"},
]

FLOORS = [
    {"floor_id": "ground", "name": "Ground floor", "aliases": ["Neeche"], "level": 0, "icon": None},
    {
        "floor_id": "first",
        "name": "Pehli manzil",
        "aliases": ["First floor"],
        "level": 1,
        "icon": None,
    },
]

AREA_AND_FLOOR_NAMES = [
    "Rasoi", "Kitchen", "rasoi ghar", "Bedroom",
    "Ground floor", "Neeche", "Pehli manzil", "First floor",
]  # fmt: skip

EXPECTED = [
    *AREA_AND_FLOOR_NAMES,
    "Bedroom fan", "Pankha",
    "Rasoi light",  # KITCHEN itself is the area alias "Kitchen" again
    "living room tv",  # Home Assistant's own name for a state without a friendly name
    "Rasoi ki batti", "Batti", "Kitchen light",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# The pure core


def test_collect_names_orders_dedupes_and_keeps_only_assist_exposed() -> None:
    names = collect_names(
        exposed=EXPOSED, states=STATES, areas=AREAS, floors=FLOORS, registry=REGISTRY
    )
    assert names == EXPECTED
    for never in ("Geyser", "Water heater", "Hidden lamp", "Wifi signal", "KITCHEN", "kitchen"):
        assert never not in names


def test_collect_names_does_not_depend_on_home_assistants_list_order() -> None:
    shuffled = [STATES[i] for i in (6, 3, 0, 5, 1, 4, 2)]
    assert (
        collect_names(
            exposed=EXPOSED, states=shuffled, areas=AREAS, floors=FLOORS, registry=REGISTRY
        )
        == EXPECTED
    )


def test_collect_names_limit_keeps_the_first() -> None:
    common = dict(exposed=EXPOSED, states=STATES, areas=AREAS, floors=FLOORS, registry=REGISTRY)
    assert collect_names(**common, limit=5) == EXPECTED[:5]
    assert collect_names(**common, limit=0) == []
    assert collect_names(**common, limit=1000) == EXPECTED


def test_collect_names_without_exposure_uses_every_visible_entity() -> None:
    # Home Assistant before 2023.5: no expose list; the registry list has no aliases.
    registry = [{k: v for k, v in entry.items() if k != "aliases"} for entry in REGISTRY.values()]
    names = collect_names(exposed=None, states=STATES, areas=AREAS, floors=None, registry=registry)
    assert names == [
        "Rasoi", "Kitchen", "rasoi ghar", "Bedroom",
        "Bedroom fan", "Geyser", "living room tv", "Rasoi ki batti",
    ]  # fmt: skip


def test_collect_names_reads_the_display_registry_too() -> None:
    display = {
        "entity_categories": {"0": "config", "1": "diagnostic"},
        "entities": [
            {"ei": "light.hidden_lamp", "pl": "demo", "hb": True},
            {"ei": "sensor.wifi_signal", "pl": "demo", "ec": 1},
            {"ei": "switch.geyser", "pl": "demo", "ec": 0},  # config: index 0 still counts
        ],
    }
    names = collect_names(exposed=None, states=STATES, areas=[], registry=display)
    assert names == ["Bedroom fan", "KITCHEN", "living room tv", "Rasoi ki batti"]


def test_collect_names_with_nothing_exposed_is_areas_and_floors() -> None:
    names = collect_names(
        exposed={"exposed_entities": {}}, states=STATES, areas=AREAS, floors=FLOORS
    )
    assert names == AREA_AND_FLOOR_NAMES


def test_collect_names_skips_odd_records_but_rejects_wrong_shapes() -> None:
    states = [*STATES, "not a state", {"entity_id": 42}, {"entity_id": "light.x", "attributes": 3}]
    exposed = {"exposed_entities": {"light.x": {"conversation": True}, "light.y": "yes"}}
    assert collect_names(exposed=exposed, states=states, areas=[None, {"name": 7}]) == ["x"]
    with pytest.raises(HassDataError, match="get_states"):
        collect_names(exposed=EXPOSED, states={"oops": 1}, areas=AREAS)
    with pytest.raises(HassDataError, match="area_registry"):
        collect_names(exposed=EXPOSED, states=STATES, areas=None)
    with pytest.raises(HassDataError, match="exposed_entities"):
        collect_names(exposed=["light.x"], states=STATES, areas=AREAS)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://homeassistant.local:8123", "http://homeassistant.local:8123/api/websocket"),
        ("http://homeassistant.local:8123/", "http://homeassistant.local:8123/api/websocket"),
        ("https://ha.example.com", "https://ha.example.com/api/websocket"),
        ("http://supervisor/core", "http://supervisor/core/api/websocket"),
        ("ws://10.0.0.2:8123/api/websocket", "ws://10.0.0.2:8123/api/websocket"),
    ],
)
def test_websocket_url(given: str, expected: str) -> None:
    assert str(websocket_url(given)) == expected


# --------------------------------------------------------------------------------------------
# A fake Home Assistant


class FakeHass:
    """Home Assistant's WebSocket API: the auth phase, then the read commands we use."""

    def __init__(self) -> None:
        self.token = TOKEN
        self.admin = True
        self.states = copy.deepcopy(STATES)
        self.exposed = copy.deepcopy(EXPOSED)
        self.registry = copy.deepcopy(REGISTRY)
        self.areas = copy.deepcopy(AREAS)
        self.floors = copy.deepcopy(FLOORS)
        self.unknown: set[str] = set()  # commands this "version" does not have
        self.errors: dict[str, dict[str, str]] = {}  # command -> error it answers with
        self.results: dict[str, Any] = {}  # command -> a result to answer with instead
        self.swallow = False  # take commands and never answer them
        self.received: list[dict[str, Any]] = []
        self.auth_attempts = 0
        self.swallowed = asyncio.Event()

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "auth_required", "ha_version": "2025.1.0"})
        auth = await ws.receive_json()
        self.received.append(auth)
        self.auth_attempts += 1
        if auth.get("type") != "auth" or auth.get("access_token") != self.token:
            await ws.send_json(
                {"type": "auth_invalid", "message": "Invalid access token or password"}
            )
            await ws.close()
            return ws
        await ws.send_json({"type": "auth_ok", "ha_version": "2025.1.0"})
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            command = json.loads(message.data)
            self.received.append(command)
            if self.swallow:
                self.swallowed.set()
                continue
            await ws.send_json(self.answer(command))
        return ws

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        ident, kind = command["id"], command["type"]
        if kind in self.unknown or kind not in self._commands():
            return self._error(ident, "unknown_command", "Unknown command.")
        if kind in self.errors:
            return {"id": ident, "type": "result", "success": False, "error": self.errors[kind]}
        if kind == "homeassistant/expose_entity/list" and not self.admin:
            return self._error(ident, "unauthorized", "Unauthorized")
        result = self.results[kind] if kind in self.results else self._commands()[kind](command)
        return {"id": ident, "type": "result", "success": True, "result": result}

    def _commands(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "homeassistant/expose_entity/list": lambda _: self.exposed,
            "get_states": lambda _: self.states,
            "config/entity_registry/get_entries": lambda c: {
                entity_id: self.registry.get(entity_id) for entity_id in c["entity_ids"]
            },
            "config/entity_registry/list": lambda _: [
                {k: v for k, v in e.items() if k != "aliases"} for e in self.registry.values()
            ],
            "config/area_registry/list": lambda _: self.areas,
            "config/floor_registry/list": lambda _: self.floors,
        }

    @staticmethod
    def _error(ident: int, code: str, message: str) -> dict[str, Any]:
        error = {"code": code, "message": message}
        return {"id": ident, "type": "result", "success": False, "error": error}

    def commands_received(self) -> list[str]:
        return [m["type"] for m in self.received if "id" in m]


class Served:
    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url
        self._closed = False

    async def close(self) -> None:
        """Take the fake Home Assistant down (it is "restarting", or gone)."""
        if not self._closed:
            self._closed = True
            await self.runner.cleanup()


@asynccontextmanager
async def serving(
    fake: FakeHass, prefix: str = "", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Served]:
    app = web.Application()
    app.router.add_get(f"{prefix}/api/websocket", fake.websocket)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    served = Served(runner, f"{scheme}://127.0.0.1:{port}{prefix}")
    try:
        yield served
    finally:
        await served.close()


@pytest.fixture
def fake() -> FakeHass:
    return FakeHass()


@pytest.fixture
async def url(fake: FakeHass) -> AsyncIterator[str]:
    async with serving(fake) as served:
        yield served.url


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, every level: the token must be nowhere
    return caplog


def assert_token_nowhere(logs: pytest.LogCaptureFixture, names: HassNames) -> None:
    assert TOKEN not in logs.text
    for record in logs.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.exc_info)
    assert TOKEN not in repr(names)
    assert TOKEN not in str(names.last_error)


def warnings(logs: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in logs.records
        if r.name.startswith("wyoming_bodhi.homeassistant.") and r.levelno == logging.WARNING
    ]


async def next_update(names: HassNames, until: Callable[[], bool]) -> None:
    """Wait, boundedly, for a successful fetch after which ``until()`` holds."""
    async with asyncio.timeout(WAIT):
        while not until():
            names.updated.clear()
            await names.updated.wait()


async def failures(names: HassNames, count: int) -> None:
    async with asyncio.timeout(WAIT):
        for _ in range(count):
            names.failed.clear()
            await names.failed.wait()


# --------------------------------------------------------------------------------------------
# The fetcher


async def test_fetches_and_exposes_names(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    names = HassNames(http, url, TOKEN)
    assert names.names == ()
    names.start()
    try:
        await asyncio.wait_for(names.updated.wait(), WAIT)
        assert names.names == tuple(EXPECTED)
        assert names.last_error is None
    finally:
        await names.stop()
    assert fake.received[0] == {"type": "auth", "access_token": TOKEN}
    assert [m["id"] for m in fake.received[1:]] == [1, 2, 3, 4, 5]
    assert fake.commands_received() == [
        "homeassistant/expose_entity/list",
        "get_states",
        "config/entity_registry/get_entries",
        "config/area_registry/list",
        "config/floor_registry/list",
    ]
    # Aliases are asked for only where they can matter: the entities exposed to Assist.
    assert fake.received[3]["entity_ids"] == sorted(
        e for e, s in EXPOSED["exposed_entities"].items() if s.get("conversation")
    )
    assert not warnings(logs)
    assert f"Using {len(EXPECTED)} names from Home Assistant" in logs.text
    assert_token_nowhere(logs, names)


async def test_add_on_url_through_the_supervisor(
    http: aiohttp.ClientSession, fake: FakeHass
) -> None:
    async with serving(fake, prefix="/core") as served:
        names = HassNames(http, served.url, TOKEN)
        assert await names.refresh() is None
    assert names.names == tuple(EXPECTED)


async def test_refresh_picks_up_changes(
    http: aiohttp.ClientSession, fake: FakeHass, url: str
) -> None:
    names = HassNames(http, url, TOKEN, refresh_seconds=0.05)
    names.start()
    try:
        await next_update(names, lambda: bool(names.names))
        fake.areas.append({"area_id": "pooja", "name": "Pooja ghar", "aliases": []})
        fake.states.append(_state("light.diya", "Diya"))
        fake.exposed["exposed_entities"]["light.diya"] = {"conversation": True}
        fake.exposed["exposed_entities"]["fan.bedroom_fan"] = {"conversation": False}
        await next_update(names, lambda: "Diya" in names.names)
        assert "Pooja ghar" in names.names
        assert "Bedroom fan" not in names.names and "Pankha" not in names.names
    finally:
        await names.stop()


async def test_wrong_token_keeps_names_empty_and_says_what_to_do(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    fake.token = "the-real-token"
    names = HassNames(http, url, TOKEN, refresh_seconds=0.05)
    names.start()
    try:
        await failures(names, 3)
    finally:
        await names.stop()
    assert names.names == ()
    assert fake.auth_attempts >= 3 and fake.commands_received() == []
    assert warnings(logs) == [
        "Home Assistant names: Home Assistant rejected the access token: create a long-lived "
        "access token in your Home Assistant profile (Security tab) and set it as "
        "hass_token / HASS_TOKEN"
    ]  # once, however many times it failed
    assert_token_nowhere(logs, names)


async def test_server_down_fails_soft(
    http: aiohttp.ClientSession, logs: pytest.LogCaptureFixture
) -> None:
    names = HassNames(http, f"http://127.0.0.1:{free_port()}", TOKEN, timeout=2)
    error = await asyncio.wait_for(names.refresh(), WAIT)
    assert error is not None and error.kind == "connect"
    assert names.names == () and names.last_error and "cannot connect" in names.last_error
    assert len(warnings(logs)) == 1 and "check the Home Assistant URL" in warnings(logs)[0]
    assert_token_nowhere(logs, names)


async def test_server_that_never_answers_is_bounded_by_the_timeout(
    http: aiohttp.ClientSession, logs: pytest.LogCaptureFixture
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        names = HassNames(http, f"http://127.0.0.1:{port}", TOKEN, timeout=0.3)
        error = await asyncio.wait_for(names.refresh(), WAIT)
        for writer in held:
            writer.close()
    assert held, "the client never even connected"
    assert error is not None and error.kind == "timeout"
    assert "did not answer within 0.3 s" in warnings(logs)[0]
    assert names.names == ()


async def test_commands_that_never_answer_are_bounded_by_the_timeout(
    http: aiohttp.ClientSession, fake: FakeHass, url: str
) -> None:
    fake.swallow = True
    names = HassNames(http, url, TOKEN, timeout=0.3)
    error = await asyncio.wait_for(names.refresh(), WAIT)
    assert error is not None and error.kind == "timeout"


@pytest.mark.parametrize(
    ("breakage", "kind", "hint"),
    [
        ("command", "command", "refused get_states: home_assistant_error: Not now"),
        ("malformed", "malformed", "get_states answered with dict, not a list"),
        ("token", "auth", "rejected the access token"),
        ("down", "connect", "cannot connect"),
    ],
)
async def test_a_failure_after_a_success_keeps_the_cached_names(
    http: aiohttp.ClientSession,
    fake: FakeHass,
    logs: pytest.LogCaptureFixture,
    breakage: str,
    kind: str,
    hint: str,
) -> None:
    async with serving(fake) as served:
        names = HassNames(http, served.url, TOKEN, refresh_seconds=0.05)
        names.start()
        try:
            await next_update(names, lambda: bool(names.names))
        finally:
            await names.stop()
        if breakage == "command":
            fake.errors["get_states"] = {"code": "home_assistant_error", "message": "Not now"}
        elif breakage == "malformed":
            fake.results["get_states"] = {"light.x": "on"}
        elif breakage == "token":
            fake.token = "rotated"
        else:
            await served.close()
        names.start()
        try:
            await failures(names, 3)
        finally:
            await names.stop()
        error = await names.refresh()
    assert error is not None and error.kind == kind
    assert names.names == tuple(EXPECTED)
    assert names.last_error is not None and hint in names.last_error
    [warning] = warnings(logs)  # three failures, one warning
    assert hint in warning and f"keeping the {len(EXPECTED)} names fetched before" in warning
    assert_token_nowhere(logs, names)


async def test_recovery_is_logged_and_a_new_outage_warns_again(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    names = HassNames(http, url, TOKEN)
    fake.errors["config/area_registry/list"] = {"code": "unknown_error", "message": "boom"}
    assert (await names.refresh()) is not None
    assert (await names.refresh()) is not None
    del fake.errors["config/area_registry/list"]
    assert await names.refresh() is None
    fake.errors["config/area_registry/list"] = {"code": "unknown_error", "message": "boom"}
    assert (await names.refresh()) is not None
    assert len(warnings(logs)) == 2
    infos = [r for r in logs.records if r.levelno == logging.INFO and "Using" in r.getMessage()]
    assert len(infos) == 1


async def test_server_text_is_redacted(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    # A broken proxy echoing our message back must not get the token into our logs.
    fake.errors["get_states"] = {"code": "invalid_format", "message": f"bad: {TOKEN}"}
    names = HassNames(http, url, TOKEN)
    error = await names.refresh()
    assert error is not None and TOKEN not in str(error) and TOKEN not in repr(error)
    assert await names.refresh() is not None  # the repeat goes to DEBUG, redacted too
    assert names.last_error == "Home Assistant refused get_states: invalid_format: bad: …"
    assert_token_nowhere(logs, names)


async def test_a_closed_session_fails_soft(
    fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as session:
        pass
    names = HassNames(session, url, TOKEN)
    error = await names.refresh()
    assert error is not None and error.kind == "unexpected"
    assert names.names == ()


async def test_older_home_assistant_uses_every_visible_entity(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    # Before 2023.5 there is no expose list, before 2024.4 no floors.
    fake.unknown = {"homeassistant/expose_entity/list", "config/floor_registry/list"}
    names = HassNames(http, url, TOKEN)
    assert await names.refresh() is None
    assert await names.refresh() is None
    assert names.names == (
        "Rasoi", "Kitchen", "rasoi ghar", "Bedroom",
        "Bedroom fan", "Geyser", "living room tv", "Rasoi ki batti",
    )  # fmt: skip
    assert "config/entity_registry/list" in fake.commands_received()
    [warning] = warnings(logs)
    assert "predates per-assistant exposure" in warning


async def test_non_admin_token_uses_only_areas_and_floors(
    http: aiohttp.ClientSession, fake: FakeHass, url: str, logs: pytest.LogCaptureFixture
) -> None:
    fake.admin = False
    names = HassNames(http, url, TOKEN)
    assert await names.refresh() is None
    assert names.names == tuple(AREA_AND_FLOOR_NAMES)
    assert "config/entity_registry/get_entries" not in fake.commands_received()
    [warning] = warnings(logs)
    assert "not an administrator" in warning


async def test_missing_alias_command_still_gives_friendly_names(
    http: aiohttp.ClientSession, fake: FakeHass, url: str
) -> None:
    fake.unknown = {"config/entity_registry/get_entries"}
    names = HassNames(http, url, TOKEN)
    assert await names.refresh() is None
    assert "Rasoi ki batti" in names.names and "Pankha" not in names.names


async def test_stop_ends_the_task_promptly_mid_fetch(
    http: aiohttp.ClientSession, fake: FakeHass, url: str
) -> None:
    fake.swallow = True
    names = HassNames(http, url, TOKEN, timeout=60)
    before = asyncio.all_tasks()
    names.start()
    (task,) = asyncio.all_tasks() - before
    await asyncio.wait_for(fake.swallowed.wait(), WAIT)
    await asyncio.wait_for(names.stop(), 1.5)
    assert task.done()
    assert names.names == ()


async def test_stop_ends_the_task_promptly_between_fetches(
    http: aiohttp.ClientSession, url: str
) -> None:
    names = HassNames(http, url, TOKEN, refresh_seconds=600)
    before = asyncio.all_tasks()
    names.start()
    names.start()  # idempotent: still one task
    (task,) = asyncio.all_tasks() - before
    await asyncio.wait_for(names.updated.wait(), WAIT)
    await asyncio.wait_for(names.stop(), 1.5)
    assert task.done()
    await names.stop()  # and again is harmless
    assert names.names == tuple(EXPECTED)  # the cache outlives the task


async def test_https_certificates_are_verified(
    http: aiohttp.ClientSession,
    fake: FakeHass,
    self_signed: SelfSigned,
    logs: pytest.LogCaptureFixture,
) -> None:
    async with serving(fake, ssl_context=self_signed.server_context()) as served:
        names = HassNames(http, served.url, TOKEN)
        error = await names.refresh()
    assert error is not None and error.kind == "tls"
    assert "TLS verification failed" in warnings(logs)[0]
    # The handshake failed before any HTTP, so the token never left this process.
    assert fake.auth_attempts == 0
    assert_token_nowhere(logs, names)


def test_bad_intervals_are_refused() -> None:
    session: Any = object()
    with pytest.raises(ValueError):
        HassNames(session, "http://h", TOKEN, refresh_seconds=0)
    with pytest.raises(ValueError):
        HassNames(session, "http://h", TOKEN, timeout=-1)


# --------------------------------------------------------------------------------------------
# Through the server: the names reach Bodhi's config, and a request never waits for them.


async def _request_until(port: int, done: Callable[[], bool]) -> None:
    audio = encode(utterances(16000, count=1))
    async with asyncio.timeout(WAIT * 2):
        while True:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                exchange = await transcribe(client, audio)
            assert exchange.types[-1] == "transcript-stop"
            if done():
                return


async def test_home_assistant_names_become_hotwords(fake: FakeHass, url: str) -> None:

    port = free_port()
    async with running_simulator(texts=["batti jalao"]) as simulator:
        env = clean_env(
            BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, HASS_URL=url, HASS_TOKEN=TOKEN
        )
        args = bridge_command(port, simulator.url, "--hotword", "geyser", "--debug")
        with process(args, env) as server:
            await wait_for_port(port, server)

            def has_names() -> bool:
                config = simulator.connections[-1].config or {}
                return len(config.get("hotwords", [])) > 1

            await _request_until(port, has_names)
            server.terminate()
            log, _ = server.communicate(timeout=5)
    hotwords = simulator.connections[-1].config["hotwords"]  # type: ignore[index]
    assert hotwords[0] == {"phrase": "geyser"}  # the user's own first
    assert [h["phrase"] for h in hotwords[1:]] == EXPECTED
    assert all(h["score"] == 2.0 for h in hotwords[1:])
    assert TOKEN not in log


async def test_a_silent_home_assistant_never_delays_a_request(fake: FakeHass, url: str) -> None:

    fake.swallow = True  # takes the commands and never answers
    port = free_port()
    async with running_simulator(texts=["batti jalao"]) as simulator:
        env = clean_env(
            BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID, HASS_URL=url, HASS_TOKEN=TOKEN
        )
        args = bridge_command(port, simulator.url)
        with process(args, env) as server:
            await wait_for_port(port, server)
            await asyncio.wait_for(fake.swallowed.wait(), WAIT)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await _request_until(port, lambda: True)
            elapsed = loop.time() - started
    assert elapsed < 2.5  # 0.8 s of audio and its answer; nothing waits for Home Assistant
    assert "hotwords" not in (simulator.connections[0].config or {})


def test_hass_url_and_token_go_together() -> None:
    env = {"BODHI_API_KEY": "k" * 16, "BODHI_CUSTOMER_ID": "0b7e4a52-9c1d-4f3e-8a6b-2d5c7e9f1a3b"}
    with pytest.raises(
        SettingsError, match=r"missing hass_token: .* only hass_url is set \(--hass-url\)"
    ):
        load(["--hass-url", "http://homeassistant.local:8123"], env)
    with pytest.raises(
        SettingsError, match=r"missing hass_url: .* only hass_token is set \(HASS_TOKEN\)"
    ):
        load([], {**env, "HASS_TOKEN": TOKEN})
    settings = load(
        ["--hass-url", "http://homeassistant.local:8123/"], {**env, "HASS_TOKEN": TOKEN}
    )
    assert settings.hass_url == "http://homeassistant.local:8123"
    assert TOKEN not in repr(settings)
