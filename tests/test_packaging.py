"""Ready to publish: ``python -m build`` makes a wheel and an sdist that ``twine check``
passes, and the wheel installs into a fresh environment and serves ``--demo``, its status
page's static files included. Offline: the build uses this environment's backend (no
isolation, nothing downloaded), and the fresh environment borrows this one's dependencies
without seeing what was installed from a checkout (this project, the test engine)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import site
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from wyoming_bodhi.engines import registry

from .harness import clean_env, free_port

ROOT = Path(__file__).parent.parent
STATIC = ROOT / "wyoming_bodhi" / "web" / "static"
DEMO_TRANSCRIPT = (
    "simulated transcript segment 1 from the Bodhi simulator "
    "simulated transcript segment 2 from the Bodhi simulator"
)


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def tracked_copy(into: Path) -> Path:
    """The checkout's tracked files as they are now: what a clone would build from, without
    the build's litter (egg-info, build/) landing in the checkout."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def fresh_environment(where: Path) -> Path:
    """A new venv that sees this environment's installed packages, but not the ones installed
    from a checkout (editable: this project, and the test engine of tests/engine_plugin).
    Returns its bin folder."""
    run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    purelib = run(
        where / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
        cwd=where.parent,
    ).strip()  # fmt: skip
    Path(purelib, "borrowed.pth").write_text(f"{borrowed(where.parent / 'borrowed')}\n")
    return where / "bin"


def borrowed(shelf: Path) -> Path:
    """This environment's site-packages as links in one folder, less what was installed from
    a checkout: an editable distribution's metadata (which would register its entry points,
    an engine's among them, whose code the fresh environment cannot import) and its import
    hooks. As a plain folder on the path, its ``.pth`` files are not run either."""
    shelf.mkdir()
    for site_dir in map(Path, site.getsitepackages()):
        for entry in site_dir.iterdir():
            if entry.name.startswith("__editable__") or editable(entry):
                continue
            with contextlib.suppress(FileExistsError):  # the first site folder wins
                (shelf / entry.name).symlink_to(entry)
    return shelf


def editable(entry: Path) -> bool:
    """A distribution's metadata folder that says it was installed from a checkout."""
    direct_url = entry / "direct_url.json"
    if entry.suffix != ".dist-info" or not direct_url.is_file():
        return False
    dir_info = json.loads(direct_url.read_text(encoding="utf-8")).get("dir_info", {})
    return bool(dir_info.get("editable"))


def test_the_wheel_and_sdist_pass_twine_and_the_wheel_serves_the_demo(tmp_path: Path) -> None:
    source = tracked_copy(tmp_path / "source")
    dist = tmp_path / "dist"
    # The wheel is built from the sdist, so the sdist is proven to build.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source, cwd=tmp_path)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    checked = run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, cwd=tmp_path)
    assert checked.count("PASSED") == 2, checked

    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    assert {f"wyoming_bodhi/web/static/{f.name}" for f in STATIC.iterdir()} <= packed
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in packed)
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[-1] for name in archive.getnames()}
    assert {"README.md", "LICENSE", "pyproject.toml", "docs/protocol.md"} <= in_sdist
    assert not any(name.startswith("tests/") for name in in_sdist)

    bin_dir = fresh_environment(tmp_path / "venv")
    run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--no-index",
        "--no-deps", "--quiet", wheel, cwd=tmp_path)  # fmt: skip
    where, engines = run(
        bin_dir / "python", "-c", "import wyoming_bodhi; print(wyoming_bodhi.__file__); "
        "from wyoming_bodhi.engines import registry; print(*(e.name for e in registry.installed()))",
        cwd=tmp_path,
    ).splitlines()  # fmt: skip
    assert where.startswith(str(tmp_path / "venv")), where
    # The wheel's engines, and none that was installed here from a checkout.
    assert engines.split() == [engine.name for engine in registry.builtin()]

    port, http_port = free_port(), free_port()
    server = subprocess.Popen(
        [bin_dir / "wyoming-bodhi", "--demo", "--uri", f"tcp://127.0.0.1:{port}",
         "--http-uri", f"tcp://127.0.0.1:{http_port}"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        transcript = run(
            bin_dir / "wyoming-bodhi-transcribe", ROOT / "samples" / "batti-jalao.wav",
            "--uri", f"tcp://127.0.0.1:{port}", "--wait", "30", cwd=tmp_path,
        )  # fmt: skip
        assert transcript.strip() == DEMO_TRANSCRIPT
        for name in ("", "app.js", "style.css"):
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/{name}", timeout=10) as got:
                body = got.read()
            assert body == (STATIC / (name or "index.html")).read_bytes(), name
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0, server.stdout.read() if server.stdout else ""
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
