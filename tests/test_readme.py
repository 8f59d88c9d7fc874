"""The README's and the docs' commands, run as a newcomer would run them, and their links
followed, so that the documentation cannot rot."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import capture

from .harness import free_port

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = ".venv/bin/"
TRY_IT_PORT = 10300
PAGES = [ROOT / "README.md", ROOT / "DOCS.md", *sorted((ROOT / "docs").glob("*.md"))]
"""Where a user reads commands and follows links."""


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def code_blocks(text: str) -> list[str]:
    return [body for language, body in fenced_blocks(text) if language in ("sh", "yaml", "")]


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
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' -e tests/engine_plugin "
        "&& .venv/bin/python -m pytest"
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


def try_it(uri: str | None = None) -> tuple[str, str]:
    """The Try it's server and client commands, as written or with ``uri`` given to both."""
    (block,) = code_blocks(section("Try it"))[:1]
    server, client = block.strip().splitlines()[1:]
    if uri is not None:
        assert server.endswith(" &"), server
        server, client = f"{server[:-2]} {uri} &", f"{client} {uri}"
    return server, client


def port_taken_advice() -> tuple[str, int]:
    """What the Try it says to do when its port is taken: a ``--uri`` for both commands."""
    match = re.search(r"give both commands `(--uri tcp://127\.0\.0\.1:(\d+))`", section("Try it"))
    assert match, "the Try it must say what to do when port 10300 is taken"
    return match[1], int(match[2])


def port_is_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def advice_for_a_taken_port() -> str:
    """The README's --uri; on another free port if even that one is taken here."""
    uri, port = port_taken_advice()
    return uri if not port_is_taken(port) else uri.replace(f":{port}", f":{free_port()}")


def run_try_it(server: str, client: str) -> None:
    """The server and client in one shell, as written (the install line is what this suite's
    own environment already did), and what the README says they print."""
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


def test_try_it_works_verbatim_in_one_terminal() -> None:
    """As written; where something else holds port 10300, as the README says to run it then
    (a test must not fail for what another program on the machine does)."""
    if port_is_taken(TRY_IT_PORT):
        run_try_it(*try_it(advice_for_a_taken_port()))
    else:
        run_try_it(*try_it())


@contextlib.contextmanager
def holding(port: int) -> Iterator[None]:
    """Something else listening on the port (if nothing already is): not a Wyoming server."""
    with socket.socket() as squatter:
        with contextlib.suppress(OSError):
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        assert port_is_taken(port)
        yield


def test_try_it_with_its_port_taken_works_as_the_readme_says() -> None:
    with holding(TRY_IT_PORT):
        run_try_it(*try_it(advice_for_a_taken_port()))


# -- every command in the README and the docs ------------------------------------------------

PROGRAMS = {
    "wyoming-bodhi": "wyoming_bodhi",
    "wyoming-bodhi-transcribe": "wyoming_bodhi.transcribe",
    "wyoming-bodhi-mic": "wyoming_bodhi.mic",
}
"""The package's commands, and the module each runs (``python -m`` works for each too)."""
OUR_MODULES = ("wyoming_bodhi", "benchmarks", "tests", "scripts")
ELSEWHERE = {
    "apt", "apt-get", "brew", "buildah", "cd", "chmod", "chown", "cp", "docker", "git", "kill",
    "haproxy", "kubectl", "mkdir", "printf", "script/run", "sleep", "sudo", "wait",
    # The shell's own words, in a loop a page shows.
    "do", "done", "for", "until", "while",
}  # fmt: skip
"""Other programs the docs show (and no test runs): the system's, Docker's, Rhasspy's."""
BLOCK_KINDS = {"sh", "yaml", "json", ""}
"""The fenced blocks a page may have: commands go in ``sh`` blocks, which the checks read (a
``bash`` or ``console`` block would hide its commands from them); ``yaml`` and ``json`` hold
files and messages, and a bare block what a program prints."""
SEPARATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TRACKED_TOP = {
    line.split("/")[0]
    for line in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    if "/" in line
}
"""The repository's folders: a path into one of them in a command must exist."""


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line: words, without assignments, redirections,
    ``sudo`` or comments."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTS:
            skip_next = True
        elif commands[-1] or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
            commands[-1].append(token)
    return [words[1:] if words[:1] == ["sudo"] else words for words in commands if words]


