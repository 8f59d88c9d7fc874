"""Audio for an engine: convert any Wyoming PCM to the engine's s16le mono, frame it, pace it.

Pure and synchronous (sans-I/O): the handler owns the sockets and the sleeping. For one
utterance the flow is::

    frames = FrameStream(target_rate, frame_bytes)  # the engine's rate: Bodhi 8000, iApp 16000
    pacer = Pacer(frame_ms / 1000, lead_seconds)

    for chunk in audio_chunks:  # wyoming AudioChunk
        for frame in frames.push(chunk.audio, chunk.rate, chunk.width, chunk.channels):
            await asyncio.sleep(pacer.delay())
            await send(frame)
            pacer.sent()
    # on audio-stop: frames.flush() (the converter's tail, then the zero-padded last frame)

Three conversions, chosen per input format (:mod:`.convert`):

* the engine's own format passes through untouched (Bodhi's 8 kHz; iApp's 16 kHz, which is
  what Home Assistant sends);
* 16 kHz s16 mono to 8 kHz (Home Assistant and satellites to Bodhi) runs a fixed half-band
  FIR, one frame at a time (:class:`HalfbandDecimator`): its look-ahead is 3 ms, where soxr
  holds output back in blocks of ~108 ms, which delayed the frame that completes an
  endpoint by up to a frame;
* everything else goes through soxr (:class:`AudioConverter`).

The modules: :mod:`.formats` (what a client may send, what an engine takes), :mod:`.convert`
and :mod:`.halfband` (the conversions), :mod:`.framing` (frames), :mod:`.pacing` (real time).
"""

from .convert import RESAMPLER_QUALITY, AudioConverter, converter_for
from .formats import (
    MAX_CHANNELS,
    MAX_RATE,
    MIN_RATE,
    OUTPUT_WIDTH,
    SUPPORTED_WIDTHS,
    AudioFormat,
    Converter,
    UnsupportedAudioFormat,
)
from .framing import Framer, FrameStream, frame_bytes_for
from .halfband import (
    HALFBAND_ATTENUATION_DB,
    HALFBAND_INPUT,
    HALFBAND_LOOKAHEAD,
    HALFBAND_OUTPUT_RATE,
    HALFBAND_TAPS,
    HalfbandDecimator,
    halfband_taps,
)
from .pacing import Pacer

__all__ = [
    "HALFBAND_ATTENUATION_DB",
    "HALFBAND_INPUT",
    "HALFBAND_LOOKAHEAD",
    "HALFBAND_OUTPUT_RATE",
    "HALFBAND_TAPS",
    "MAX_CHANNELS",
    "MAX_RATE",
    "MIN_RATE",
    "OUTPUT_WIDTH",
    "RESAMPLER_QUALITY",
    "SUPPORTED_WIDTHS",
    "AudioConverter",
    "AudioFormat",
    "Converter",
    "FrameStream",
    "Framer",
    "HalfbandDecimator",
    "Pacer",
    "UnsupportedAudioFormat",
    "converter_for",
    "frame_bytes_for",
    "halfband_taps",
]
