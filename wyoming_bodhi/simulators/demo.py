"""``--demo``: each engine's bundled simulator stands in for it, on loopback.

The server starts them before it serves and points each engine's settings at its own; what
the simulators say is the server's log's business only with ``--debug``, since a demo serves
anyone who reaches it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator

from ..engines import registry
from ..settings import EngineEntry, Settings

_LOGGER = logging.getLogger("wyoming_bodhi")
"""The server's logger: the demo's lines are the server's own (they say what it serves)."""

DEMO_HISTORY = 20
"""Connections each simulator remembers: the demo may run for months, nobody reads them."""
SIMULATORS_LOGGER = "wyoming_bodhi.simulators"


@contextlib.asynccontextmanager
async def demo_backend(settings: Settings) -> AsyncIterator[Settings]:
    """In demo mode, each engine's bundled simulator stands in for it; otherwise nothing
    changes. An engine without a simulator is left out."""
    if not settings.demo:
        yield settings
        return
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(quiet_simulators(settings.debug))
        entries, served, credentials = [], [], []
        for entry in settings.engines:
            plugin, own = entry.plugin, entry.settings
            simulate = registry.simulator(plugin)
            if simulate is None:
                if entry.configured:
                    _LOGGER.info("Demo mode: %s has no simulator, and is left out", plugin.title)
                    own = dataclasses.replace(own, **{plugin.credential: None})
            elif entry.configured:
                with registry.blamed(plugin, "start its simulator", own):
                    simulator = await stack.enter_async_context(simulate(own, history=DEMO_HISTORY))
                with registry.blamed(plugin, "point its settings at its simulator", own):
                    own = plugin.simulated(own, simulator.url)
                served.append(f"{plugin.title} at {simulator.url}")
                credentials.append(plugin.declaration(plugin.credential).env)
            entries.append(EngineEntry(plugin, own))
        _LOGGER.warning(
            "DEMO MODE: transcripts come from the bundled simulators (%s), not from the real "
            "services. They find speech by loudness and answer each phrase with a placeholder "
            "text; set %s and drop --demo to transcribe for real.",
            ", ".join(served),
            " or ".join(credentials),
        )
        yield dataclasses.replace(settings, engines=tuple(entries))


@contextlib.contextmanager
def quiet_simulators(debug: bool) -> Iterator[None]:
    """The simulators' own line per connection (two a request), only with ``--debug``: the
    demo serves anyone who reaches it, and the server's log says what each request did."""
    simulators = logging.getLogger(SIMULATORS_LOGGER)
    level = simulators.level
    if not debug:
        simulators.setLevel(logging.WARNING)
    try:
        yield
    finally:
        simulators.setLevel(level)
