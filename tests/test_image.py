"""The images themselves, built from the Dockerfile and run: amd64 here, arm64 beside it.

There is no Docker engine here: tests/image.py builds each image with buildah from a Debian
base it makes with debootstrap, and the container runs under ``buildah run``, which starts the
image's command as its configured user with the image's environment, on the host's network.
arm64 (tests/test_image_arm64.py) is built and run under qemu-user emulation; its tests are
these, in a file of their own so that pytest-xdist builds the two architectures side by side.

Each architecture has two images: the standalone one (``docker build .``: a non-root user, the
server as its main process) and the add-on, built with what the Supervisor passes
(``BUILD_ARCH`` and the rest, no build.yaml) and run as the Supervisor runs it: no arguments,
root, options in /data/options.json, discovery announced, the status page on the ingress port.

Building is the one step that reaches the network, and only because building the image is
what is under test: like ``docker build``, it installs Debian's packages and the package's
wheels from the registries this machine uses. It happens once per change of the image's
sources (the images are kept in the machine's buildah storage, tagged by them, the bases and
the dependencies' layer for every checkout); docs/development.md has the times. Everything
the containers do is on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
import yaml

from . import image
from .fake_supervisor import TOKEN, expected_request, running_supervisor
from .harness import clean_env, free_port, stop_process, unavailable, wait_for_port

VERSION = tomllib.loads((image.ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]
MANIFEST = yaml.safe_load((image.ROOT / "config.yaml").read_text(encoding="utf-8"))
# The recording the README's "Try it" transcribes: two phrases.
SAMPLE = image.ROOT / "samples" / "batti-jalao.wav"
# buildah run's helper that chroots, takes on the image's user and starts the command.
CHROOT_EXEC = "buildah-chroot-exec"
DEMO_TRANSCRIPT = (
    "simulated transcript segment 1 from the Bodhi simulator "
    "simulated transcript segment 2 from the Bodhi simulator"
)
# Emulated, a Python program starts in seconds rather than a fraction of one.
START_TIMEOUT = 90


@dataclass(frozen=True)
class Built:
    buildah: image.Buildah
    name: str
    config: dict[str, Any]
    """The image's Docker config: User, Entrypoint, Healthcheck, Env, Labels."""
    architecture: str


def build(arch: str, addon: bool) -> Built:
    reason = image.unavailable(arch)
    if reason:
        unavailable("building the image", reason)
    try:
        buildah, name = image.ensure_image(arch, addon)
    except image.BuildError as error:
        pytest.fail(f"the image did not build: {error}")
    inspected = buildah.inspect(name)
    return Built(buildah, name, inspected["Docker"]["config"], inspected["Docker"]["architecture"])


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

    def run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def copy(self, source: Path, destination: str) -> None:
        self.buildah("copy", self.name, str(source), destination)

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
    """A process's arguments. Under emulation the kernel starts qemu with the program's path
    and its arguments after it, so a program's own arguments are the tail of this list."""
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


async def transcribe_sample(port: int) -> str:
    """The README's sample through the file client on the host, as Home Assistant is to a
    container; its transcript."""
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
    return result.stdout.strip()


async def stop(server: subprocess.Popen[str], main: int) -> str:
    """``docker stop``: SIGTERM to the main process; its output once it has ended."""
    os.kill(main, signal.SIGTERM)
    output, _ = await asyncio.to_thread(server.communicate, timeout=30)
    return output


# -- the tests, for each architecture ---------------------------------------------------------


class ImageTests:
    """The images of one architecture: a subclass per architecture names it."""

    arch: ClassVar[str]
    every_check: ClassVar[bool] = True
    """Also the checks whose outcome no architecture changes, run natively on amd64: under
    emulation each costs an emulated Python start (seconds of a core) and proves nothing
    more. The health check failing before the server answers, the add-on's health check and
    transcript (the standalone container passes both on every architecture)."""

    @pytest.fixture(scope="class")
    @classmethod
    def standalone(cls) -> Built:
        return build(cls.arch, addon=False)

    @pytest.fixture(scope="class")
    @classmethod
    def addon(cls) -> Built:
        return build(cls.arch, addon=True)

    def assert_runs_as_built(self, pid: int) -> None:
        """The process runs the image's own programs: natively, or (arm64 here) through the
        kernel's qemu interpreter for them."""
        program = Path(f"/proc/{pid}/exe").resolve()
        interpreter = image.ARCHES[self.arch].interpreter()
        if interpreter is None:
            assert program.name.startswith(("python3", "dash")), program
        else:
            assert program == interpreter