def program_of(word: str) -> str:
    """``.venv/bin/wyoming-bodhi`` is ``wyoming-bodhi``; ``python3.13`` is ``python``."""
    name = Path(word).name if word.startswith((".venv/", "/")) else word
    return "python" if re.fullmatch(r"python(3(\.\d+)?)?", name) else name


def documented_commands(text: str) -> list[tuple[list[str], bool]]:
    """Each command a page shows: (words, whether it is in a shell block). Inline code counts
    when it starts with one of our commands, python or pip."""
    found: list[tuple[list[str], bool]] = []
    for language, body in fenced_blocks(text):
        if language == "sh":
            for line in body.replace("\\\n", " ").splitlines():
                found += [(words, True) for words in simple_commands(line)]
    for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", prose(text)):
        with contextlib.suppress(ValueError):
            for words in simple_commands(span.replace("\n", " ")):
                if program_of(words[0]) in {*PROGRAMS, "python", "pip", "pip3"}:
                    found.append((words, False))
    return found


@functools.cache
def help_of(*command: str) -> str:
    done = subprocess.run(
        [*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert done.returncode == 0, (command, done.stderr[-2000:])
    return done.stdout


def has_its_own_options(module: str) -> bool:
    """Whether ``python -m module --help`` only prints help: one of ours that parses its
    arguments (``tests.image``, for one, would build the image)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"python -m {module}: no such module"
    source = Path(spec.origin)
    if spec.submodule_search_locations:
        source = source.with_name("__main__.py")
    return "argparse" in source.read_text(encoding="utf-8")


def declared_packages() -> set[str]:
    """Every package pyproject.toml depends on, extras included: these are on the index."""
    requirements = [*PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        requirements += extra
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def check_pip_install(words: list[str]) -> None:
    """Installs from a clone, from git, or a package this one depends on; never
    wyoming-bodhi by name, which is on no package index. A folder of the clone with a
    ``pyproject.toml`` is a distribution of its own there (the test engine)."""
    if "install" not in words:
        return
    extras = PYPROJECT["project"]["optional-dependencies"]
    for target in words[words.index("install") + 1 :]:
        if target.startswith("-"):
            continue
        if " @ git+https://" in target:
            target = target.split(" @ ")[0].replace("wyoming-bodhi", ".", 1)
        name, _, rest = target.partition("[")
        if name != "." and (ROOT / name / "pyproject.toml").is_file():
            continue
        if name == ".":
            for extra in rest.rstrip("]").split(","):
                assert not extra or extra in extras, f"pip install {target}: no extra {extra!r}"
        else:
            assert name.lower() in declared_packages(), (
                f"pip install {target}: wyoming-bodhi is installed from a clone or from git, "
                "and anything else should be one of its declared dependencies"
            )


def check_paths(words: list[str]) -> None:
    if program_of(words[0]) == "mkdir":
        return  # what it names is what it makes
    for word in words[1:]:
        if "*" in word:
            continue  # a glob over what an earlier command made
        path = word.split("::")[0]
        into_the_repository = (
            "/" in path
            and "://" not in path
            and not path.startswith(("-", "/", "~", "$", "."))
            and path.split("/")[0] in TRACKED_TOP
        )
        if into_the_repository:
            assert (ROOT / path).exists(), f"{shlex.join(words)}: {path} does not exist"


def check_command(words: list[str], in_block: bool) -> tuple[str, list[str]] | None:
    """Runs ``--help`` for ours (and every ``--flag`` shown must be in it); checks that a
    module exists, a path into the repository exists, and an install names what exists.
    Whose help it read (the module or script) and the flags found in it, if it read one."""
    check_paths(words)
    name = program_of(words[0])
    run: list[str] | None = None
    """What ``python`` runs for the help."""
    if name in PROGRAMS:
        run = ["-m", PROGRAMS[name]]
    elif name == "python" and words[1:2] == ["-m"]:
        module = words[2]
        if module == "pip":
            check_pip_install(words[2:])
        elif module in PROGRAMS.values() or (
            module.startswith(OUR_MODULES) and has_its_own_options(module)
        ):
            run = ["-m", module]
        else:
            assert importlib.util.find_spec(module), f"python -m {module}: no such module"
            if module.startswith(OUR_MODULES):
                assert not any(w.startswith("--") for w in words[3:]), (words, "no options")
    elif name == "python":
        # A script run by its path, as a user would type it.
        run = [words[1]]
    elif name in ("pip", "pip3"):
        check_pip_install(words)
    else:
        assert not in_block or name in ELSEWHERE or name.startswith("$"), (
            f"{shlex.join(words)}: which program is {name!r}? Add it to ELSEWHERE, or test it"
        )
    if run is None:
        return None
    help_text = help_of(sys.executable, *run)
    flags = [flag for word in words[1:] if (flag := word.strip("[]").split("=")[0])[:2] == "--"]
    for flag in flags:
        assert flag in help_text, f"{shlex.join(words)}: {flag} is not an option"
    return run[-1], flags


def check_page(text: str) -> dict[str, set[str]]:
    """Every command a page shows checked (:func:`check_command`): whose help was read, and
    the flags found in it."""
    kinds = {kind for kind, _body in fenced_blocks(text)}
    assert kinds <= BLOCK_KINDS, f"fenced blocks of kind {kinds - BLOCK_KINDS}: write sh"
    checked: dict[str, set[str]] = {}
    for words, in_block in documented_commands(text):
        if (found := check_command(words, in_block)) is not None:
            checked.setdefault(found[0], set()).update(found[1])
    return checked


def check_readme(text: str) -> None:
    """The README's commands check out, and they show each of our programs with options:
    checks that read no command (the programs gone, or their blocks unread) cannot pass."""
    checked = check_page(text)
    shown = {module for module, flags in checked.items() if flags}
    assert shown >= set(PROGRAMS.values()), (
        f"no options checked for {set(PROGRAMS.values()) - shown}"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_command_shown_runs_or_names_real_options(page: Path) -> None:
    check_page(page.read_text(encoding="utf-8"))


def test_the_readme_shows_each_program_with_real_options() -> None:
    check_readme(README)


def test_the_readme_check_fails_when_it_would_read_no_command() -> None:
    # Its commands in blocks the checks do not read, and a program no longer shown.
    with pytest.raises(AssertionError, match="fenced blocks of kind"):
        check_readme(README.replace("```sh\n", "```bash\n"))
    without_mic = "\n".join(line for line in README.splitlines() if "wyoming-bodhi-mic" not in line)
    with pytest.raises(AssertionError, match="wyoming_bodhi.mic"):
        check_readme(without_mic)


def test_the_command_checks_catch_what_broke_before() -> None:
    """The forms the docs once showed and that did not work as written."""
    with pytest.raises(AssertionError, match="endpointing.py"):
        check_command(["python", "benchmarks/endpointing.py"], True)
    with pytest.raises(AssertionError, match="clone or from git"):
        check_command(["pip", "install", "wyoming-bodhi[mic]"], True)
    with pytest.raises(AssertionError, match="--no-such"):
        check_command([".venv/bin/wyoming-bodhi-mic", "--no-such"], True)
    with pytest.raises(AssertionError, match="which program"):
        check_command(["frobnicate", "samples"], True)
    check_command(["pip", "install", "wyoming-bodhi[mic] @ git+https://github.com/x/y"], True)


def test_the_rest_api_offline_example_runs_as_written() -> None:
    """docs/rest-api.md's "Trying it offline": the simulator, then, once it says it is
    serving, the file client."""
    text = (ROOT / "docs" / "rest-api.md").read_text(encoding="utf-8")
    start = text.index("## Trying it offline")
    (_, simulator), (_, client) = fenced_blocks(text[start:])
    serving = re.search(
        r"Once it says `(Bodhi simulator serving on ws://127\.0\.0\.1:(\d+))`", text
    )
    assert serving and simulator.strip().endswith(" &"), "say when to run the second command"
    if port_is_taken(int(serving[2])):
        pytest.skip(f"port {serving[2]}, where the simulator serves by default, is taken")
    with subprocess.Popen(
        ["bash", "-c", "exec " + here(simulator.strip().removesuffix("&"))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as server:  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while not port_is_taken(int(serving[2])):  # what a person waits for
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            result = subprocess.run(
                ["bash", "-c", here(client.strip())], cwd=ROOT, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
        finally:
            server.terminate()
            said = server.communicate(timeout=10)[0]
    assert serving[1] in said, said
    assert result.returncode == 0, result.stdout + result.stderr
    printed = re.search(r"prints `([^`]+)`", text[start:])
    assert printed and result.stdout.strip() == printed[1]


# -- every link ---------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text(encoding="utf-8")), re.M):
        slug = github_anchor(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(text: str) -> list[str]:
    text = re.sub(r"`[^`]*`", "", prose(text))
    targets = re.findall(r"\]\(([^)\s]+)(?: \"[^\"]*\")?\)", text)
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


LINKED = [*PAGES, ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "README.md"]


def check_links(page: Path, text: str) -> None:
    """Every relative link of ``text`` (``page``'s) leads to a file of the repository, and
    an anchor to one of its headings."""
    for link in relative_links(text):
        target, _, anchor = link.partition("#")
        resolved = (page.parent / target).resolve() if target else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {link} points outside the repository"
        assert resolved.exists(), f"{page.name}: {link} does not exist"
        if anchor:
            assert resolved.suffix == ".md", f"{page.name}: {link}"
            assert anchor in anchors(resolved), f"{page.name}: {link}: no such heading"


@pytest.mark.parametrize("page", LINKED, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    check_links(page, page.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("link", "complaint"),
    [
        ("docs/no-such-page.md", "does not exist"),
        ("docs/install.md#no-such-heading", "no such heading"),
        ("../README.md", "outside the repository"),
    ],
)
def test_the_link_check_finds_a_broken_link_among_the_readmes(link: str, complaint: str) -> None:
    """A check that found no link would pass every page: it finds one put among the README's."""
    broken = README.replace("\n\n", f"\n\nSee [this]({link}).\n\n", 1)
    with pytest.raises(AssertionError, match=complaint):
        check_links(ROOT / "README.md", broken)


def test_the_link_checks_know_githubs_anchors() -> None:
    assert (
        github_anchor("Whole files: the non-streaming API") == "whole-files-the-non-streaming-api"
    )
    assert github_anchor("`--direct`: the engine itself") == "--direct-the-engine-itself"
    assert github_anchor("iApp ASRx (Thai): streaming") == "iapp-asrx-thai-streaming"
    assert github_anchor("हिन्दी और [links](x.md)") == "हिन्दी-और-links"


def test_nothing_points_outside_the_repository() -> None:
    """No file names a path outside the repository (the notes it was written from)."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # Split, or this very line would match.
    outside = re.compile(r"\.\./shared\b|\bshared/[\w-]+\.md|/wor" r"k/")
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".wav", ".ico"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not outside.search(text), f"{name}: {outside.search(text)}"


# -- the docs pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda page: page.stem)
def test_every_docs_page_opens_with_its_purpose_and_is_linked_from_the_readme(page: Path) -> None:
    title, blank, purpose = page.read_text(encoding="utf-8").splitlines()[:3]
    assert title.startswith("# ") and blank == "" and purpose
    assert f"](docs/{page.name})" in README


def test_the_layout_table_lists_every_package() -> None:
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    table = text[text.index("| package |") : text.index("\n\n", text.index("| package |"))]
    package = ROOT / "wyoming_bodhi"
    for child in sorted(package.iterdir()):
        if (child / "__init__.py").exists():
            assert f"| `{child.name}/` |" in table, f"docs/development.md: no row for {child.name}/"
        elif child.suffix == ".py" and child.name != "__init__.py":
            assert f"`{child.name}`" in table, f"docs/development.md: no {child.name}"


# -- what the test command skips ----------------------------------------------------------------


def readme_apt_packages() -> set[str]:
    (line,) = [
        line
        for block in code_blocks(README[: README.index("\n## ")])
        for line in block.splitlines()
        if "apt-get install" in line
    ]
    return {
        word
        for command in simple_commands(line)
        if command[:2] == ["apt-get", "install"]
        for word in command[2:]
        if not word.startswith("-")
    }


def test_the_readme_apt_line_installs_what_ci_installs() -> None:
    named = readme_apt_packages()
    assert {*capture.APT_PACKAGES.split(), *capture.JACK_APT_PACKAGES.split()} <= named
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for package in named:
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", ci), package


def test_a_run_without_the_system_packages_says_why_it_skipped(tmp_path: Path) -> None:
    """A machine without Chromium, buildah or PulseAudio (PATH holds nothing): the run ends
    with one line per reason, each naming packages the README's apt-get line installs."""
    (tmp_path / "bin").mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    env["PATH"] = str(tmp_path / "bin")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider",
         "tests/test_browser.py", "tests/test_image.py", "tests/test_image_arm64.py",
         "tests/test_mic.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout[done.stdout.index("tests were skipped") :]
    for group in ("a real browser", "building the image", "real capture"):
        assert re.search(rf"^ +\d+ × {group} unavailable: ", summary, re.M), summary
    asked = {
        package
        for packages in re.findall(r"apt-get install ([\w -]+)", summary)
        for package in packages.split()
    }
    assert {"chromium", "buildah", "pulseaudio"} <= asked <= readme_apt_packages(), summary


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) <= 200
