"""The README's commands, run as a newcomer would run them, so the README cannot rot."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = ".venv/bin/"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|yaml)?\n(.*?)```", text, flags=re.DOTALL)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def here(command: str) -> str:
    """The command for this interpreter's environment: CI runs the suite from other venvs
    too (one per Python), where the README's .venv/bin/ is another Python's."""
    bin_dir = Path(sys.executable).parent
    if bin_dir.resolve() == (ROOT / VENV_BIN).resolve():
        return command
    return command.replace(VENV_BIN, f"{bin_dir}/")


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    head = README[: README.index("\n## ")]
    start, test = code_blocks(head)[:2]
    assert start.strip() == (
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/wyoming-bodhi --demo"
    )
    test_command = test.strip()
    assert test_command == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci, "CI must run exactly the README's test command"


def test_try_it_takes_at_most_three_commands_and_installs_as_the_first_line_does() -> None:
    (block,) = code_blocks(section("Try it"))[:1]
    commands = block.strip().splitlines()
    assert len(commands) <= 3
    assert commands[0] == "python3 -m venv .venv && .venv/bin/pip install ."
    head = README[: README.index("\n## ")]
    assert code_blocks(head)[0].startswith(commands[0])


def test_try_it_works_verbatim_in_one_terminal() -> None:
    """The README's server and client commands, in one shell, as written (the install line
    is what this suite's own environment already did)."""
    (block,) = code_blocks(section("Try it"))[:1]
    server, client = block.strip().splitlines()[1:]
    with socket.socket() as probe:
        in_use = probe.connect_ex(("127.0.0.1", 10300)) == 0
    assert not in_use, "port 10300 is taken: the README's Try it serves there"
    script = f"set -m\n{here(server)}\n{here(client)}\nstatus=$?\nkill %1\nwait\nexit $status\n"
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    # The two phrases of the sample, streamed as they come, then the transcript.
    streamed = [line for line in result.stderr.splitlines() if line.startswith("… ")]
    assert streamed == [
        "… simulated transcript segment 1 from the Bodhi simulator",
        "… simulated transcript segment 2 from the Bodhi simulator",
    ], result.stderr
    assert result.stdout.strip() == (
        "simulated transcript segment 1 from the Bodhi simulator "
        "simulated transcript segment 2 from the Bodhi simulator"
    )
    assert "DEMO MODE" in result.stderr
    assert elapsed < 30


def test_every_command_the_readme_shows_names_real_flags() -> None:
    """Flags in the README's shell blocks exist in the program they are given to."""
    programs = {
        "wyoming-bodhi": [sys.executable, "-m", "wyoming_bodhi", "--help"],
        "wyoming-bodhi-transcribe": [sys.executable, "-m", "wyoming_bodhi.transcribe", "--help"],
        "wyoming-bodhi-mic": [sys.executable, "-m", "wyoming_bodhi.mic", "--help"],
    }
    helps = {
        name: subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for name, command in programs.items()
    }
    for block in code_blocks(README):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("#")[0]) if part.strip() else []
                name = Path(words[0]).name if words else ""
                if name not in helps:
                    continue
                for word in words[1:]:
                    if word.startswith("--"):
                        assert word.split("=")[0] in helps[name], (name, word)


@pytest.mark.parametrize(
    "page",
    ["install", "clients", "status-page", "configuration", "home-assistant", "failure-behaviour", "security",
     "performance", "simulator", "development", "scaling"],
)  # fmt: skip
def test_every_docs_page_exists_opens_with_its_purpose_and_is_linked(page: str) -> None:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    title, blank, purpose = text.splitlines()[:3]
    assert title.startswith("# ") and blank == "" and purpose
    assert f"](docs/{page}.md)" in README
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / "docs" / target).resolve().exists(), (page, target)


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) <= 200
