"""``python -m benchmarks.attacks``: what hostile and careless clients cost the bridge.

The bridge runs as its own process (as a user runs it); each figure is measured from outside:

1. **Audio after an endpointed answer**: seconds of audio Bodhi received after the client had
   its transcript, with ``--endpointing``: a whole file with 20 s of trailing silence sent at
   once (Home Assistant's STT HTTP API), and a live 20 ms-chunk stream.
2. **Client gone → Bodhi session over**: seconds from a client's FIN or reset to the end of its
   Bodhi session, with the client waiting for its answer, 60 s ahead of real time in 20 ms
   chunks, or in the largest chunks the bridge takes.
3. **Memory under stalled events**: growth of the bridge's resident memory while 150 clients
   each start an event and stall one byte short: a 4 MiB one (refused at its header) and one
   of the largest allowed payload (256 KiB).
4. **Event-loop stalls**: ``describe`` → ``info`` round trips on a separate connection, every
   20 ms, while the bridge converts the most expensive chunks it accepts, is flooded with
   connections, or Bodhi floods it with garbage.

Writes ``attacks-<UTC time>.json`` into ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import statistics
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event
from wyoming.info import Describe

from wyoming_bodhi.simulators.bodhi import BodhiSimulator, SimulatorOptions
from wyoming_bodhi.wire import MAX_PAYLOAD_BYTES

from .machine import machine_line, sample_process
from .report import save
from .sections import run_sections
from .servers import HOST, Server, spawn_bridge, spawn_simulator, wait_for_info
from .wire import encode_event

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RATE = 16000
STALLED_CLIENTS = 150


def speech(seconds: float, rate: int = RATE) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
    return (signal * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(2 * int(RATE * seconds))


def request(
    audio: bytes, chunk: int, *, rate: int = RATE, width: int = 2, stop: bool = True
) -> bytes:
    events = [Transcribe(language="hi").event(), AudioStart(rate, width, 1).event()]
    events += [
        AudioChunk(rate, width, 1, audio[offset : offset + chunk]).event()
        for offset in range(0, len(audio), chunk)
    ]
    if stop:
        events.append(AudioStop().event())
    return b"".join(encode_event(event) for event in events)


@contextlib.asynccontextmanager
async def bridge_process(log_dir: Path, bodhi_url: str, *extra: str) -> AsyncIterator[Server]:
    server = spawn_bridge(log_dir, bodhi_url, extra=extra)
    try:
        await wait_for_info(server)
        yield server
    finally:
        server.stop()


async def read_until(reader: asyncio.StreamReader, event_type: str) -> Event:
    while True:
        event = await async_read_event(reader)
        if event is None:
            raise ConnectionError(f"closed before {event_type}")
        if event.type == event_type:
            return event


# -- 1. audio after an endpointed answer ---------------------------------------------------------


async def audio_after_answer(log_dir: Path, repeats: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {"whole file at once": [], "live stream": []}
    async with (
        BodhiSimulator(SimulatorOptions(texts=["batti jalao"])) as simulator,
        bridge_process(log_dir, simulator.url, "--endpointing") as bridge,
    ):
        for _ in range(repeats):
            for case, samples in results.items():
                count = simulator.connection_count
                reader, writer = await asyncio.open_connection(HOST, bridge.port)
                audio = speech(0.6) + silence(20.0)
                if case == "whole file at once":
                    writer.write(request(audio, 4096))
                    await writer.drain()
                    sender = None
                else:
                    sender = asyncio.create_task(live(writer, audio))
                await asyncio.wait_for(read_until(reader, "transcript"), 10)
                answered = time.monotonic()
                if sender is not None:
                    sender.cancel()
                writer.close()
                await simulator.wait_for_connections(count + 1)
                record = simulator.connections[-1]
                await asyncio.wait_for(record.closed.wait(), 5)
                after = sum(frame.size for frame in record.frames if frame.at > answered)
                samples.append(after / 16000)
    return {case: {"max_s": max(s), "mean_s": statistics.fmean(s), "n": len(s)}
            for case, s in results.items()}  # fmt: skip


async def live(writer: asyncio.StreamWriter, audio: bytes) -> None:
    """Send as a microphone would: a 20 ms chunk every 20 ms, until the server hangs up."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionError, RuntimeError):
        writer.write(encode_event(Transcribe(language="hi").event()))
        writer.write(encode_event(AudioStart(RATE, 2, 1).event()))
        for index, offset in enumerate(range(0, len(audio), 640)):
            if writer.is_closing():
                return
            writer.write(encode_event(AudioChunk(RATE, 2, 1, audio[offset : offset + 640]).event()))
            await writer.drain()
            await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - time.monotonic()))


# -- 2. client gone → Bodhi session over ------------------------------------------------------


