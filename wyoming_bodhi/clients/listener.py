"""The microphone client's listening loop and what the person sees of it.

:class:`Listener` captures, sends and ends one request after another (by the server's
answer, quiet after speech, a length of audio, or Ctrl-C); :class:`Output` shows phrases,
transcripts, notices and a level meter. Neither knows whether the audio goes to a Wyoming
server or, through the pipeline in this process, to the engine itself: a request is opened
by the ``RequestOpener`` it is given (see :mod:`.mic`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final, TextIO

from ..pipeline.audio import UnsupportedAudioFormat
from .cli import EXIT_SERVER, UsageError
from .console import StatusLine, say
from .direct import ClientRequest, Completed, Failed, Finished, Partial
from .microphone import SAMPLE_WIDTH, Capture, MicrophoneLost
from .speech import Activity, SpeechDetector, meter

PROG: Final = "wyoming-bodhi-mic"
PREROLL_SECONDS: Final = 0.3
"""Audio kept from before speech is detected (--continuous): a command's first sound is
quieter than what triggers the detector."""
METER_SECONDS: Final = 0.1
NO_SPEECH_SECONDS: Final = 15.0
"""A command the client must find the end of, with no speech in it this long, is over."""

RequestOpener = Callable[[tuple[int, int, int]], Awaitable[ClientRequest]]


class Output:
    """What the person sees. Direct: each completed phrase is a line on stdout and the phrase
    being spoken is redrawn in place below. Through a server: phrases as ``… text`` lines on
    stderr, each transcript a line on stdout. A level meter on a terminal; plain lines in a
    pipe. Whatever a server or engine sent is shown with its control characters escaped."""

    def __init__(self, direct: bool, stdout: TextIO | None, stderr: TextIO | None) -> None:
        self.direct = direct
        self._stdout = stdout
        self._stderr = stderr
        on_stdout = direct and stdout is not None and stdout.isatty()
        self.status = StatusLine(stdout if on_stdout else stderr)
        self._status_on_stdout = on_stdout
        self._partial = ""

    def notice(self, text: str) -> None:
        """A line for the person, on stderr."""
        if self._status_on_stdout:
            self.status.clear()
            say(self._stderr, f"{PROG}: {text}")
        else:
            self.status.message(f"{PROG}: {text}")

    def level(self, dbfs: float, state: str) -> None:
        if not self._partial:
            self.status.show(f"{meter(dbfs)} {state}")

    def partial(self, text: str) -> None:
        """The phrase being spoken; "" when it is over (completed, or left out)."""
        self._partial = text
        if text:
            self.status.show(f"… {text}")
        else:
            self.status.clear()

    def phrase(self, text: str) -> None:
        self._partial = ""
        if self.direct:
            self.status.clear()
            say(self._stdout, text)
        else:
            self.status.message(f"… {text}")

    def transcript(self, text: str) -> None:
        self._partial = ""
        self.status.clear()
        if not text:
            self.notice("nothing was recognised")
        elif not self.direct:
            say(self._stdout, text)


class Listener:
    """The capture loop: one request after another, each ended by the first of its endings."""

    def __init__(
        self,
        capture: Capture,
        open_request: RequestOpener,
        output: Output,
        *,
        silence: float | None,
        seconds_limit: float | None,
        continuous: bool,
        timeout: float,
    ) -> None:
        self.capture = capture
        self._open_request = open_request
        self.output = output
        self._seconds_limit = seconds_limit
        self._continuous = continuous
        self._timeout = timeout
        self.detector = SpeechDetector(capture.rate, capture.channels, end_after=silence)
        chunk_seconds = 0.02
        self._preroll: collections.deque[bytes] = collections.deque(
            maxlen=max(1, round(PREROLL_SECONDS / chunk_seconds))
        )
        self.interrupted = False
        self._meter_due = 0.0
        self._waiting = False
        self._no_speech_limit = None if silence is None else NO_SPEECH_SECONDS
        """With the client finding the end, a command with no speech at all ends too."""

    def interrupt(self) -> None:
        """Ctrl-C: end the command being spoken (its transcript still comes), then stop."""
        self.interrupted = True
        self.capture.wake()
        if self._waiting:
            self.output.notice("waiting for the transcript; Ctrl-C again quits")

    async def run(self) -> int:
        self.capture.start()
        while not self.interrupted:
            if self._continuous and not await self._wait_for_speech():
                break
            status = await self._one_request()
            if status != 0 or not self._continuous:
                return status
            self.detector.reset()
        return 0

    async def _wait_for_speech(self) -> bool:
        """Until speech starts (True), keeping the audio just before it; False if stopped."""
        self._preroll.clear()
        while not self.interrupted:
            chunk = await self.capture.next()
            if chunk is None:
                continue
            self._preroll.append(chunk)
            activity = self.detector.feed(chunk)
            self._show_level("waiting for speech")
            if Activity.SPEECH_STARTED in activity:
                return True
        return False

    async def _one_request(self) -> int:
        capture = self.capture
        request = await self._open_request((capture.rate, SAMPLE_WIDTH, capture.channels))
        answer = asyncio.create_task(self._show_updates(request), name="updates")
        try:
            for chunk in self._preroll:
                await self._send(request, chunk)
            self._preroll.clear()
            lost: MicrophoneLost | None = None
            try:
                await self._stream(request, answer)
            except MicrophoneLost as err:
                # What was said before is still worth its transcript.
                lost = err
            if not request.finished:
                await request.end_audio()
            if not answer.done():
                self.output.level(self.detector.level.dbfs, "waiting for the transcript")
            self._waiting = True
            try:
                async with asyncio.timeout(self._timeout):
                    status = await asyncio.shield(answer)
            except TimeoutError:
                self.output.notice(
                    f"no transcript within {self._timeout:g} s of the end of the audio"
                )
                status = EXIT_SERVER
            finally:
                self._waiting = False
            if lost is not None:
                raise lost
            return status
        finally:
            answer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answer
            await request.close()

    async def _send(self, request: ClientRequest, chunk: bytes) -> None:
        capture = self.capture
        try:
            await request.add_audio(chunk, capture.rate, SAMPLE_WIDTH, capture.channels)
        except UnsupportedAudioFormat as err:
            problem = f"{capture.device.name} captures audio that cannot be used: {err}"
            raise UsageError(problem) from None

    async def _stream(self, request: ClientRequest, answer: asyncio.Task[int]) -> None:
        """Send audio until an ending: the server's answer, quiet after speech, the limit,
        or Ctrl-C."""
        capture = self.capture
        sent = 0.0
        # The answer coming wakes the capture wait, so an ending the server decides is seen
        # at once rather than at the next chunk.
        answer.add_done_callback(lambda _task: capture.wake())
        while not (self.interrupted or request.finished):
            chunk = await capture.next()
            if chunk is None:
                continue
            await self._send(request, chunk)
            sent += len(chunk) / capture.bytes_per_second
            activity = self.detector.feed(chunk)
            self._show_level("hearing speech" if self.detector.in_speech else "listening")
            if self._seconds_limit is not None and sent >= self._seconds_limit - 1e-9:
                return
            if Activity.SPEECH_ENDED in activity:
                return
            no_speech = self._no_speech_limit
            if no_speech is not None and not self.detector.heard_speech and sent >= no_speech:
                self.output.notice(f"no speech heard in {no_speech:g} s")
                return

    async def _show_updates(self, request: ClientRequest) -> int:
        output = self.output
        async for update in request.updates():
            if isinstance(update, Partial):
                output.partial(update.text)
            elif isinstance(update, Completed):
                output.phrase(update.text)
            elif isinstance(update, Finished):
                output.transcript(update.text)
                return 0
            elif isinstance(update, Failed):
                output.status.clear()
                output.notice(f"{update.text} ({update.code})")
                return EXIT_SERVER
        return EXIT_SERVER

    def _show_level(self, state: str) -> None:
        # Redrawn ten times a second of audio, not per chunk: a terminal is slow.
        seconds = self.detector.seconds
        if seconds >= self._meter_due:
            self._meter_due = seconds + METER_SECONDS
            self.output.level(self.detector.level.dbfs, state)


__all__ = ["PROG", "Listener", "Output", "RequestOpener"]
