"""Make ``samples/batti-jalao.wav``, the recording the README's "Try it" transcribes.

Two short Hindi voice commands, "बत्ती जलाओ" (turn on the light) and "पंखा चलाओ" (turn on the
fan), spoken by espeak-ng with a pause between them long enough for Bodhi (and the bundled
simulator, which ends a phrase after 0.44 s of silence) to hear two phrases: the demo then
streams one phrase at a time before the final transcript.

Written as 16 kHz mono 16-bit PCM, the format of a Home Assistant voice satellite, trimmed
to about 2.4 s and under 80 KB so the repository can carry it. A developer tool, not part of
the package: it needs ``espeak-ng`` (``apt-get install espeak-ng``); the committed file was
made with espeak-ng 1.51. Run from the repository root::

    python scripts/make_sample.py            # writes samples/batti-jalao.wav
    python scripts/make_sample.py OUT.wav
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from wyoming_bodhi.wav import audio_chunks, read_header

PHRASES = ("बत्ती जलाओ", "पंखा चलाओ")
VOICE = "hi"
RATE = 16000
# Silence between the phrases: well over the 0.44 s endpoint, as a person pausing would.
PAUSE_SECONDS = 0.6
LEAD_SECONDS = 0.1
TAIL_SECONDS = 0.15
# Trim what is quieter than this (relative to full scale) at either end of a phrase; it is
# also the simulator's speech threshold (-40 dBFS), so nothing it calls speech is cut.
TRIM_LEVEL = 0.01
# Peak level after normalising: loud and clear, with headroom for any resampler overshoot.
PEAK = 0.7
MAX_BYTES = 80 * 1024
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "samples" / "batti-jalao.wav"

Samples = npt.NDArray[np.float64]


def speak(text: str) -> tuple[Samples, int]:
    """espeak-ng's rendering of ``text`` as floats in ±1.0, and its sample rate."""
    wav = subprocess.run(
        ["espeak-ng", "-v", VOICE, "--stdout", text], check=True, capture_output=True
    ).stdout
    stream = io.BytesIO(wav)
    header = read_header(stream.read)
    fmt = header.format
    if (fmt.encoding, fmt.bits, fmt.channels) != ("int", 16, 1):
        raise SystemExit(f"espeak-ng wrote {fmt.describe()}; expected 16-bit PCM, mono")
    # espeak-ng writes a placeholder size when writing to a pipe: read to the end.
    limit = len(wav) - header.data_offset
    pcm = b"".join(audio_chunks(stream.read, header, fmt.rate, limit))
    return np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0, fmt.rate


def trim(samples: Samples) -> Samples:
    loud = np.flatnonzero(np.abs(samples) > TRIM_LEVEL)
    if not loud.size:
        raise SystemExit("espeak-ng produced silence")
    return samples[loud[0] : loud[-1] + 1]


def silence(seconds: float) -> Samples:
    return np.zeros(round(RATE * seconds))


def make() -> Samples:
    parts = [silence(LEAD_SECONDS)]
    for index, text in enumerate(PHRASES):
        if index:
            parts.append(silence(PAUSE_SECONDS))
        spoken, rate = speak(text)
        parts.append(trim(soxr.resample(spoken, rate, RATE)))
    parts.append(silence(TAIL_SECONDS))
    audio = np.concatenate(parts)
    return audio * (PEAK / np.max(np.abs(audio)))


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("make_sample: needs espeak-ng (apt-get install espeak-ng)", file=sys.stderr)
        return 1
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    audio = make()
    pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    output.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(output), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    size = output.stat().st_size
    print(f"{output}: {len(audio) / RATE:.2f} s, {size / 1024:.0f} KB")
    if size > MAX_BYTES:
        print(
            f"make_sample: larger than {MAX_BYTES // 1024} KB; shorten the phrases", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