class StandaloneTests(ImageTests):
    """``docker build .`` and ``docker run``."""

    def test_the_standalone_image_is_the_dockerfiles(self, standalone: Built) -> None:
        config = standalone.config
        assert standalone.architecture == self.arch
        assert config["User"] == "1000:1000"
        assert config["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"]
        assert config["Healthcheck"]["Test"] == ["CMD", "wyoming-bodhi", "--health-check"]
        assert config["Env"][0].startswith("PATH=/opt/venv/bin:")
        assert "BODHI_ADDON=false" in config["Env"]
        assert config["Labels"]["io.hass.version"] == VERSION
        assert "10300/tcp" in config["ExposedPorts"]

    async def test_the_standalone_image_serves_the_demo_as_its_user_healthy_and_stops(
        self, standalone: Built
    ) -> None:
        """``docker run -e WYOMING_URI=... IMAGE --demo``, its HEALTHCHECK, a client, then
        ``docker stop``."""
        test, *health = standalone.config["Healthcheck"]["Test"]
        assert test == "CMD"  # exec form: run as is, not through a shell
        port = free_port()
        with container(standalone, WYOMING_URI=f"tcp://127.0.0.1:{port}") as ctr:
            if self.every_check:
                # The health check can fail: nothing serves yet.
                unhealthy = await asyncio.to_thread(ctr.run, *health)
                assert unhealthy.returncode != 0
                assert (
                    f"cannot connect to tcp://127.0.0.1:{port}"
                    in unhealthy.stdout + unhealthy.stderr
                )

            with started(ctr, "--demo") as server:
                await wait_for_port(port, server, timeout=START_TIMEOUT)
                main = main_process(server.pid)
                # The entrypoint exec'd the server: it is the main process, and not root.
                assert argv(main)[-2:] == ["/opt/venv/bin/wyoming-bodhi", "--demo"]
                assert uids(main) == [1000] * 4
                self.assert_runs_as_built(main)

                healthy = await asyncio.to_thread(ctr.run, *health)
                assert healthy.returncode == 0, healthy.stdout + healthy.stderr
                assert await transcribe_sample(port) == DEMO_TRANSCRIPT
                output = await stop(server, main)
        assert server.returncode == 0, output
        assert "DEMO MODE" in output
        assert "Shutting down (SIGTERM)" in output


class AddOnTests(ImageTests):
    """The Supervisor's build and run. A class of its own so that arm64's, emulated, can run
    in a worker of its own: its build waits for the standalone one (the architecture's lock)
    and reuses its steps, then it runs beside the standalone container."""

    def test_the_add_on_image_is_the_supervisors_build(self, addon: Built) -> None:
        config = addon.config
        assert addon.architecture == self.arch
        assert config["User"] == "0:0"  # the Supervisor's /data is root's
        assert "BODHI_ADDON=true" in config["Env"]
        assert config["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"]
        assert config["Healthcheck"]["Test"] == ["CMD", "wyoming-bodhi", "--health-check"]
        labels = config["Labels"]
        assert labels["io.hass.arch"] == image.ARCHES[self.arch].supervisor
        assert labels["io.hass.version"] == MANIFEST["version"] == VERSION
        assert labels["io.hass.type"] == "app"  # the Supervisor's label wins over ours

    async def test_the_add_on_serves_its_options_announces_and_stops(
        self, addon: Built, tmp_path: Path
    ) -> None:
        """As the Supervisor runs it: no arguments, options in /data/options.json, its token
        and URL in the environment; Home Assistant's ingress proxy asks for the status page."""
        options = {**MANIFEST["options"], "api_key": "any-key", "demo": True}
        (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
        port, ingress = free_port(), free_port()
        async with running_supervisor() as supervisor:
            env = {
                "SUPERVISOR_TOKEN": TOKEN,
                "SUPERVISOR_URL": supervisor.url,
                # On the host's network here: loopback and free ports, not 0.0.0.0:10300.
                "ADDON_HOST": "127.0.0.1",
                "ADDON_PORT": str(port),
                "ADDON_INGRESS_PORT": str(ingress),
                "ADDON_INGRESS_FROM": "127.0.0.1",  # the proxy is on loopback too
                "ADDON_DISCOVERY_HOST": "bodhi-addon",
                # The image's health check asks the default port unless told otherwise.
                "WYOMING_URI": f"tcp://127.0.0.1:{port}",
            }
            with container(addon, **env) as ctr:
                ctr.copy(tmp_path / "options.json", "/data/options.json")
                with started(ctr) as server:
                    await wait_for_port(port, server, timeout=START_TIMEOUT)
                    main = main_process(server.pid)
                    # The entrypoint exec'd the add-on's start script, which runs as root.
                    assert argv(main)[-1] == "/usr/local/bin/run-addon.sh"
                    assert uids(main) == [0] * 4
                    self.assert_runs_as_built(main)
                    (server_args,) = [
                        argv(pid) for pid in descendants(main) if "--config" in argv(pid)
                    ]
                    assert server_args[server_args.index("--config") + 1] == "/data/options.json"

                    await asyncio.wait_for(supervisor.announced.wait(), START_TIMEOUT)
                    assert supervisor.requests == [expected_request(f"tcp://bodhi-addon:{port}")]
                    if self.every_check:
                        (_, *health) = addon.config["Healthcheck"]["Test"]
                        healthy = await asyncio.to_thread(ctr.run, *health)
                        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
                    async with aiohttp.ClientSession() as http:
                        async with http.get(f"http://127.0.0.1:{ingress}/") as page:
                            assert page.status == 200
                            assert "<title>wyoming-bodhi</title>" in await page.text()
                    if self.every_check:
                        assert await transcribe_sample(port) == DEMO_TRANSCRIPT
                    output = await stop(server, main)
        assert server.returncode == 0, output
        assert "run-addon: received SIGTERM: stopping wyoming-bodhi" in output
        assert "run-addon: wyoming-bodhi exited with status 0" in output
        assert "DEMO MODE" in output
        assert TOKEN not in output


class TestAmd64(AddOnTests, StandaloneTests):  # collected standalone first
    arch = "amd64"
