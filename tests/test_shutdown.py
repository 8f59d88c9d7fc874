"""SIGTERM: stop accepting, let in-flight utterances finish (or end them with an error), exit 0."""

from __future__ import annotations

import asyncio
import signal

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    bridge_command,
    clean_env,
    free_port,
    process,
    read_until_final,
    running_simulator,
    wait_for_port,
)
from .signals import encode, utterances

AUDIO = encode(utterances(16000, count=1))


async def start_utterance(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event(Transcribe(language="hi").event())
    await client.write_event(AudioStart(16000, 2, 1).event())
    await client.write_event(AudioChunk(16000, 2, 1, AUDIO).event())
    return client


async def refuses_connections(port: int, within: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return True
        writer.close()
        await asyncio.sleep(0.02)  # polling with a deadline, not synchronisation by sleep
    return False


async def test_sigterm_lets_an_utterance_finish_then_exits_0() -> None:
    port = free_port()
    async with running_simulator(texts=["batti jalao"]) as simulator:
        env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
        args = bridge_command(port, simulator.url)
        with process(args, env) as server:
            await wait_for_port(port, server)
            client = await start_utterance(port)
            await simulator.wait_for_connections(1)
            server.send_signal(signal.SIGTERM)
            # New connections are refused soon after ...
            refused = await refuses_connections(port)
            # ... while the request in flight still completes.
            await client.write_event(AudioStop().event())
            exchange = Exchange()
            await asyncio.wait_for(read_until_final(client, exchange), 10)
            await client.disconnect()
            code = await asyncio.to_thread(server.wait, 10)
            log = server.stdout.read() if server.stdout else ""
    assert refused
    assert exchange.transcript == "batti jalao"
    assert code == 0
    assert "Shutting down (SIGTERM)" in log and "Stopped" in log


async def test_sigterm_ends_an_unfinished_utterance_with_an_error_within_the_bound() -> None:
    port = free_port()
    async with running_simulator() as simulator:
        env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
        args = bridge_command(port, simulator.url, "--shutdown-timeout", "0.5")
        with process(args, env) as server:
            await wait_for_port(port, server)
            client = await start_utterance(port)  # and never sends audio-stop
            (record,) = await simulator.wait_for_connections(1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            server.send_signal(signal.SIGTERM)
            exchange = Exchange()
            await asyncio.wait_for(read_until_final(client, exchange), 5)
            code = await asyncio.to_thread(server.wait, 10)
            elapsed = loop.time() - started
            await asyncio.wait_for(record.closed.wait(), 2)
    assert exchange.error.data["code"] == "shutdown"
    assert "shutting down" in exchange.error.data["text"]
    assert code == 0
    assert 0.5 <= elapsed < 3
