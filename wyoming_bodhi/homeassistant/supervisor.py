"""Announce the add-on to Home Assistant through the Supervisor's discovery API.

``python -m wyoming_bodhi.homeassistant.supervisor --announce tcp://HOST:10300`` POSTs
``{"service": "wyoming", "config": {"uri": ...}}`` to ``$SUPERVISOR_URL/discovery``
(``http://supervisor`` inside an add-on) with the add-on's ``SUPERVISOR_TOKEN``; Home Assistant
then offers to set up the Wyoming integration for the server. The add-on's start script runs it
once the server answers, and carries on serving if it fails.

Exit status: 0 announced; 1 the Supervisor could not be reached or refused; 2 no token (not
running as an add-on) or a bad argument. The token is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp

from ..addresses import WILDCARD_HOSTS, tcp_host_port
from ..redaction import Secrets

SERVICE = "wyoming"
DEFAULT_SUPERVISOR_URL = "http://supervisor"
TOKEN_ENV = "SUPERVISOR_TOKEN"
URL_ENV = "SUPERVISOR_URL"
DEFAULT_ATTEMPTS = 4
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRY_DELAY = 2.0

_LOGGER = logging.getLogger("wyoming_bodhi.homeassistant.supervisor")


class DiscoveryError(Exception):
    """The Supervisor could not be reached, or refused the announcement."""


class _Permanent(DiscoveryError):
    """A refusal that another attempt would not change (4xx)."""


def discovery_payload(uri: str) -> dict[str, Any]:
    return {"service": SERVICE, "config": {"uri": uri}}


def check_uri(uri: str) -> str:
    """The URI Home Assistant will connect to: ``tcp://HOST:PORT`` with a real host."""
    host_port = tcp_host_port(uri)
    if host_port is None or not host_port[0]:
        raise ValueError(f"'{uri}' is not tcp://HOST:PORT")
    if host_port[0] in WILDCARD_HOSTS:
        raise ValueError(
            f"'{uri}' names no host Home Assistant can reach; use the add-on's hostname"
        )
    return uri


async def _post_once(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any], token: str, timeout: float
) -> str:
    async with session.post(
        url,
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as response:
        try:
            body: Any = await response.json(content_type=None)
        except ValueError:
            body = None
        if response.status == 200 and isinstance(body, dict) and body.get("result") == "ok":
            data = body.get("data")
            return str(data.get("uuid", "")) if isinstance(data, dict) else ""
        message = body.get("message") if isinstance(body, dict) else None
        reason = f"HTTP {response.status}" + (f": {message}" if message else "")
        if 400 <= response.status < 500:
            raise _Permanent(reason)
        raise DiscoveryError(reason)


async def announce(
    uri: str,
    *,
    token: str,
    supervisor_url: str = DEFAULT_SUPERVISOR_URL,
    attempts: int = DEFAULT_ATTEMPTS,
    timeout: float = DEFAULT_TIMEOUT,
    retry_delay: float = DEFAULT_RETRY_DELAY,
) -> str:
    """POST the discovery message; returns the Supervisor's discovery id.

    Connection failures, time-outs and 5xx answers are retried (``attempts`` in all, waiting
    ``retry_delay`` × the attempt number between them); a 4xx answer is final. Raises
    :class:`DiscoveryError` with a one-line reason that never contains the token.
    """
    if not token:
        raise DiscoveryError(f"no {TOKEN_ENV}")
    url = f"{supervisor_url.rstrip('/')}/discovery"
    payload = discovery_payload(check_uri(uri))
    attempts = max(1, attempts)
    # What the Supervisor says goes into our messages; a proxy could echo the token back.
    secrets = Secrets([token])
    async with aiohttp.ClientSession() as session:
        for attempt in range(1, attempts + 1):
            try:
                return await _post_once(session, url, payload, token, timeout)
            except _Permanent as err:
                raise DiscoveryError(f"the Supervisor refused: {secrets.text(str(err))}") from None
            except DiscoveryError as err:
                reason = f"the Supervisor answered {secrets.text(str(err))}"
            except TimeoutError:
                reason = f"the Supervisor did not answer within {timeout:g} s"
            except aiohttp.ClientError as err:
                reason = f"cannot reach the Supervisor at {url}: {secrets.text(str(err))}"
            if attempt == attempts:
                raise DiscoveryError(f"{reason} (gave up after {attempts} attempts)")
            delay = retry_delay * attempt
            _LOGGER.warning(
                "discovery attempt %d/%d failed: %s; retrying in %g s",
                attempt,
                attempts,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wyoming_bodhi.homeassistant.supervisor",
        description="Announce the Wyoming server to Home Assistant through Supervisor "
        f"discovery. Needs {TOKEN_ENV} (the Supervisor gives it to every add-on).",
    )
    parser.add_argument(
        "--announce",
        metavar="URI",
        required=True,
        help="the URI Home Assistant should connect to, e.g. tcp://HOSTNAME:10300",
    )
    parser.add_argument(
        "--supervisor-url",
        default=os.environ.get(URL_ENV) or DEFAULT_SUPERVISOR_URL,
        help=f"the Supervisor API (env {URL_ENV}; default %(default)s)",
    )
    parser.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S")
    parser.add_argument("--retry-delay", type=float, default=DEFAULT_RETRY_DELAY, metavar="S")
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s:%(name)s:%(message)s",
        force=True,
    )
    if args.debug:
        # aiohttp's own debug output could show request headers, the token among them.
        logging.getLogger("aiohttp").setLevel(logging.INFO)
    try:
        uri = check_uri(args.announce)
    except ValueError as err:
        _LOGGER.error("cannot announce: %s", err)
        return 2
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        _LOGGER.error(
            "no %s in the environment (not running as a Home Assistant add-on?): "
            "not announcing %s; add the Wyoming integration by hand",
            TOKEN_ENV,
            uri,
        )
        return 2
    _LOGGER.debug("announcing %s to %s/discovery", uri, args.supervisor_url.rstrip("/"))
    try:
        discovery_id = asyncio.run(
            announce(
                uri,
                token=token,
                supervisor_url=args.supervisor_url,
                attempts=args.attempts,
                timeout=args.timeout,
                retry_delay=args.retry_delay,
            )
        )
    except DiscoveryError as err:
        _LOGGER.error("Supervisor discovery failed: %s", err)
        return 1
    _LOGGER.info(
        "announced %s to Home Assistant (Supervisor discovery %s)", uri, discovery_id or "ok"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
