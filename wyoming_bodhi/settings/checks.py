"""The checks across settings, once each value is valid on its own: the same rules for every
engine, over what each declares (its credential, URL setting, models, frame lengths and
capabilities), then each configured engine's own rules, then the core's."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..addresses import WILDCARD_HOSTS, is_loopback, tcp_host_port
from ..declarations import SettingsError
from ..declarations.validators import CREDENTIALS_HELP
from ..engines import registry
from ..engines.plugin import CheckContext, EngineSpec

if TYPE_CHECKING:
    from . import EngineEntry, Settings

Where = Callable[[str], str]


TRY_DEMO = "or try --demo"
"""The server's way out of having no engine; a client that talks to an engine itself has
none, and says its own (:func:`..clients.direct.engine_settings`)."""


def no_engine(engines: Sequence[EngineSpec[Any]]) -> str:
    """What to set, engine by engine, when none is configured."""
    ways: list[str] = []
    for engine in engines:
        credential = engine.declaration(engine.credential)
        more = (
            f"; or {credential.env}_FILE, or {credential.name} in a config file" if not ways else ""
        )
        ways.append(f"{credential.env} ({engine.title}: {engine.languages}{more})")
    either = {1: "", 2: ", or both"}.get(len(ways), ", or several")
    return f"no engine configured: set {', '.join(ways)}{either}; {CREDENTIALS_HELP}, {TRY_DEMO}"


def checked(settings: Settings, where: Where) -> Settings:
    """``settings`` with the default model resolved; raises :class:`SettingsError` naming the
    first problem."""
    # Every engine's, configured or not: a plugin that does not fit stops the start before
    # its key is set, not on the day it is.
    offered = {
        entry.plugin.name: registry.models(entry.plugin, entry.settings)
        for entry in settings.engines
    }
    registry.check_models((entry.plugin, offered[entry.plugin.name]) for entry in settings.engines)
    configured = settings.configured
    if not configured:
        raise SettingsError(no_engine([entry.plugin for entry in settings.engines]))
    models = [model.name for entry in configured for model in offered[entry.plugin.name]]
    if not settings.model:
        # The first configured engine's (in priority order) first model.
        settings = dataclasses.replace(settings, model=models[0])
    _check_model(settings, configured, models, where)
    # Rule by rule rather than engine by engine: the first problem named is the same
    # whatever the engines' order.
    for rule in (_check_frames, _check_endpointing, _check_hotwords, _check_url):
        for entry in configured:
            rule(settings, entry, where)
    _check_core(settings, where)
    for entry in configured:
        with registry.blamed(entry.plugin, "check its settings", entry.settings):
            entry.plugin.check(entry.settings, CheckContext(settings.demo, where))
    return settings


def _check_model(
    settings: Settings, configured: Sequence[EngineEntry[Any]], models: list[str], where: Where
) -> None:
    if settings.model in models:
        return
    hints = [entry.plugin.model_hint for entry in configured if entry.plugin.model_hint]
    hint = f" ({'; '.join(hints)})" if hints else ""
    raise SettingsError(
        f"invalid model {settings.model!r} ({where('model')}): not a model of a configured "
        f"engine; valid models: {', '.join(models)}{hint}"
    )


# The rules every engine is held to, from what it declares.


def _check_frames(settings: Settings, entry: EngineEntry[Any], where: Where) -> None:
    plugin = entry.plugin
    low, high = plugin.audio.frame_ms
    if settings.chunk_ms is not None and not low <= settings.chunk_ms <= high:
        raise SettingsError(
            f"invalid chunk_ms {settings.chunk_ms} ({where('chunk_ms')}): {plugin.title} takes "
            f"frames of {low} to {high} ms"
        )


def _check_endpointing(settings: Settings, entry: EngineEntry[Any], where: Where) -> None:
    plugin = entry.plugin
    if settings.endpointing and not plugin.capabilities.ends_phrases:
        raise SettingsError(
            f"invalid endpointing ({where('endpointing')}): {plugin.title} does not complete a "
            "phrase on silence by itself, so it cannot end a voice command; turn endpointing "
            f"off, or serve {plugin.languages} from a separate instance without it"
        )


def _check_hotwords(settings: Settings, entry: EngineEntry[Any], where: Where) -> None:
    policy = entry.plugin.capabilities.hotwords
    if policy is None:
        return
    for hotword in settings.hotwords:
        if hotword.score is not None and hotword.score > policy.max_score:
            raise SettingsError(
                f"invalid hotwords ({where('hotwords')}): {entry.plugin.title} takes scores "
                f"up to {policy.max_score:g}, and {hotword.phrase!r} has {hotword.score:g}"
            )


def _check_url(settings: Settings, entry: EngineEntry[Any], where: Where) -> None:
    name = entry.plugin.url_setting
    url_text = str(getattr(entry.settings, name))
    url = urlsplit(url_text)
    if url.scheme == "ws" and not is_loopback(url.hostname or "") and not settings.allow_insecure:
        raise SettingsError(
            f"refusing {name} {url_text} ({where(name)}): ws:// would send the API key and "
            "your audio unencrypted over the network; use wss://, or set allow_insecure "
            "(--allow-insecure) if you really mean it"
        )


def _check_core(settings: Settings, where: Where) -> None:
    if bool(settings.hass_url) != bool(settings.hass_token):
        given, missing = (
            ("hass_url", "hass_token") if settings.hass_url else ("hass_token", "hass_url")
        )
        raise SettingsError(
            f"missing {missing}: Home Assistant's names need both hass_url and hass_token (a "
            f"long-lived access token, also HASS_TOKEN_FILE), and only {given} is set "
            f"({where(given)})"
        )
    if settings.zeroconf is not None and not settings.uri.startswith("tcp://"):
        raise SettingsError(
            f"invalid zeroconf ({where('zeroconf')}): zeroconf advertises a TCP port, but uri "
            f"is {settings.uri} ({where('uri')})"
        )
    _check_ports(settings, where)


def _check_ports(settings: Settings, where: Where) -> None:
    """The Wyoming port, the status page's and the metrics listener's must differ where
    their addresses overlap: else the second to bind fails with "already in use", which
    sends one looking for another program."""
    listeners = [
        (name, tcp_host_port(str(uri)))
        for name, uri in (
            ("uri", settings.uri),
            ("http_uri", settings.http_uri),
            ("metrics_uri", settings.metrics_uri),
        )
        if uri
    ]
    for index, (name, address) in enumerate(listeners):
        for other, other_address in listeners[:index]:
            if address is None or other_address is None:
                continue
            (host, port), (other_host, other_port) = address, other_address
            overlap = host == other_host or {host, other_host} & WILDCARD_HOSTS
            if port and port == other_port and overlap:
                raise SettingsError(
                    f"{name} ({where(name)}) and {other} ({where(other)}) both name port "
                    f"{port}: give each its own (Wyoming 10300, the status page 10301, "
                    "metrics 10302 by convention)"
                )
