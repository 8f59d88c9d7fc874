"""Wyoming Info built from the catalogue: answered at once, never touching the network."""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from .. import __version__
from ..engines.bodhi.catalog import Catalog

PROGRAM_NAME = "bodhi"
NAVANA = Attribution(name="Navana", url="https://navana.ai")


def build_info(catalog: Catalog, endpointing: bool = False) -> Info:
    """One ``bodhi`` ASR program with every catalogue model, all installed.

    "Installed" means usable right now: the models live in Bodhi's cloud, so there is
    nothing to download, and Home Assistant only offers languages of installed models.
    """
    models = [
        AsrModel(
            name=model.name,
            attribution=NAVANA,
            installed=True,
            description=model.description,
            version=f"v{model.version}",
            languages=model.wyoming_languages,
        )
        for model in catalog
    ]
    program = AsrProgram(
        name=PROGRAM_NAME,
        attribution=NAVANA,
        installed=True,
        description="Bodhi real-time speech recognition for Indian languages (Navana)",
        version=__version__,
        models=models,
        supports_transcript_streaming=True,
        # With endpointing, Bodhi decides when the command has ended, so Home Assistant
        # must not cut the audio with its own VAD.
        requires_external_vad=not endpointing,
    )
    return Info(asr=[program])
