"""An utterance's endpointer: with endpointing, this side decides when the command has ended.

Home Assistant then runs no VAD of its own, so its limits are ours to enforce: the command
ends when the engine completes its first phrase (that phrase is the command), when no speech
is recognised within ``no_speech_timeout``, or when it reaches ``max_command``. Each ending
cuts the audio (the owner's ``cut``): what is queued is dropped and the end goes out next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..engines.base import Phrase


class Endpointer:
    def __init__(
        self,
        enabled: bool,
        *,
        no_speech_timeout: float,
        max_command: float,
        cut: Callable[[str], object],
    ) -> None:
        self.enabled = enabled
        self._no_speech_timeout = no_speech_timeout
        self._max_command = max_command
        self._cut = cut
        self._timers: list[asyncio.TimerHandle] = []
        self.heard_text = False
        """Some phrase, partial or complete, had text."""

    def start(self) -> None:
        """Arm the timers (with endpointing): from the start of the engine's session."""
        if not self.enabled:
            return
        loop = asyncio.get_running_loop()
        self._timers = [
            loop.call_later(self._no_speech_timeout, self._on_no_speech),
            loop.call_later(
                self._max_command,
                self._cut,
                f"the command reached the {self._max_command:g} s limit",
            ),
        ]

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def heard(self, phrase: Phrase) -> None:
        if phrase.text.strip():
            self.heard_text = True

    def completed(self, engine_title: str) -> bool:
        """The engine completed a phrase: whether that ends the command (with endpointing,
        the first does, and the audio is cut before anything is written, so that no more of
        it is sent meanwhile)."""
        if self.enabled:
            self._cut(f"{engine_title} ended the command")
        return self.enabled

    def _on_no_speech(self) -> None:
        if not self.heard_text:
            self._cut(f"no speech recognised within {self._no_speech_timeout:g} s")


__all__ = ["Endpointer"]
