"""Stopping without losing a request: on SIGTERM, not ready at once but still serving for the
drain delay; then no new connections, the requests in flight finish within the grace, the
rest are answered ``shutdown``, and the process exits 0 — inside Docker's 10 s stop timeout
with the defaults. A second signal hurries it; Ctrl-C skips the drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import async_read_event, async_write_event

from wyoming_bodhi.server.handler import LINGER
from wyoming_bodhi.server.listener import CLOSING_TIME
from wyoming_bodhi.web import browser_mic
from wyoming_bodhi.web import server as web_server

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    bridge_command,
    clean_env,
    free_port,
    process,
    read_until_final,
    running_bridge,
    running_simulator,
    settled,
    transcribe,
    unavailable,
    wait_for_port,
)
from .signals import encode, utterances

AUDIO = encode(utterances(16000, count=1))
SPEECH = encode(utterances(16000, count=2, burst=0.5, gap=0.6))
DOCKER_STOP_TIMEOUT = 10.0
"""Seconds `docker stop` (and Compose) waits after SIGTERM before SIGKILL, by default."""
CHUNK = 3200
"""100 ms of 16 kHz 16-bit mono."""
ENV = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)


async def start_utterance(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event(Transcribe(language="hi").event())
    await client.write_event(AudioStart(16000, 2, 1).event())
    await client.write_event(AudioChunk(16000, 2, 1, AUDIO).event())
    return client


async def refused_after(port: int, since: float, within: float = 10.0) -> float:
    """Seconds from ``since`` (the loop's clock) until a connection to ``port`` is refused."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return loop.time() - since
        writer.close()
        await asyncio.sleep(0.01)  # polling with a deadline, not synchronisation by sleep
    raise AssertionError(f"port {port} still accepts connections after {within:g} s")


async def status_after(
    http: aiohttp.ClientSession, url: str, status: int, since: float, within: float = 5.0
) -> float:
    """Seconds from ``since`` until ``url`` answers ``status``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        async with http.get(url) as response:
            if response.status == status:
                return loop.time() - since
        await asyncio.sleep(0.002)  # polling with a deadline
    raise AssertionError(f"{url} did not answer {status} within {within:g} s")


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def exited_within(server: subprocess.Popen[str], within: float) -> int:
    return await asyncio.to_thread(server.wait, within)


# -- the sequence, as Docker runs it --------------------------------------------------------


async def stream(port: int, seconds: float, started: asyncio.Event) -> str:
    """One client streaming in real time, as a satellite does: ``seconds`` of speech, then
    audio-stop. What it got: ``transcript``, an error's code, or ``EOF`` (no answer)."""
    audio = encode(utterances(16000, count=max(1, round(seconds / 1.6)), burst=0.6, gap=1.0))
    audio = audio[: int(seconds * 16000) * 2]
    loop = asyncio.get_running_loop()
    try:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            exchange = Exchange()
            reader = asyncio.create_task(read_until_final(client, exchange))
            await client.write_event(Transcribe(language="hi").event())
            await client.write_event(AudioStart(16000, 2, 1).event())
            begin = loop.time()
            for index, offset in enumerate(range(0, len(audio), CHUNK)):
                if reader.done():
                    break
                chunk = AudioChunk(16000, 2, 1, audio[offset : offset + CHUNK])
                await client.write_event(chunk.event())
                if index == 4:
                    started.set()
                # Paced against the start: real time however late each write is.
                await asyncio.sleep(max(0.0, begin + (index + 1) * 0.1 - loop.time()))
            if not reader.done():
                await client.write_event(AudioStop().event())
            await reader
    except ConnectionError:
        return "EOF"
    final = exchange.events[-1]
    return "transcript" if final.type == "transcript-stop" else str(final.data.get("code"))


async def test_docker_stop_answers_every_stream_in_flight_before_the_kill() -> None:
    # `docker stop` with the defaults: SIGTERM, and SIGKILL 10 s later if the server is
    # still alive. Twenty clients stream in real time: half end their speech during the
    # drain and get their transcripts, half talk on and get `shutdown`. Every one is
    # answered, and the server has exited on its own, before the kill.
    streams, long_streams = 20, 10
    async with running_simulator(texts=["batti jalao"]) as simulator:
        port = free_port()
        args = bridge_command(port, simulator.url, drain_delay=None)  # the defaults
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            started = [asyncio.Event() for _ in range(streams)]
            clients = [
                asyncio.create_task(stream(port, 30.0 if index < long_streams else 4.0, event))
                for index, event in enumerate(started)
            ]
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 10)
            loop = asyncio.get_running_loop()
            sigterm_at = loop.time()
            server.send_signal(signal.SIGTERM)
            kill = loop.call_later(DOCKER_STOP_TIMEOUT, server.kill)
            try:
                results = await asyncio.gather(*clients)
                code = await exited_within(server, DOCKER_STOP_TIMEOUT + 5)
            finally:
                kill.cancel()
            stopped_after = loop.time() - sigterm_at
            log = server.stdout.read() if server.stdout else ""

    assert code == 0, (code, log)  # not -9: it stopped on its own
    assert results == ["shutdown"] * long_streams + ["transcript"] * (streams - long_streams)
    # The defaults: 3 s drain + 4 s grace + at most 1.5 s to answer and close.
    assert 7.0 <= stopped_after < 9.0, stopped_after
    assert "Shutting down (SIGTERM)" in log and "Stopped" in log


