"""deploy/haproxy/haproxy.cfg, run by Debian's real HAProxy in front of three real replicas.

30 clients stream in real time, one connection per request as Home Assistant makes them,
through HAProxy with no retries (as kube-proxy or a cloud TCP balancer behaves). A rolling
restart of the replicas must lose no request; a replica killed outright loses only the
requests it had in flight. The figures (HAProxy's added latency, how long each step of a
restart took) are printed: ``pytest -n 0 -s tests/test_deploy_haproxy.py``.
"""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import aiohttp
import pytest

from .balancer import (
    HAPROXY_CONFIG,
    HAProxy,
    Load,
    Replica,
    check_config,
    haproxy,
    lost,
    poll_until,
    render_config,
    replicas_running,
    running_haproxy,
)
from .harness import running_simulator, unavailable

CLIENTS = 30
UP_TIMEOUT = 20.0
"""From starting a replica to HAProxy sending it requests (start-up, then two checks)."""


@pytest.fixture(autouse=True)
def _needs_haproxy() -> None:
    if haproxy() is None:
        unavailable("HAProxy", "not installed: apt-get install haproxy")


@dataclass
class Cluster:
    haproxy: HAProxy
    replicas: list[Replica]
    http: aiohttp.ClientSession


AS_SHIPPED: tuple[tuple[str, str], ...] = ()
WITH_RETRIES = (("    retries 0\n", "    retries 1\n    option redispatch\n"),)
"""The one change the config's comments offer: a refused connect tried on another replica."""


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Three replicas behind HAProxy running haproxy.cfg (with ``request.param``'s changes)."""
    changes = getattr(request, "param", AS_SHIPPED)
    async with (
        running_simulator(texts=["batti jalao"], history=100) as simulator,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
    ):
        with replicas_running(simulator.url, tmp_path) as replicas:
            async with running_haproxy(replicas, tmp_path, changes) as balancer:
                for replica in replicas:
                    await balancer.wait_for(replica.name, "UP", UP_TIMEOUT)
                yield Cluster(balancer, replicas, http)


def test_the_shipped_config_passes_haproxys_own_check(tmp_path: Path) -> None:
    shipped = check_config(HAPROXY_CONFIG)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    # And as the tests run it, on loopback.
    replicas = [Replica(f"bodhi-{i}", "ws://127.0.0.1:1", io.BytesIO()) for i in (1, 2, 3)]
    rendered = tmp_path / "haproxy.cfg"
    rendered.write_text(render_config(HAPROXY_CONFIG.read_text(), 10300, 8404, replicas))
    checked = check_config(rendered)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_config_balances_tcp_by_readiness_without_retries() -> None:
    """What the tests below rely on, said where a reader of the file looks."""
    lines = [line.split("#")[0].split() for line in HAPROXY_CONFIG.read_text().splitlines()]
    settings = [line for line in lines if line]
    assert ["mode", "tcp"] in settings
    assert ["balance", "leastconn"] in settings
    assert ["http-check", "send", "meth", "GET", "uri", "/readyz"] in settings
    assert ["retries", "0"] in settings
    assert not any(line[:2] == ["option", "redispatch"] for line in settings)
    (default_server,) = [line for line in settings if line[0] == "default-server"]
    _keyword, check, *pairs = default_server
    assert check == "check"
    options = dict(zip(pairs[::2], pairs[1::2], strict=True))
    assert {
        "inter": "1s",
        "fall": "2",
        "rise": "2",
        "on-error": "mark-down",
    }.items() <= options.items()


async def test_a_rolling_restart_behind_haproxy_without_retries_loses_no_request(
    cluster: Cluster,
) -> None:
    balancer, replicas = cluster.haproxy, cluster.replicas
    loop = asyncio.get_running_loop()
    load = Load(balancer.port, CLIENTS)
    # First, half the requests straight to the replicas: what HAProxy adds to the latency.
    load.direct = {replica.name: replica.port for replica in replicas}
    compared_from = loop.time()
    load.start()
    try:
        await poll_until(lambda: _enough_to_compare(load, compared_from), 30, "200 of each")
        load.direct = {}
        restart_from = loop.time()
        compared = [r for r in load.requests if r.ended < restart_from]
        steps = [await _restart(cluster, replica) for replica in replicas]
        # Requests made after the last restart reach the restarted replicas too.
        after = loop.time()
        await poll_until(lambda: _any_started_after(load, after + 1.0), 10, "later requests")
    finally:
        await load.stop()

    through = [r.latency_ms for r in compared if r.route == "haproxy" and r.latency_ms is not None]
    direct = [r.latency_ms for r in compared if r.route != "haproxy" and r.latency_ms is not None]
    added = median(through) - median(direct)
    during = [r for r in load.since(restart_from) if r.route == "haproxy"]
    print(
        f"\nHAProxy p50: {median(through):.2f} ms through it (n={len(through)}), "
        f"{median(direct):.2f} ms direct (n={len(direct)}): adds {added:+.2f} ms"
    )
    for replica, step in zip(replicas, steps, strict=True):
        print(f"{replica.name}: {step}")
    print(f"rolling restart: {len(during)} requests, {len(lost(during))} lost")
    assert lost(load.requests) == [], lost(load.requests)
    assert len(during) > 100
    for step in steps:
        assert step.code == 0
        # HAProxy stopped sending it requests while it still accepted them.
        assert step.down < step.exited


@dataclass(frozen=True)
class RestartStep:
    """Seconds from SIGTERM to each thing seen, for one replica."""

    not_ready: float
    """/readyz answers 503."""
    down: float
    """HAProxy marks it DOWN."""
    exited: float
    code: int
    up_after_start: float
    """From starting it again to HAProxy marking it UP."""

    def __str__(self) -> str:
        return (
            f"SIGTERM → not ready {self.not_ready:.2f} s, DOWN in HAProxy {self.down:.2f} s, "
            f"exited {self.exited:.2f} s (code {self.code}); started again → UP "
            f"{self.up_after_start:.2f} s"
        )


async def _restart(cluster: Cluster, replica: Replica) -> RestartStep:
    """SIGTERM, watch it drain and exit, start it again, wait until HAProxy uses it."""
    loop = asyncio.get_running_loop()
    balancer = cluster.haproxy
    terminated = loop.time()
    replica.signal(signal.SIGTERM)
    not_ready, down, code = await asyncio.gather(
        poll_until(lambda: _not_ready(replica, cluster.http), 10, f"{replica.name} not ready"),
        balancer.wait_for(replica.name, "DOWN", 15),
        replica.wait_exit(30),
    )
    exited = loop.time()
    replica.start()
    started = loop.time()
    up = await balancer.wait_for(replica.name, "UP", UP_TIMEOUT)
    return RestartStep(
        not_ready - terminated, down - terminated, exited - terminated, code, up - started
    )


async def _not_ready(replica: Replica, http: aiohttp.ClientSession) -> bool:
    return not await replica.ready(http)


async def _enough_to_compare(load: Load, since: float) -> bool:
    counts = {"haproxy": 0, "direct": 0}
    for request in load.since(since):
        counts["haproxy" if request.route == "haproxy" else "direct"] += 1
    return min(counts.values()) >= 200


async def _any_started_after(load: Load, moment: float) -> bool:
    return bool(load.since(moment))


@pytest.mark.parametrize(
    ("cluster", "refused"), [(AS_SHIPPED, 1), (WITH_RETRIES, 0)], ids=["as-shipped", "retries-1"],
    indirect=["cluster"],
)  # fmt: skip
async def test_a_killed_replica_loses_the_requests_it_had_in_flight(
    cluster: Cluster, refused: int
) -> None:
    """SIGKILL: what the replica was serving is lost, unavoidably. As shipped (no retries),
    so is the request HAProxy sends it next, whose refused connection marks it down at once
    (and any sent in the same instant); a retry on another replica (``retries 1``, ``option
    redispatch``) saves those."""
    balancer, replicas = cluster.haproxy, cluster.replicas
    loop = asyncio.get_running_loop()
    victim = replicas[1]
    load = Load(balancer.port, CLIENTS)
    load.start()
    try:
        steady = loop.time() + 1.0
        await poll_until(lambda: _any_started_after(load, steady), 10, "steady load")
        in_flight = await balancer.sessions(victim.name)
        killed = loop.time()
        victim.signal(signal.SIGKILL)
        down = await balancer.wait_for(victim.name, "DOWN", 10)
        later = down + 1.0
        await poll_until(lambda: _any_started_after(load, later), 10, "later requests")
    finally:
        await load.stop()
    gone = lost(load.requests)
    # How each ended, as HAProxy logged it (a line per connection, once it has closed).
    ports = [request.local_port for request in gone]
    await poll_until(lambda: _logged(balancer, ports), 5, "HAProxy's log of the lost requests")
    sessions = balancer.sessions_by_client()
    states = sorted(sessions[request.local_port].state for request in gone)  # type: ignore[index]
    print(
        f"\nSIGKILL: {in_flight} requests in flight on {victim.name}; {len(gone)} lost, "
        f"HAProxy's states {states}; DOWN in HAProxy after {down - killed:.2f} s"
    )
    assert gone, "the replica had nothing in flight"
    # Every request lost was on the killed replica: those it was serving (their
    # connections reset or closed), and as shipped the first one sent after (refused).
    assert {sessions[r.local_port].server for r in gone} == {victim.name}  # type: ignore[index]
    # As shipped, the first refused connection marks it down; on a loaded machine a few more
    # may have been sent to it in the same instant. With a retry, none is lost.
    assert (1 <= states.count("SC") <= 5) if refused else states.count("SC") == 0, states
    assert all(request.started < down for request in gone)
    assert load.since(down), "no request was made after it went down"


async def _logged(balancer: HAProxy, ports: list[int | None]) -> bool:
    return set(ports) <= set(balancer.sessions_by_client())
