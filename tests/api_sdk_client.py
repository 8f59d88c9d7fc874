"""Drive the vendor's newer SDK, bodhi-api-sdk, and print what it saw as one JSON line.

Run by ``tests/test_api_sdk_conformance.py`` with the SDK's own Python environment (the SDK
and the legacy ``bodhi-sdk`` both install a top-level ``bodhi`` package, so they cannot share
one). Only the standard library and the SDK are imported here.

    python api_sdk_client.py file|stream URL WAV MODEL API_KEY
"""

from __future__ import annotations

import asyncio
import json
import sys
import wave
from typing import Any

from bodhi import BodhiClient, LiveTranscriptionEvents, TranscriptionConfig


def response_dict(response: Any) -> dict[str, Any]:
    return {
        "call_id": response.call_id,
        "segment_id": response.segment_id,
        "type": response.type,
        "text": response.text,
        "eos": response.eos,
    }


async def main(mode: str, url: str, path: str, model: str, api_key: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"transcripts": [], "errors": [], "raised": None}
    client = BodhiClient(api_key=api_key, uri=url)
    client.on(
        LiveTranscriptionEvents.Transcript,
        lambda response: seen["transcripts"].append(response_dict(response)),
    )
    client.on(
        LiveTranscriptionEvents.Error,
        lambda error: seen["errors"].append([type(error).__name__, str(error)]),
    )
    try:
        if mode == "file":
            # The SDK's own file flow: 20 ms frames at real time, then {"eof": 1}.
            await client.transcribe_local_file(path, config=TranscriptionConfig(model=model))
        else:
            # The live flow of its README: open, send audio as it comes, close.
            with wave.open(path, "rb") as wav:
                rate = wav.getframerate()
                audio = wav.readframes(wav.getnframes())
            await client.start_connection(TranscriptionConfig(model=model, sample_rate=rate))
            step = rate * 2 // 10  # 100 ms
            for start in range(0, len(audio), step):
                await client.send_audio_stream(audio[start : start + step])
                await asyncio.sleep(0.1)
            await client.close_connection()
    except BaseException as err:  # the SDK raises, and cancels every task, freely
        seen["raised"] = [type(err).__name__, str(err)]
    finally:
        # The SDK leaves its HTTP session open on its error paths.
        session = client.websocket_handler.session
        if session is not None and not session.closed:
            await session.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:6]))))
