"""Home Assistant's names kept fresh in the background, for the request path to read.

:class:`HassNames` asks Home Assistant (:mod:`.websocket_api`) now and every
``refresh_seconds``, keeps the last good answer, retries a failure sooner, warns once per kind
of failure, and blanks the token out of anything the server said before it is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from ..redaction import Secrets
from .websocket_api import HassApi, HassError

_LOGGER = logging.getLogger(__name__)

# The first retry after a failure comes this soon, doubling up to refresh_seconds: a Home
# Assistant that is restarting is back within a minute, and waiting ten for it is a long time
# to go without the user's names.
RETRY_FIRST = 5.0


class HassNames:
    """Home Assistant's names, fetched in the background and cached.

    ``names`` is what the last good fetch found (empty until one succeeds). It is a plain
    attribute read: safe on the request path, never awaited, never raising. A failed fetch
    keeps the previous names, warns once per kind of failure, and is retried sooner
    (:data:`RETRY_FIRST`, doubling, never later than ``refresh_seconds``).

    ``url`` and ``token``: see :class:`~.websocket_api.HassApi`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        refresh_seconds: float = 600,
        timeout: float = 10,
    ) -> None:
        if refresh_seconds <= 0 or timeout <= 0:
            raise ValueError("refresh_seconds and timeout must be positive")
        self._api = HassApi(session, url, token, timeout=float(timeout), note=self._note)
        self._where = self._api.where
        # Server text goes into our messages; a misbehaving server could echo the token back.
        self._secrets = Secrets([token])
        self._refresh = float(refresh_seconds)
        self._names: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        self._notes: set[str] = set()
        #: Set after every successful fetch; clear it to wait for the next one.
        self.updated = asyncio.Event()
        #: Set after every failed fetch; clear it to wait for the next one.
        self.failed = asyncio.Event()
        #: What the last fetch got wrong, None after a success.
        self.last_error: str | None = None

    def __repr__(self) -> str:
        # Spelled out so that nothing — a debugger, a log line with %r — ever prints the token.
        return f"HassNames({self._where!r}, names={len(self._names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def start(self) -> None:
        """Fetch now, then every ``refresh_seconds``, until :meth:`stop`. Idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hass-names")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        failures = 0
        while True:
            error = await self.refresh()
            if error is None:
                failures = 0
                delay = self._refresh
            elif error.kind == "auth":
                # A rejected token will not fix itself in a few seconds, and Home Assistant
                # bans an address after repeated failed logins if the user turned that on.
                delay = self._refresh
            else:
                failures += 1
                delay = min(self._refresh, RETRY_FIRST * 2 ** (failures - 1))
            await asyncio.sleep(delay)

    async def refresh(self) -> HassError | None:
        """Fetch once now: None on success, else what went wrong (already logged)."""
        started = time.monotonic()
        try:
            names = await self._api.fetch_names()
        except HassError as err:
            # Rebuilt, not re-used: server text is in the message, the token blanked out.
            failure = HassError(err.kind, self._secrets.text(str(err)))
            self._fail(failure)
            return failure
        elapsed = time.monotonic() - started
        changed = names != self._names
        recovered = bool(self._warned)
        self._names = names
        self._warned.clear()
        self.last_error = None
        level = logging.INFO if changed or recovered else logging.DEBUG
        _LOGGER.log(
            level,
            "Using %d names from Home Assistant at %s as hotwords (fetched in %.2f s)",
            len(names),
            self._where,
            elapsed,
        )
        self.updated.set()
        return None

    def _fail(self, err: HassError) -> None:
        message = str(err)
        self.last_error = message
        kept = f"; keeping the {len(self._names)} names fetched before" if self._names else ""
        if err.kind in self._warned:
            _LOGGER.debug("Home Assistant names: %s%s", message, kept)
        else:
            self._warned.add(err.kind)
            _LOGGER.warning("Home Assistant names: %s%s", message, kept)
        self.failed.set()

    def _note(self, key: str, message: str) -> None:
        """A degraded but working setup: say so once for the life of this fetcher."""
        if key not in self._notes:
            self._notes.add(key)
            _LOGGER.warning("Home Assistant names: %s", message)


__all__ = ["RETRY_FIRST", "HassNames"]
