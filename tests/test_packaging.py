"""Ready to publish: ``python -m build`` makes a wheel and an sdist that ``twine check``
passes, and the wheel installs into a fresh environment and serves ``--demo``, its status
page's static files included. Offline: the build uses this environment's backend (no
isolation, nothing downloaded), and the fresh environment borrows this one's dependencies
without seeing the editable checkout."""

from __future__ import annotations

import shutil
import signal
import site
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

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
    """A new venv that sees this environment's installed packages — as plain folders on its
    path, so their ``.pth`` files (the editable install's among them) are not run — and not
    the checkout. Returns its bin folder."""
    run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    purelib = run(
        where / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
        cwd=where.parent,
    ).strip()  # fmt: skip
    Path(purelib, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return where / "bin"


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
    where = run(
        bin_dir / "python", "-c", "import wyoming_bodhi; print(wyoming_bodhi.__file__)",
        cwd=tmp_path,
    )  # fmt: skip
    assert where.startswith(str(tmp_path / "venv")), where

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