async def gone_to_session_end(log_dir: Path, repeats: int) -> dict[str, Any]:
    cases: dict[str, tuple[bytes, dict[str, Any]]] = {
        "waiting for its answer": (request(speech(1.0), 640), {"silent_after_eof": True}),
        "60 s ahead, 20 ms chunks": (request(speech(60.0), 640, stop=False), {}),
        "60 s ahead, 256 KiB chunks": (request(speech(60.0), MAX_PAYLOAD_BYTES, stop=False), {}),
    }
    out: dict[str, Any] = {}
    for case, (wire_bytes, options) in cases.items():
        async with (
            BodhiSimulator(SimulatorOptions(texts=["batti jalao"], **options)) as simulator,
            bridge_process(log_dir, simulator.url, "--response-timeout", "60") as bridge,
        ):
            for how in ("FIN", "reset"):
                seconds = []
                for _ in range(repeats):
                    count = simulator.connection_count
                    reader, writer = await asyncio.open_connection(HOST, bridge.port)
                    writer.write(wire_bytes)
                    await simulator.wait_for_connections(count + 1)
                    record = simulator.connections[-1]
                    # Let the request get going: audio flowing, or eof sent and waiting.
                    await asyncio.sleep(0.5)
                    left = time.monotonic()
                    if how == "FIN":
                        writer.write_eof()
                    else:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        writer.transport.abort()
                    await asyncio.wait_for(record.closed.wait(), 120)
                    assert record.ended_at is not None
                    seconds.append(record.ended_at - left)
                    writer.close()
                    del reader
                out[f"{case}, {how}"] = {"max_s": max(seconds), "mean_s": statistics.fmean(seconds)}
    return out


# -- 3. memory under stalled events -----------------------------------------------------------


async def stalled_events(log_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, payload, sent in (
        ("4 MiB events", 4 * 1024 * 1024, 4 * 1024 * 1024 - 1),
        ("256 KiB events (the largest allowed)", MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES - 1),
    ):
        async with bridge_process(log_dir, "ws://127.0.0.1:9") as bridge:
            before = sample_process(bridge.pid).rss_mb
            data = {"rate": RATE, "width": 2, "channels": 1}
            header = {"type": "audio-chunk", "data": data, "payload_length": payload}
            line = json.dumps(header).encode() + b"\n"
            writers = []
            for _ in range(STALLED_CLIENTS):
                with contextlib.suppress(OSError):
                    _reader, writer = await asyncio.open_connection(HOST, bridge.port)
                    writers.append(writer)
                    writer.write(line + bytes(sent))
            with contextlib.suppress(ConnectionError):
                await asyncio.gather(*(w.drain() for w in writers), return_exceptions=True)
            await asyncio.sleep(2.0)
            during = sample_process(bridge.pid)
            await asyncio.sleep(11.0)  # past the 10 s deadline for an event's body
            after = sample_process(bridge.pid).rss_mb
            for writer in writers:
                writer.close()
            out[name] = {
                "rss_before_mb": before,
                "growth_mb": during.rss_mb - before,
                "peak_growth_mb": during.hwm_mb - before,
                "after_deadline_growth_mb": after - before,
            }
    return out


# -- 4. event-loop stalls ------------------------------------------------------------------


async def probe(port: int, samples: list[float]) -> None:
    """describe → info round trips on one connection, every 20 ms, until cancelled."""
    reader, writer = await asyncio.open_connection(HOST, port)
    describe = encode_event(Describe().event())
    print("ready", flush=True)
    try:
        while True:
            started = time.perf_counter()
            writer.write(describe)
            await read_until(reader, "info")
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    finally:
        writer.close()


async def run_prober(port: int) -> list[float]:
    """The prober process: probe until SIGINT."""
    samples: list[float] = []
    task = asyncio.create_task(probe(port, samples))
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return samples


async def expensive_chunks(port: int, rate: int, width: int, clients: int) -> None:
    """Clients each sending the largest chunks in the costliest formats, back to back."""
    samples = MAX_PAYLOAD_BYTES // width
    t = np.arange(samples) / rate
    wide = (np.sin(2 * np.pi * 1000 * t) * (2 ** (8 * width - 2))).astype(np.int64)
    if width == 1:
        payload = (wide + 128).astype(np.uint8).tobytes()
    else:
        # The low ``width`` bytes of each little-endian int64.
        payload = wide.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :width].tobytes()
    chunk = encode_event(AudioChunk(rate, width, 1, payload).event())

    async def one() -> None:
        _reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(encode_event(Transcribe(language="hi").event()))
        writer.write(encode_event(AudioStart(rate, width, 1).event()))
        for _ in range(8):
            writer.write(chunk)
            await writer.drain()
        writer.write(encode_event(AudioStop().event()))
        await writer.drain()
        writer.close()

    await asyncio.gather(*(one() for _ in range(clients)), return_exceptions=True)


async def connection_flood(port: int, count: int) -> None:
    writers = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection(HOST, port)
            writers.append(writer)
    await asyncio.sleep(1.0)
    for writer in writers:
        writer.close()


