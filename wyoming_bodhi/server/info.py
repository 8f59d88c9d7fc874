"""Wyoming Info built from the engines' models: answered at once, never touching the network."""

from __future__ import annotations

from collections.abc import Sequence

from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from .. import __version__
from ..engines.base import Engine
from ..pipeline.bridge import Bridge
from ..pipeline.routing import PROGRAM_NAME


def info_event(bridge: Bridge) -> Event:
    """The ``info`` event that answers ``describe``, built once per server and handed to
    each connection: Home Assistant waits about a second for it, so it must never wait on
    anything."""
    return build_info(bridge.engines, bridge.settings.endpointing).event()


def build_info(engines: Sequence[Engine], endpointing: bool = False) -> Info:
    """One ``bodhi`` ASR program with every configured engine's models, all installed.

    One program, because Home Assistant reads only the first ASR program of a server and
    offers the languages of its installed models. "Installed" means usable right now: the
    models live in the cloud, so there is nothing to download.
    """

    def attribution(engine: Engine) -> Attribution:
        return Attribution(name=engine.vendor, url=engine.vendor_url)

    models = [
        AsrModel(
            name=model.name,
            attribution=attribution(engine),
            installed=True,
            description=model.description,
            version=model.version,
            languages=list(model.languages),
        )
        for engine in engines
        for model in engine.models
    ]
    titles = " and ".join(engine.title for engine in engines)
    program = AsrProgram(
        name=PROGRAM_NAME,
        attribution=attribution(engines[0]),
        installed=True,
        description=f"Real-time speech recognition in the cloud: {titles}",
        version=__version__,
        models=models,
        supports_transcript_streaming=True,
        # With endpointing, the engine decides when the command has ended, so Home
        # Assistant must not cut the audio with its own VAD.
        requires_external_vad=not endpointing,
    )
    return Info(asr=[program])
