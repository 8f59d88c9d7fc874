"""The import contracts of pyproject.toml (``[tool.importlinter]``): the package keeps them, and
``lint-imports`` does catch an import that breaks them.

``.ci/run`` also runs ``lint-imports`` after each pytest; this file is how the README's one
test command covers it, and shows the check is not vacuous: a copy of the package, renamed
so that the editable install's finder cannot hand back the real one, gets one import that
breaks a contract, and must fail on exactly that import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "wyoming_bodhi"
PROBE = "layers_probe"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def contracts_for(name: str) -> str:
    """Our ``[tool.importlinter]`` section and its contracts, for a package called ``name``."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text[text.index("\n[tool.importlinter]\n") + 1 :]
    assert "\n[tool." not in section, "[tool.importlinter] must stay the file's last section"
    return section.replace(PACKAGE, name)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package as a package of another name, with our contracts."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        ROOT / PACKAGE, root / PROBE, ignore=shutil.ignore_patterns("__pycache__", "static")
    )
    (root / "pyproject.toml").write_text(contracts_for(PROBE), encoding="utf-8")
    return root


@pytest.fixture
def probe(pristine: Path, tmp_path: Path) -> Path:
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_the_renamed_copy_keeps_the_contracts_too(probe: Path) -> None:
    """Without this, a copy that lint-imports could not even read would pass the tests below
    for the wrong reason."""
    result = lint_imports(probe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Analyzed {sum(1 for _ in (probe / PROBE).rglob('*.py'))} files" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "reported"),
    [
        pytest.param(
            "pipeline/bridge.py",
            "from ..server import info",
            "imports point down only BROKEN",
            f"{PROBE}.pipeline.bridge -> {PROBE}.server.info",
            id="pipeline-imports-the-server",
        ),
        pytest.param(
            "web/app.py",
            "from ..clients import cli",
            "imports point down only BROKEN",
            f"{PROBE}.web.app -> {PROBE}.clients.cli",
            id="one-side-imports-another",
        ),
        pytest.param(
            "pipeline/routing.py",
            "from ..engines.bodhi import catalog",
            "Only Bodhi's simulator imports the Bodhi engine package BROKEN",
            f"{PROBE}.pipeline.routing -> {PROBE}.engines.bodhi.catalog",
            id="a-vendor-outside-its-package",
        ),
        pytest.param(
            "clients/recording.py",
            "from . import transcribe",
            "No import cycles between sibling modules BROKEN",
            f"No cycles are allowed in {PROBE}.clients.",
            id="a-cycle-inside-a-layer",
        ),
    ],
)
def test_a_backward_import_breaks_the_contract(
    probe: Path, module: str, line: str, contract: str, reported: str
) -> None:
    path = probe / PROBE / module
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\n{line}  # noqa: E402, F401\n")
    result = lint_imports(probe)
    assert result.returncode == 1, result.stdout + result.stderr
    assert contract in result.stdout, result.stdout
    assert reported in result.stdout, result.stdout