async def loop_stalls(log_dir: Path) -> dict[str, Any]:
    simulator = spawn_simulator(log_dir, "flooding-simulator", extra=[
        # 4 KiB of garbage and 4 KiB of JSON nested 2000 deep, 2000 times: 16 MB a request.
        "--raw-before-results", json.dumps(["x" * 4096, "[" * 2048 + "]" * 2048]),
        "--raw-repeat", "2000",
    ])  # fmt: skip
    try:
        await wait_for_port_only(simulator)
        chunks = "8 clients × 8 chunks of 256 KiB"
        attacks: dict[str, Callable[[int], Awaitable[None]]] = {
            "idle (baseline)": lambda port: asyncio.sleep(3.0),
            f"{chunks}, 192 kHz 8-bit": lambda p: expensive_chunks(p, 192_000, 1, 8),
            f"{chunks}, 8 kHz 8-bit (33 s each)": lambda p: expensive_chunks(p, 8000, 1, 8),
            f"{chunks}, 44.1 kHz 24-bit": lambda p: expensive_chunks(p, 44100, 3, 8),
            "300 connections at once": lambda port: connection_flood(port, 300),
        }
        out: dict[str, Any] = {}
        async with bridge_process(
            log_dir, f"ws://{HOST}:{simulator.port}", "--max-audio", "3600"
        ) as bridge:
            for name, attack in attacks.items():
                out[name] = await measured(bridge.port, attack)
            out["Bodhi floods 4 requests with 16 MB of garbage each"] = await measured(
                bridge.port,
                lambda port: asyncio.gather(*(one_request(port) for _ in range(4))),
            )
    finally:
        simulator.stop()
    return out


async def one_request(port: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request(speech(1.0), 640))
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(read_until(reader, "transcript-stop"), 30)
    writer.close()


async def measured(port: int, attack: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """The prober runs in a process of its own, so that the attack's own work (in this one)
    is not counted as the bridge's."""
    prober = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.attacks", "--probe", str(port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert prober.stdout is not None
    await prober.stdout.readline()  # "ready": its connection is open
    await attack(port)
    await asyncio.sleep(0.5)
    prober.send_signal(signal.SIGINT)
    samples = sorted(json.loads(await prober.stdout.read()))
    await prober.wait()
    return {
        "n": len(samples),
        "p50_ms": 1000 * samples[len(samples) // 2],
        "p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "max_ms": 1000 * samples[-1],
    }


async def wait_for_port_only(server: Server) -> None:
    deadline = time.monotonic() + 20
    while True:
        server.check_alive()
        try:
            _reader, writer = await asyncio.open_connection(HOST, server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


# -- report ---------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Measured with `python -m benchmarks.attacks` on: {machine_line(results['machine'])}.",
        "",
    ]
    lines += ["**Audio sent to Bodhi after an endpointed answer** (goal 0; at most one frame)", "",
              "| client | n | max s | mean s |", "|---|--:|--:|--:|"]  # fmt: skip
    for case, row in results["audio_after_answer"].items():
        lines.append(f"| {case} | {row['n']} | {row['max_s']:.3f} | {row['mean_s']:.3f} |")
    lines += ["", "**Client gone → its Bodhi session over** (goal ≤ 1 s)", "",
              "| state, how it left | max s | mean s |", "|---|--:|--:|"]  # fmt: skip
    for case, row in results["gone_to_session_end"].items():
        lines.append(f"| {case} | {row['max_s']:.3f} | {row['mean_s']:.3f} |")
    lines += ["", f"**Resident memory, {STALLED_CLIENTS} clients each stalling an event one byte "
              "short** (goal ≤ 150 MB)", "",
              "| events | growth MB | peak growth MB | growth after the 10 s deadline MB |",
              "|---|--:|--:|--:|"]  # fmt: skip
    for case, row in results["stalled_events"].items():
        lines.append(f"| {case} | {row['growth_mb']:.1f} | {row['peak_growth_mb']:.1f} | "
                     f"{row['after_deadline_growth_mb']:.1f} |")  # fmt: skip
    lines += ["", "**describe → info on another connection during each attack** (goal ≤ 100 ms)",
              "", "| attack | n | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|--:|"]  # fmt: skip
    for case, row in results["loop_stalls"].items():
        lines.append(f"| {case} | {row['n']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                     f"{row['max_ms']:.1f} |")  # fmt: skip
    return "\n".join(lines)


async def run(out: Path, repeats: int) -> dict[str, Any]:
    log_dir = out / "attacks-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return await run_sections(
        "attacks",
        [
            ("audio_after_answer", lambda: audio_after_answer(log_dir, repeats)),
            ("gone_to_session_end", lambda: gone_to_session_end(log_dir, repeats)),
            ("stalled_events", lambda: stalled_events(log_dir)),
            ("loop_stalls", lambda: loop_stalls(log_dir)),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.attacks", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeat", type=int, default=5, help="repeats of sections 1 and 2")
    parser.add_argument("--probe", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(asyncio.run(run_prober(args.probe))))
        return
    results = asyncio.run(run(args.out, args.repeat))
    save(args.out, "attacks", results, markdown(results))


if __name__ == "__main__":
    main()
