"""The engine registry: plugins found by entry point, checked, ordered; a broken one is one
clear line."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest

from wyoming_bodhi import settings
from wyoming_bodhi.declarations import SettingsError
from wyoming_bodhi.engines import registry
from wyoming_bodhi.engines.plugin import API_VERSION, EngineSpec
from wyoming_bodhi.engines.registry import GROUP, PluginError, discover

from . import engine_fixtures as fixtures


def entry(name: str, attribute: str, module: str = "tests.engine_fixtures") -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=f"{module}:{attribute}", group=GROUP)


BODHI = entry("bodhi", "ENGINE", "wyoming_bodhi.engines.bodhi.plugin")
IAPP = entry("iapp", "ENGINE", "wyoming_bodhi.engines.iapp.plugin")


def test_the_builtin_engines_are_registered() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text("utf-8"))
    declared = pyproject["project"]["entry-points"][GROUP]
    names = [spec.name for spec in registry.builtin()]
    assert sorted(names) == sorted(declared), (
        f"{names}: the package's entry points are stale; install it again (pip install -e .)"
    )
    assert names[:2] == ["bodhi", "iapp"]  # by priority: Bodhi's model is the default
    assert set(names) <= {spec.name for spec in registry.installed()}


def test_engines_come_in_priority_order_then_by_name() -> None:
    found = discover([entry("echo", "ECHO"), IAPP, entry("alpha", "ALSO_FIRST"), BODHI])
    assert [spec.name for spec in found] == ["alpha", "bodhi", "echo", "iapp"]


def test_only_keeps_the_engines_it_names() -> None:
    assert [spec.name for spec in discover([BODHI, IAPP], only=["iapp"])] == ["iapp"]
    with pytest.raises(PluginError, match="WYOMING_BODHI_ENGINES names acme, which is not"):
        discover([BODHI, IAPP], only=["iapp", "acme"])


@pytest.mark.parametrize(
    ("entry_point", "said"),
    [
        (
            entry("acme", "ENGINE", "tests.engine_fixtures.broken"),
            "engine plugin 'acme' failed to load: ImportError: No module named 'acme_sdk'; "
            "uninstall it, or leave it out with WYOMING_BODHI_ENGINES",
        ),
        (entry("dict", "NOT_A_SPEC"), "tests.engine_fixtures:NOT_A_SPEC is not an EngineSpec"),
        (
            entry("echo", "FUTURE"),
            f"written for engine API 99, and this wyoming-bodhi has {API_VERSION}",
        ),
        (entry("echo", "MISNAMED"), "is named 'Echo Engine': an engine's name is lower case"),
        (entry("other", "ECHO"), "engine plugin 'other' is named 'echo'"),
        (
            entry("nosetting", "NO_SUCH_SETTING"),
            "names 'api_key', which is not one of its settings",
        ),
        (entry("taken", "TAKEN"), "engine plugins 'bodhi' and 'taken' both declare BODHI_API_KEY"),
        (entry("bodhi", "BODHI_AGAIN"), "two engine plugins are named 'bodhi'"),
        (
            entry("echo", "ENGINE", "tests.engine_fixtures.exits"),
            "engine plugin 'echo' failed to load: it called sys.exit('this plugin has had "
            "enough'); uninstall it, or leave it out with WYOMING_BODHI_ENGINES",
        ),
        (
            entry("echo", "ENGINE", "tests.engine_fixtures.interrupts"),
            "engine plugin 'echo' failed to load: KeyboardInterrupt; uninstall it",
        ),
        (
            entry("echo", "ENGINE", "tests.engine_fixtures.base_exception"),
            "engine plugin 'echo' failed to load: Abandon: gave up; uninstall it",
        ),
        (
            entry("echo", "PLAIN_FIELD"),
            "engine plugin 'echo': its settings' field echo_retries is not made with setting()",
        ),
        (
            entry("echo", "BAD_FLAG"),
            "engine plugin 'echo': its setting echo_mode has the flag 'echo-mode': a flag is --",
        ),
        (
            entry("echo", "SAME_FLAG_TWICE"),
            "engine plugin 'echo' declares --echo-url for both echo_url and echo_host",
        ),
        (
            entry("echo", "FAILING_SETTINGS"),
            "engine plugin 'echo' failed to make its settings: ValueError: no settings today",
        ),
        (entry("echo", "WORDY_PRIORITY"), "engine plugin 'echo': its priority is a str, not int"),
        (entry("echo", "NO_AUDIO"), "engine plugin 'echo': its audio is a NoneType, not AudioSpec"),
    ],
)
def test_a_plugin_that_does_not_fit_is_refused_in_one_line(
    entry_point: metadata.EntryPoint, said: str
) -> None:
    with pytest.raises(PluginError) as info:
        discover([BODHI, IAPP, entry_point])
    assert said in str(info.value)
    assert "\n" not in str(info.value)


def test_a_real_ctrl_c_while_a_plugin_loads_is_still_a_ctrl_c() -> None:
    # A plugin's own KeyboardInterrupt is its mistake (above); a SIGINT is the user's.
    with pytest.raises(KeyboardInterrupt):
        discover([BODHI, entry("echo", "ENGINE", "tests.engine_fixtures.ctrl_c")])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_every_installed_engine_s_simulator_loads() -> None:
    # References are strings (the simulators import their engines), so a typo shows only here.
    for spec in registry.installed():
        if spec.simulator is not None:
            assert callable(registry.simulator(spec)), spec.name
    (bad,) = discover([entry("echo", "BAD_SIMULATOR")])
    with pytest.raises(PluginError, match="its simulator tests.engine_fixtures:nothing_here"):
        registry.simulator(bad)
    with pytest.raises(PluginError) as info:
        registry.simulator(fixtures.SIMULATOR_EXITS)
    assert str(info.value) == (
        "engine plugin 'echo' failed to load its simulator tests.engine_fixtures.exits:simulate: "
        "it called sys.exit('this plugin has had enough'); uninstall it, or leave it out with "
        "WYOMING_BODHI_ENGINES=<the engines to use>"
    )


# -- a plugin's mistakes found only once its settings are known: still one line -------------

BUILTIN = (fixtures.BODHI, fixtures.IAPP)


def refusal(attempt: Callable[[], object]) -> str:
    with pytest.raises(PluginError) as info:
        attempt()
    said = str(info.value)
    assert "\n" not in said, said
    return said


@pytest.mark.parametrize(
    ("plugin", "way"),
    [
        (fixtures.echo_with("uri", env="ECHO_URI"), "uri"),
        (fixtures.echo_with("echo_uri", flag="--uri"), "--uri"),
        (fixtures.echo_with("model"), "model"),
        (fixtures.echo_with("echo_where", env="WYOMING_URI"), "WYOMING_URI"),
        (fixtures.echo_with("echo_ca", flag="--bodhi-ca"), "--bodhi-ca"),  # the core's old name
        (fixtures.echo_with("echo_config", flag="--config"), "--config"),  # not a setting
        (fixtures.echo_with("echo_help", flag="--help"), "--help"),
        # Where argparse keeps --health-check's value: --echo-check x would run a health check.
        (fixtures.echo_with("health_check", flag="--echo-check"), "health_check"),
        (fixtures.echo_with("echo_file", env="BODHI_CONFIG"), "BODHI_CONFIG"),
        (fixtures.echo_with("echo_only", env="WYOMING_BODHI_ENGINES"), "WYOMING_BODHI_ENGINES"),
        (fixtures.echo_with("echo_token", env="HASS_TOKEN_FILE"), "HASS_TOKEN_FILE"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_plugin_setting_given_as_a_core_one_is_refused_before_the_parser_is_built(
    plugin: EngineSpec[Any], way: str
) -> None:
    said = (
        f"engine plugin 'echo' declares {way}, which is the server's own; uninstall it, or "
        "leave it out with WYOMING_BODHI_ENGINES=<the engines to use>"
    )
    engines = [*BUILTIN, plugin]
    assert refusal(lambda: settings.build_parser(engines)) == said
    assert refusal(lambda: settings.validate({}, engines)) == said


@pytest.mark.parametrize(
    ("plugin", "said"),
    [
        (
            fixtures.MODELS_FAIL,
            "engine plugin 'echo' failed to list its models: KeyError: 'boom'; uninstall it, or "
            "leave it out with WYOMING_BODHI_ENGINES=<the engines to use>",
        ),
        (fixtures.NO_MODELS, "engine plugin 'echo' offers no model; uninstall it"),
        (fixtures.NAMES_NOT_MODELS, "engine plugin 'echo' offers 'echo-th', which is not a Model"),
        (fixtures.MODEL_TWICE, "engine plugin 'echo' offers the model 'echo-th' twice"),
        (
            fixtures.IAPPS_MODEL,
            "engine plugins 'iapp' and 'echo' both offer the model 'iapp-asrx': a request naming "
            "it could go to either; leave one out with WYOMING_BODHI_ENGINES",
        ),
    ],
)
def test_a_plugin_s_models_that_cannot_be_served_are_refused_in_one_line(
    plugin: EngineSpec[Any], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured or not: whether a plugin fits does not wait for its key to be set.
    engines = [*BUILTIN, plugin]
    for raw in ({}, {"iapp_api_key": "k" * 16}, {"echo_api_key": "k" * 16}):
        assert said in refusal(lambda raw=raw: settings.validate(raw, engines))  # type: ignore[misc]
    monkeypatch.setattr(settings, "installed", lambda: tuple(engines))
    assert said in refusal(lambda: settings.catalogue({}))


def test_a_plugin_s_check_that_fails_is_one_line_naming_it() -> None:
    engines = [*BUILTIN, fixtures.CHECK_FAILS]
    assert refusal(lambda: settings.validate({"echo_api_key": "k" * 16}, engines)) == (
        "engine plugin 'echo' failed to check its settings: KeyError: 'boom'; uninstall it, or "
        "leave it out with WYOMING_BODHI_ENGINES=<the engines to use>"
    )
    engines = [*BUILTIN, fixtures.CHECK_EXITS]
    assert "failed to check its settings: it called sys.exit('bye')" in refusal(
        lambda: settings.validate({"echo_api_key": "k" * 16}, engines)
    )


def test_a_plugin_s_own_refusal_is_its_own_words_on_one_line_without_its_key() -> None:
    key = "echo-key-0c4e1a9b7d"
    with pytest.raises(SettingsError) as info:
        settings.validate({"echo_api_key": key}, [*BUILTIN, fixtures.CHECK_REFUSES])
    assert type(info.value) is SettingsError
    assert str(info.value) == "echo_url ws://127.0.0.1:9\\x0ais not one of ours, key …"


async def test_a_plugin_whose_build_fails_stops_the_start_in_one_line() -> None:
    import aiohttp

    from wyoming_bodhi.pipeline.bridge import Bridge

    engines = [*BUILTIN, fixtures.BUILD_FAILS]
    key = "echo-key-0c4e1a9b7d"
    async with aiohttp.ClientSession() as http:
        configured = settings.validate({"echo_api_key": key}, engines)
        assert refusal(lambda: Bridge(configured, http)) == (
            "engine plugin 'echo' failed to build its engine: KeyError: 'boom'; uninstall it, "
            "or leave it out with WYOMING_BODHI_ENGINES=<the engines to use>"
        )
        wrong = settings.validate({"echo_api_key": key}, [*BUILTIN, fixtures.BUILD_GIVES_NO_ENGINE])
        assert refusal(lambda: Bridge(wrong, http)) == (
            "engine plugin 'echo': its build gave object, which is not an engine named 'echo'; "
            "uninstall it, or leave it out with WYOMING_BODHI_ENGINES=<the engines to use>"
        )


@pytest.mark.parametrize(
    ("plugin", "said"),
    [
        (
            fixtures.SIMULATOR_FAILS,
            "engine plugin 'echo' failed to start its simulator: KeyError: 'boom'; uninstall it",
        ),
        (
            fixtures.DEMO_FAILS,
            "engine plugin 'echo' failed to point its settings at its simulator: KeyError: "
            "'boom'; uninstall it",
        ),
    ],
)
async def test_a_plugin_whose_simulator_fails_stops_the_demo_in_one_line(
    plugin: EngineSpec[Any], said: str
) -> None:
    from wyoming_bodhi.simulators.demo import demo_backend

    demo = settings.validate({"demo": True}, [*BUILTIN, plugin])
    with pytest.raises(PluginError) as info:
        async with demo_backend(demo):
            pass
    assert said in str(info.value) and "\n" not in str(info.value)


def test_every_installed_engine_declares_what_the_core_reads() -> None:
    for spec in registry.installed():
        assert isinstance(spec, EngineSpec)
        settings = spec.settings()
        assert spec.models(settings), spec.name
        codes = spec.errors.codes()
        assert f"{spec.name}-error" in codes and f"{spec.name}-timeout" in codes
        assert all(code.startswith(f"{spec.name}-") for code in codes)
        assert spec.errors.code(999) == f"{spec.name}-error"
        assert spec.errors.refused(401).code in codes


async def test_an_engine_declares_whole_file_recognition_exactly_when_it_has_it() -> None:
    # --rest names the engines that have it before any is built: the declaration must agree
    # with what each engine implements.
    import aiohttp

    from wyoming_bodhi.engines.base import WholeFileEngine
    from wyoming_bodhi.engines.plugin import EngineContext

    async with aiohttp.ClientSession() as http:
        context = EngineContext(http, None, "")
        for spec in registry.installed():
            settings = dataclasses.replace(spec.settings(), **{spec.credential: "k" * 16})
            engine = spec.build(settings, context)
            assert isinstance(engine, WholeFileEngine) == spec.capabilities.whole_file, spec.name


def test_the_troubleshooting_table_covers_every_code_of_every_shipped_engine() -> None:
    # The codes are each engine's error table's: a closed set, so the table can name them all.
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "failure-behaviour.md").read_text("utf-8")
    table = doc[doc.index("## Troubleshooting") :]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    documented = {code.strip() for cell in first_cells for code in cell.replace("`", "").split(",")}
    missing = [
        code
        for spec in registry.builtin()
        for code in spec.errors.codes()
        if code not in documented
    ]
    assert not missing, f"docs/failure-behaviour.md has no row for {missing}"
