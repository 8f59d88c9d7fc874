"""The image itself, built from the Dockerfile and run: its user, its health check, the demo.

There is no Docker engine here: tests/image.py builds the image with buildah from a Debian
base it makes with debootstrap, and the container runs under ``buildah run``, which starts the
image's command as its configured user with the image's environment, on the host's network.

Building is the one step that reaches the network, and only because building the image is
what is under test: like ``docker build``, it installs Debian's packages and the package's
wheels from the registries this machine uses. It happens once per change of the image's
sources (the result is cached under .cache/image, keyed by them); the first build takes about
two and a half minutes, later runs about ten seconds. Everything the container does is on
loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import image
from .harness import clean_env, free_port, stop_process, unavailable, wait_for_port

VERSION = tomllib.loads((image.ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]
# The recording the README's "Try it" transcribes: two phrases.
SAMPLE = image.ROOT / "samples" / "batti-jalao.wav"
# buildah run's helper that chroots, takes on the image's user and starts the command.
CHROOT_EXEC = "buildah-chroot-exec"
DEMO_TRANSCRIPT = (
    "simulated transcript segment 1 from the Bodhi simulator "
    "simulated transcript segment 2 from the Bodhi simulator"
)


@dataclass(frozen=True)
class Built:
    buildah: image.Buildah
    name: str
    config: dict[str, Any]
    """The image's Docker config: User, Entrypoint, Healthcheck, Env, Labels."""


@pytest.fixture(scope="session")
def built() -> Built:
    reason = image.unavailable()
    if reason:
        unavailable("building the image", reason)
    try:
        buildah, name = image.ensure_image()
    except image.BuildError as error:
        pytest.fail(f"the image did not build: {error}")
    config: dict[str, Any] = buildah.inspect(name)["Docker"]["config"]
    return Built(buildah, name, config)


class Container:
    """A container of the image, like ``docker create -e ...``; each ``run`` execs in it."""

    def __init__(self, built: Built, env: dict[str, str]) -> None:
        self.buildah = built.buildah
        self.config = built.config
        # The pid in the name lets a later session remove it if this one dies.
        self.name = f"{image.CONTAINER_PREFIX}run-{os.getpid()}"
        self.buildah("from", "--pull=never", "--name", self.name, built.name)
        # What `docker run -e` does: the environment of every process in the container, the
        # health check's included.
        for key, value in env.items():
            self.buildah("config", "--env", f"{key}={value}", self.name)

    def command(self, *args: str) -> list[str]:
        return self.buildah.command("run", "--isolation=chroot", self.name, "--", *args)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def remove(self) -> None:
        self.buildah("rm", self.name)


@contextlib.contextmanager
def container(built: Built, **env: str) -> Iterator[Container]:
    created = Container(built, env)
    try:
        yield created
    finally:
        created.remove()


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):  # it has gone
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def descendants(pid: int) -> list[int]:
    """Children first, then theirs."""
    found = children(pid)
    for child in list(found):
        found.extend(descendants(child))
    return found


def argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:  # it has gone
        return []


def main_process(runner: int) -> int:
    """The container's main process (Docker's PID 1): what the image's entrypoint became.

    ``buildah run --isolation chroot`` starts the command as the only child of its
    buildah-chroot-exec helper, which has already taken on the image's user.
    """
    pending = [runner]
    while pending:
        pid = pending.pop()
        kids = children(pid)
        if argv(pid)[:1] == [CHROOT_EXEC] and kids:
            (main,) = kids
            return main
        pending.extend(kids)
    raise AssertionError("the container's command has not started")


def uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(uid) for uid in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


@contextlib.contextmanager
def started(ctr: Container, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``docker start``: the image's entrypoint with ``args``, as the image's user."""
    proc = subprocess.Popen(
        ctr.command(*ctr.config["Entrypoint"], *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            # Stopped, buildah kills only the command it started: what that one started (if
            # the entrypoint did not exec, the server) would outlive the test.
            helpers = [pid for pid in descendants(proc.pid) if argv(pid)[:1] == [CHROOT_EXEC]]
            for pid in reversed([pid for helper in helpers for pid in descendants(helper)]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stop_process(proc, 15)


# -- the tests ----------------------------------------------------------------------------------


def test_the_built_image_has_the_dockerfiles_user_health_check_and_entrypoint(
    built: Built,
) -> None:
    config = built.config
    assert config["User"] == "bodhi"
    assert config["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"]
    assert config["Healthcheck"]["Test"] == ["CMD", "wyoming-bodhi", "--health-check"]
    assert config["Env"][0].startswith("PATH=/opt/venv/bin:")
    assert config["Labels"]["io.hass.version"] == VERSION
    assert "10300/tcp" in config["ExposedPorts"]


async def test_the_image_serves_the_demo_as_its_user_healthy_and_stops_on_sigterm(
    built: Built,
) -> None:
    """``docker run -e WYOMING_URI=... IMAGE --demo``, its HEALTHCHECK, a client, ``docker stop``."""
    test, *health = built.config["Healthcheck"]["Test"]
    assert test == "CMD"  # exec form: run as is, not through a shell
    port = free_port()
    with container(built, WYOMING_URI=f"tcp://127.0.0.1:{port}") as ctr:
        user = await asyncio.to_thread(ctr.run, "id", "-u")
        assert user.returncode == 0, user.stderr
        image_uid = int(user.stdout)
        assert image_uid != 0

        # The health check can fail: nothing serves yet.
        unhealthy = await asyncio.to_thread(ctr.run, *health)
        assert unhealthy.returncode != 0
        assert f"cannot connect to tcp://127.0.0.1:{port}" in unhealthy.stdout + unhealthy.stderr

        with started(ctr, "--demo") as server:
            await wait_for_port(port, server, timeout=60)
            main = main_process(server.pid)
            # The entrypoint exec'd the server: it is the main process, and not root.
            assert argv(main)[1:] == ["/opt/venv/bin/wyoming-bodhi", "--demo"]
            assert uids(main) == [image_uid] * 4

            healthy = await asyncio.to_thread(ctr.run, *health)
            assert healthy.returncode == 0, healthy.stdout + healthy.stderr

            # A client on the host, as Home Assistant is to a container.
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "wyoming_bodhi.transcribe", str(SAMPLE),
                 "--uri", f"tcp://127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_env(),
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == DEMO_TRANSCRIPT

            os.kill(main, signal.SIGTERM)  # what `docker stop` sends the main process
            output, _ = await asyncio.to_thread(server.communicate, timeout=30)
    assert server.returncode == 0, output
    assert "DEMO MODE" in output
    assert "Shutting down (SIGTERM)" in output
