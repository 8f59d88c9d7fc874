"""``python -m wyoming_bodhi.transcribe FILE.wav``: a Wyoming client that prints a transcript.

It sends a WAV file the way Home Assistant sends a voice command (``transcribe``,
``audio-start``, ``audio-chunk``…, ``audio-stop``) to any Wyoming speech-to-text server,
prints each streamed ``transcript-chunk`` as it arrives (with ``--stream``) and then the
final transcript. Handy for trying the server, the demo mode, or a satellite's recordings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import wave
from collections.abc import Sequence

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error

CHUNK_SECONDS = 0.02


async def send_wav(client: AsyncClient, path: str, request: Transcribe, realtime: bool) -> None:
    with wave.open(path, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        await client.write_event(request.event())
        await client.write_event(AudioStart(rate, width, channels).event())
        frames_per_chunk = max(1, int(rate * CHUNK_SECONDS))
        started = time.monotonic()
        sent_seconds = 0.0
        while audio := wav.readframes(frames_per_chunk):
            await client.write_event(AudioChunk(rate, width, channels, audio).event())
            sent_seconds += len(audio) / (width * channels) / rate
            if realtime:
                await asyncio.sleep(max(0.0, started + sent_seconds - time.monotonic()))
        await client.write_event(AudioStop().event())


async def transcribe_file(
    uri: str, path: str, request: Transcribe, realtime: bool, stream: bool, timeout: float
) -> int:
    async with asyncio.timeout(timeout), AsyncClient.from_uri(uri) as client:
        sender = asyncio.create_task(send_wav(client, path, request, realtime))
        try:
            while (event := await client.read_event()) is not None:
                if stream and event.type == "transcript-chunk":
                    print(f"… {event.data.get('text', '')}", file=sys.stderr, flush=True)
                elif Transcript.is_type(event.type):
                    print(Transcript.from_event(event).text, flush=True)
                    return 0
                elif Error.is_type(event.type):
                    error = Error.from_event(event)
                    print(f"error ({error.code}): {error.text}", file=sys.stderr)
                    return 1
        finally:
            sender.cancel()
    print("error: the server closed the connection without a transcript", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wyoming_bodhi.transcribe",
        description="Send a WAV file to a Wyoming speech-to-text server and print the transcript.",
    )
    parser.add_argument("wav", help="a PCM WAV file (any rate, width and channel count)")
    parser.add_argument("--uri", default="tcp://127.0.0.1:10300", help="the server (%(default)s)")
    parser.add_argument("--language", help="language tag to request, e.g. hi, ta-IN")
    parser.add_argument("--model", help="model name to request, e.g. ta-general-v2-8khz")
    parser.add_argument("--realtime", action="store_true", help="send at the speed of speech")
    parser.add_argument(
        "--stream", action="store_true", help="also print each streamed chunk (to stderr)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    request = Transcribe(name=args.model, language=args.language)
    try:
        return asyncio.run(
            transcribe_file(args.uri, args.wav, request, args.realtime, args.stream, args.timeout)
        )
    except (OSError, wave.Error, EOFError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"error: no transcript within {args.timeout:g} s", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