async def trickle(port: int, path: str) -> str:
    """A GET whose body (10 MB, says its header) comes a byte every 0.5 s: aiohttp answers,
    then reads on for its lingering time (10 s), so the request is in progress meanwhile.
    How it ended."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n"
    try:
        writer.write(head.encode())
        while True:
            await writer.drain()
            await asyncio.sleep(0.5)  # the client's pace, not synchronisation
            writer.write(b"x")
    except ConnectionError as err:
        return type(err).__name__
    finally:
        writer.close()


async def live_page(base: str, http: aiohttp.ClientSession, answers_the_close: bool) -> str:
    """A live page: one that reads (and so answers the server's close frame at once), or one
    that never reads again after the first message, so never answers it. How it ended."""
    async with http.ws_connect(f"{base}/api/live", headers={"Origin": base}) as ws:
        await ws.receive_json(timeout=10)  # the snapshot: it is open and served
        if not answers_the_close:
            await asyncio.sleep(60)  # cancelled once the test is done
        while (message := await ws.receive(timeout=30)).type == aiohttp.WSMsgType.TEXT:
            pass
        return f"{message.type.name} {message.data}"


def test_the_page_and_the_metrics_listener_keep_the_wyoming_sides_bounds() -> None:
    # The web side may not import the server side (the layers), so its bounds are its own
    # constants: they must stay those the stop's arithmetic counts once for all listeners.
    assert web_server.STOP_TIME == CLOSING_TIME
    assert browser_mic.CLOSE_TIMEOUT == LINGER


async def test_docker_stop_with_the_page_and_metrics_open_exits_before_the_kill() -> None:
    # `docker stop` with the defaults, the status page and the metrics listener on, and the
    # clients that used to hold the stop past Docker's 10 s: a live page that never answers
    # the WebSocket's close frame (aiohttp waits for it), and scrapes of /metrics whose bodies
    # trickle in (aiohttp reads on after its answer). Every Wyoming request and the browser
    # microphone are answered, and the process exits 0 on its own, well before the kill:
    # the page and the metrics listener stop alongside the Wyoming side, within its 1.75 s.
    streams, long_streams = 8, 4
    port, page, probes = free_port(), free_port(), free_port()
    async with (
        running_simulator(texts=["batti jalao"]) as simulator,
        aiohttp.ClientSession() as http,
    ):
        args = bridge_command(port, simulator.url, "--http-uri", f"tcp://127.0.0.1:{page}",
                              "--metrics-uri", f"tcp://127.0.0.1:{probes}",
                              drain_delay=None)  # fmt: skip
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            await wait_for_port(page, server)
            await wait_for_port(probes, server)
            base = f"http://127.0.0.1:{page}"
            pages = [
                asyncio.create_task(live_page(base, http, answers)) for answers in (True, False)
            ]
            started = [asyncio.Event() for _ in range(streams)]
            clients = [
                asyncio.create_task(stream(port, 30.0 if index < long_streams else 4.0, event))
                for index, event in enumerate(started)
            ]
            async with http.ws_connect(f"{base}/api/microphone", headers={"Origin": base}) as mic:
                await mic.send_json({"language": "hi", "model": None, "rate": 16000})
                assert (await mic.receive_json(timeout=10))["type"] == "started"

                async def talk() -> None:
                    # A person talking on, never pressing stop: answered `shutdown`.
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        while not mic.closed:
                            await mic.send_bytes(AUDIO[:CHUNK])
                            await asyncio.sleep(0.1)

                talking = asyncio.create_task(talk())
                await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 10)
                loop = asyncio.get_running_loop()
                # One scrape trickles from before the stop, another from inside the grace, so
                # that one is in progress when the page and the listener stop at ~7 s.
                scrapes = [asyncio.create_task(trickle(probes, "/metrics"))]
                sigterm_at = loop.time()
                server.send_signal(signal.SIGTERM)
                kill = loop.call_later(DOCKER_STOP_TIMEOUT, server.kill)
                try:
                    await asyncio.sleep(5.0)  # into the grace (drain 3 s, grace 4 s)
                    scrapes.append(asyncio.create_task(trickle(probes, "/metrics")))
                    messages: list[Any] = []
                    while (message := await mic.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
                        messages.append(json.loads(message.data))
                    talking.cancel()
                    results = await asyncio.gather(*clients)
                    code = await exited_within(server, DOCKER_STOP_TIMEOUT + 5)
                finally:
                    kill.cancel()
                stopped_after = loop.time() - sigterm_at
            ended = await asyncio.wait_for(asyncio.gather(pages[0], *scrapes), 5)
            pages[1].cancel()
            log = server.stdout.read() if server.stdout else ""

    assert code == 0, (code, log)  # not -9: it stopped on its own
    assert results == ["shutdown"] * long_streams + ["transcript"] * (streams - long_streams)
    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "shutdown"
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1000  # not 1006
    # The page that reads answered the close and was closed cleanly; the scrapes were cut
    # off (each ended with a ConnectionError, rather than trickling on).
    assert ended[0] == "CLOSE 1000", ended
    # 3 s drain + 4 s grace + the last 1.75 s, all listeners at once; an exit (~0.3 s) after.
    # Before, the page's stop took 2 s and the metrics listener's up to 1 s more, after it.
    assert 7.0 <= stopped_after < 7.0 + CLOSING_TIME + 0.75, stopped_after
    assert "Shutting down (SIGTERM)" in log and "Stopped" in log


async def test_sigterm_says_not_ready_at_once_and_serves_through_the_drain_delay() -> None:
    port, probes = free_port(), free_port()
    async with (
        running_simulator(texts=["batti jalao", "pankha chalao"]) as simulator,
        aiohttp.ClientSession() as http,
    ):
        args = bridge_command(port, simulator.url, "--metrics-uri", f"tcp://127.0.0.1:{probes}",
                              "--shutdown-timeout", "2", drain_delay=2)  # fmt: skip
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            await wait_for_port(probes, server)
            base = f"http://127.0.0.1:{probes}"
            assert (await get(http, f"{base}/readyz"))[0] == 200
            loop = asyncio.get_running_loop()
            sigterm_at = loop.time()
            server.send_signal(signal.SIGTERM)
            not_ready_after = await status_after(http, f"{base}/readyz", 503, sigterm_at)
            alive = await get(http, f"{base}/healthz")
            _code, metrics = await get(http, f"{base}/metrics")
            # A request a load balancer sends before it has noticed: accepted and served.
            async with AsyncTcpClient("127.0.0.1", port) as client:
                accepted_after = loop.time() - sigterm_at
                exchange = await transcribe(client, SPEECH)
            closed_after = await refused_after(port, sigterm_at)
            code = await exited_within(server, 10)

    assert not_ready_after < 0.2, not_ready_after
    assert alive[0] == 200 and json.loads(alive[1])["status"] == "draining"
    assert "wyoming_bodhi_draining 1.0" in metrics
    assert accepted_after < 2.0
    assert exchange.transcript == "batti jalao pankha chalao"
    assert 2.0 <= closed_after < 2.5, closed_after
    assert code == 0


async def test_sigterm_lets_an_utterance_finish_then_exits_0() -> None:
    port = free_port()
    async with running_simulator(texts=["batti jalao"]) as simulator:
        args = bridge_command(port, simulator.url, drain_delay=0.5)
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            client = await start_utterance(port)
            await simulator.wait_for_connections(1)
            loop = asyncio.get_running_loop()
            sigterm_at = loop.time()
            server.send_signal(signal.SIGTERM)
            # New connections are refused once the drain delay is over ...
            closed_after = await refused_after(port, sigterm_at)
            # ... while the request in flight still completes.
            await client.write_event(AudioStop().event())
            exchange = Exchange()
            await asyncio.wait_for(read_until_final(client, exchange), 10)
            # Then its connection is closed: the next request goes to another server.
            assert await asyncio.wait_for(client.read_event(), 2) is None
            await client.disconnect()
            code = await exited_within(server, 10)
            log = server.stdout.read() if server.stdout else ""
    assert 0.5 <= closed_after < 1.0
    assert exchange.transcript == "batti jalao"
    assert code == 0
    assert "Shutting down (SIGTERM)" in log and "Stopped" in log


async def test_sigterm_ends_an_unfinished_utterance_with_an_error_within_the_bound() -> None:
    port = free_port()
    async with running_simulator() as simulator:
        args = bridge_command(port, simulator.url, "--shutdown-timeout", "0.5", drain_delay=0.5)
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            client = await start_utterance(port)  # and never sends audio-stop
            (record,) = await simulator.wait_for_connections(1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            server.send_signal(signal.SIGTERM)
            exchange = Exchange()
            await asyncio.wait_for(read_until_final(client, exchange), 5)
            answered = loop.time() - started
            code = await exited_within(server, 10)
            await asyncio.wait_for(record.closed.wait(), 2)
    assert exchange.error.data["code"] == "shutdown"
    assert "shutting down" in exchange.error.data["text"]
    assert code == 0
    assert 1.0 <= answered < 1.5


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_second_signal_stops_at_once_and_still_answers(second: signal.Signals) -> None:
    port, probes = free_port(), free_port()
    async with running_simulator() as simulator, aiohttp.ClientSession() as http:
        args = bridge_command(port, simulator.url, "--metrics-uri", f"tcp://127.0.0.1:{probes}",
                              drain_delay=None)  # fmt: skip
        with process(args, ENV) as server:
            await wait_for_port(port, server)
            client = await start_utterance(port)  # and never sends audio-stop
            await simulator.wait_for_connections(1)
            loop = asyncio.get_running_loop()
            first_at = loop.time()
            server.send_signal(signal.SIGTERM)
            # The stop has begun (the defaults: 3 s of drain, then 4 s of grace).
            await status_after(http, f"http://127.0.0.1:{probes}/readyz", 503, first_at)
            again_at = loop.time()
            server.send_signal(second)
            exchange = Exchange()
            await asyncio.wait_for(read_until_final(client, exchange), 5)
            answered_after = loop.time() - again_at
            code = await exited_within(server, 5)
            exited_after = loop.time() - again_at
    assert exchange.error.data["code"] == "shutdown"
    assert answered_after < 0.5, answered_after
    # No more waiting for requests: what is left is closing the connections (this client
    # keeps its own open, so it gets the whole LINGER), and the process's exit.
    assert code == 0 and exited_after < CLOSING_TIME + 1.0, exited_after


async def test_ctrl_c_skips_the_drain_delay() -> None:
    # SIGINT comes from a person at a terminal (orchestrators send SIGTERM): there is no
    # load balancer to wait for, so the server stops taking connections at once.
    port = free_port()
    async with running_simulator() as simulator:
        with process(bridge_command(port, simulator.url, drain_delay=30), ENV) as server:
            await wait_for_port(port, server)
            loop = asyncio.get_running_loop()
            sigint_at = loop.time()
            server.send_signal(signal.SIGINT)
            closed_after = await refused_after(port, sigint_at)
            code = await exited_within(server, 5)
            exited_after = loop.time() - sigint_at
    assert closed_after < 0.5 and exited_after < 1.5
    assert code == 0


async def test_the_browser_microphone_is_answered_shutdown_and_closed_cleanly() -> None:
    port, page = free_port(), free_port()
    async with running_simulator() as simulator, aiohttp.ClientSession() as http:
        args = bridge_command(port, simulator.url, "--http-uri", f"tcp://127.0.0.1:{page}",
                              "--shutdown-timeout", "0.5", drain_delay=0.5)  # fmt: skip
        with process(args, ENV) as server:
            await wait_for_port(page, server)
            base = f"http://127.0.0.1:{page}"
            async with http.ws_connect(f"{base}/api/microphone", headers={"Origin": base}) as ws:
                await ws.send_json({"language": "hi", "model": None, "rate": 16000})
                assert (await ws.receive_json(timeout=5))["type"] == "started"

                async def talk() -> None:
                    # A person talking on: 100 ms at a time, never pressing stop.
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        while not ws.closed:
                            await ws.send_bytes(AUDIO[:CHUNK])
                            await asyncio.sleep(0.1)

                talking = asyncio.create_task(talk())
                await simulator.wait_for_connections(1)
                loop = asyncio.get_running_loop()
                sigterm_at = loop.time()
                server.send_signal(signal.SIGTERM)
                messages: list[Any] = []
                while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    messages.append(json.loads(message.data))
                closed_after = loop.time() - sigterm_at
                talking.cancel()
            code = await exited_within(server, 5)

    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "shutdown"
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1000  # not 1006
    assert 1.0 <= closed_after < 1.5, closed_after
    assert code == 0


# -- connections kept open between requests ------------------------------------------------


async def test_draining_closes_each_connection_at_the_end_of_its_request() -> None:
    # A satellite keeps its connection open between requests: unless it is closed, its
    # next request comes here, to a server that is stopping, whatever the balancer knows.
    async with (
        running_simulator(texts=["batti jalao"]) as simulator,
        running_bridge(simulator.url) as running,
        AsyncTcpClient("127.0.0.1", running.port) as busy,
        AsyncTcpClient("127.0.0.1", running.port) as later,
        AsyncTcpClient("127.0.0.1", running.port) as idle,
    ):
        await busy.write_event(Transcribe(language="hi").event())
        await busy.write_event(AudioStart(16000, 2, 1).event())
        await busy.write_event(AudioChunk(16000, 2, 1, AUDIO).event())
        await simulator.wait_for_connections(1)
        loop = asyncio.get_running_loop()
        draining = asyncio.create_task(running.server.drain(loop.time() + 30))
        # In flight when the drain began: answered, then closed.
        await busy.write_event(AudioStop().event())
        busy_exchange = Exchange()
        await asyncio.wait_for(read_until_final(busy, busy_exchange), 5)
        busy_closed = await asyncio.wait_for(busy.read_event(), 2) is None
        # Idle when it began, a request during the drain: served, then closed.
        later_exchange = await transcribe(later, AUDIO)
        later_closed = await asyncio.wait_for(later.read_event(), 2) is None
        # Idle all along: left open during the drain (closing it could race a request) ...
        open_while_draining = await settled(lambda: running.server.connections == 1)
        draining.cancel()
        # ... and closed at once when the drain ends.
        finishing = asyncio.create_task(running.server.finish(5.0))
        idle_closed = await asyncio.wait_for(idle.read_event(), 1) is None
        await finishing

    assert busy_exchange.transcript == "batti jalao" and busy_closed
    assert later_exchange.transcript == "batti jalao" and later_closed
    assert open_while_draining and idle_closed


async def test_a_client_still_sending_reads_its_answer_before_the_close() -> None:
    # Closing a socket whose input (the client's audio) is unread resets it; a client whose
    # writes then fail loses the answer it had not read yet (asyncio's StreamReader raises
    # the reset before handing out what it holds). Home Assistant reads its answer only at
    # the end of its audio. So the server reads on, and drops, for a moment after its last
    # answer.
    async with (
        running_simulator() as simulator,
        running_bridge(simulator.url) as running,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        chunk = AudioChunk(16000, 2, 1, AUDIO[:640]).event()
        for event in (Transcribe(language="hi").event(), AudioStart(16000, 2, 1).event(), chunk):
            await async_write_event(event, writer)
        await simulator.wait_for_connections(1)
        stopping = asyncio.create_task(running.server.shutdown(0))
        # Talks on for 0.2 s before it reads, as a client that reads at the end of its audio.
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.2
        with contextlib.suppress(ConnectionError):
            while loop.time() < until:
                await async_write_event(chunk, writer)
                await asyncio.sleep(0.02)
        events: list[str | None] = []
        with contextlib.suppress(ConnectionError):
            while (event := await asyncio.wait_for(async_read_event(reader), 2)) is not None:
                events.append(event.data.get("code") if event.type == "error" else event.type)
        await stopping
        writer.close()
    assert events == ["transcript-start", "shutdown"]


# -- a stop while the server starts ---------------------------------------------------------

SERVER_COMMAND = Path(sys.executable).with_name("wyoming-bodhi")
"""The command the image's entrypoint execs (so it is PID 1 there), not ``python -m``."""


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (the kernel's SigCgt mask)."""
    with contextlib.suppress(OSError, ValueError):  # not there (yet, or any more)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def child_of(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0]) if children else None
    return None


@pytest.mark.parametrize("pid_1", [False, True], ids=["own process", "PID 1"])
async def test_sigterm_while_starting_stops_at_once_with_status_0(pid_1: bool) -> None:
    # dockerd sends SIGTERM whenever it is asked to stop, starting or not. The image execs
    # the server, so it is PID 1 of its PID namespace, and the kernel drops a signal sent to
    # PID 1 for which no handler is installed: a stop that came too early was lost, and the
    # container lived on until the kill. The handler must be there before anything slow
    # happens, and a stop before serving is a clean stop: status 0, no traceback, at once.
    if pid_1 and (shutil.which("unshare") is None or os.geteuid() != 0):
        unavailable("the server as PID 1 of a PID namespace", "needs root and unshare")
    port = free_port()
    args = [str(SERVER_COMMAND), "--demo", "--uri", f"tcp://127.0.0.1:{port}"]  # default drain
    if pid_1:
        args = ["unshare", "--pid", "--fork", "--kill-child", *args]
    with process(args[1:], clean_env(), program=args[0]) as started:
        server_pid: int | None = started.pid
        if pid_1:
            await settled(lambda: child_of(started.pid) is not None, within=5)
            server_pid = child_of(started.pid)
        assert server_pid is not None
        # As soon as the process takes SIGTERM: before it has loaded what serves.
        assert await settled(lambda: catches(server_pid, signal.SIGTERM), within=10)
        loop = asyncio.get_running_loop()
        sigterm_at = loop.time()
        os.kill(server_pid, signal.SIGTERM)
        code = await exited_within(started, 5)
        exited_after = loop.time() - sigterm_at
        log = started.stdout.read() if started.stdout else ""
    assert code == 0, log
    assert exited_after < 1.0, exited_after  # no drain: it had served nothing
    assert " serving " not in log and "Traceback" not in log, log
    assert "stopped by SIGTERM" in log
