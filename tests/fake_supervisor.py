"""A fake Supervisor: its discovery endpoint on 127.0.0.1, recording what it was sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "supervisor-token-5b0e9c1d7a3f"


@dataclass
class FakeSupervisor:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    """Answers for the next requests, then 200."""
    hold: bool = False
    """Never answer (until the test ends)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[str | None, Any]] = field(default_factory=list)
    announced: asyncio.Event = field(default_factory=asyncio.Event)

    async def discovery(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        self.requests.append((authorization, await request.json()))
        if self.hold:
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            # Echo the header, so that a test can prove the client never repeats the token.
            message = f"refused ({authorization})"
            return web.json_response({"result": "error", "message": message}, status=status)
        self.announced.set()
        return web.json_response({"result": "ok", "data": {"uuid": "7f3a0c"}})


@contextlib.asynccontextmanager
async def running_supervisor() -> AsyncIterator[FakeSupervisor]:
    fake = FakeSupervisor()
    app = web.Application()
    app.router.add_post("/discovery", fake.discovery)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


def expected_request(uri: str) -> tuple[str, dict[str, Any]]:
    return f"Bearer {TOKEN}", {"service": "wyoming", "config": {"uri": uri}}
