"""The Dockerfile's images, built and run without a Docker engine, for amd64 and arm64.

There is no Docker daemon on the development and CI machines, so the images are built the way
Podman does it, with buildah: ``--isolation chroot`` (no container runtime needed), in a
storage of its own (overlay where the kernel mounts it, else vfs: see storage_driver). The base,
``BODHI_BASE``, is a Debian bookworm made here with debootstrap, standing in for the
``python:*-bookworm`` image that Docker would pull from a container registry this machine
cannot reach.

Each architecture has its own base, and each base two images: the standalone one
(``docker build .``) and the add-on, built with the arguments and labels the Supervisor
passes (``BUILD_ARCH``, ``BUILD_VERSION``, ``io.hass.*``, ``--platform``). arm64 is built and
run on an amd64 machine under qemu-user emulation: the kernel's binfmt_misc hands every
aarch64 program, in debootstrap's second stage, in the build's ``RUN`` steps and in the
container, to qemu-aarch64-static (Debian's qemu-user-static registers it with the F flag, so
it works inside a chroot).

Building installs what building the image always installs: Debian's packages for the base,
the package's wheels for its virtual environment. Both come from the registries this machine
already uses, set up as it is: debootstrap reads from the machine's Debian mirror, and pip in
the build gets the machine's pip settings (index, local wheel folders, constraints and the CA
bundle it trusts).

The storage is the machine's, as a Docker engine's images and build cache are: under
``/var/cache/wyoming-bodhi`` (``WYOMING_BODHI_IMAGE_CACHE``), shared by every checkout and kept
between CI runs, which clone afresh. Images are tagged by what they were made from, so the
bases are made once per machine, the Dockerfile's dependencies stage once per list of
dependencies, and a build for new sources runs only the steps after it; see tidy() for what is
kept.

``python -m tests.image [--arch arm64] [--addon]`` builds (or finds) an image and prints what
each step took.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("WYOMING_BODHI_IMAGE_CACHE", "/var/cache/wyoming-bodhi")).resolve()
SUITE = "bookworm"
# Debian's Python standing in for the python image's (venv included), and the CA
# certificates pip needs.
DEBOOTSTRAP = ["--variant=minbase", "--include=python3,python3-venv,ca-certificates"]
# A repository per architecture (and variant), each tag what an image was made from.
DEBIAN_REPO = "localhost/wyoming-bodhi-test-debian"
BASE_REPO = "localhost/wyoming-bodhi-test-base"
DEPENDENCIES_REPO = "localhost/wyoming-bodhi-test-dependencies"
IMAGE_REPO = "localhost/wyoming-bodhi-test"
# What tidy() keeps: each repository's newest images, and any image made within the hour,
# which another checkout's run of the suite may be using.
KEEP_NEWEST = 2
KEEP_RECENT = 3600
CONTAINER_PREFIX = "wyoming-bodhi-test-"
# The same PATH as Debian's and Python's official images, which the Dockerfile extends.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_TIMEOUT = 900
NICENESS = 10


class BuildError(RuntimeError):
    """A step of making the image failed; the message has the command and its output."""


@dataclass(frozen=True)
class Arch:
    """An architecture, in each tool's name for it."""

    name: str
    """Debian's and Docker's (``--platform linux/NAME``): amd64, arm64."""
    supervisor: str
    """Home Assistant's, in config.yaml's ``arch`` and the Supervisor's BUILD_ARCH."""
    machines: tuple[str, ...]
    """What ``uname -m`` says on it."""

    @property
    def platform(self) -> str:
        return f"linux/{self.name}"

    @property
    def binfmt(self) -> Path:
        """The binfmt_misc handler qemu-user-static registers for its programs."""
        return BINFMT / f"qemu-{self.machines[0]}"

    def interpreter(self) -> Path | None:
        """What the kernel runs this architecture's programs with here: None when natively."""
        if native(self):
            return None
        for line in self.binfmt.read_text(encoding="utf-8").splitlines():
            if line.startswith("interpreter "):
                return Path(line.partition(" ")[2]).resolve()
        raise BuildError(f"{self.binfmt} names no interpreter")


ARCHES = {
    "amd64": Arch("amd64", "amd64", ("x86_64",)),
    "arm64": Arch("arm64", "aarch64", ("aarch64", "arm64")),
}
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def native(arch: Arch) -> bool:
    return platform.machine().lower() in arch.machines


def emulation_unavailable(arch: Arch) -> str | None:
    """Why this machine cannot run ``arch``'s programs, or None."""
    if native(arch):
        return None
    setup = "apt-get install qemu-user-static binfmt-support (.ci/run does)"
    if not (BINFMT / "status").exists():
        return (
            f"binfmt_misc is not mounted: mount -t binfmt_misc binfmt_misc {BINFMT} (.ci/run does)"
        )
    if not arch.binfmt.is_file():
        return f"no qemu-user handler for {arch.name} programs: {setup}"
    handler = arch.binfmt.read_text(encoding="utf-8").splitlines()
    if handler[:1] != ["enabled"]:
        return f"the {arch.binfmt.name} handler is disabled: update-binfmts --enable"
    flags = next((line.split()[1:] for line in handler if line.startswith("flags:")), [])
    if "F" not in "".join(flags):
        # Without F the kernel opens the interpreter at each exec, inside the chroot too.
        return f"the {arch.binfmt.name} handler lacks the F flag: {setup}"
    return None


def unavailable(arch: str = "amd64") -> str | None:
    """Why ``arch``'s images cannot be built on this machine at all, or None."""
    if not sys.platform.startswith("linux"):
        return "buildah's chroot isolation needs Linux"
    if os.geteuid() != 0:
        return "buildah's chroot isolation and debootstrap need root"
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: apt-get install buildah debootstrap "
            "(.ci/run does)"
        )
    return emulation_unavailable(ARCHES[arch])


def run(args: list[str], timeout: float = BUILD_TIMEOUT, check: bool = True, **kwargs: Any) -> str:
    """Run a set-up command; its output goes into the error if it fails (unless not ``check``).

    At a lower priority: building (arm64's emulated, a core's worth for minutes) takes the
    CPU the rest of the suite leaves, and leaves alone the tests that run against the clock.
    """
    try:
        result = subprocess.run(
            ["nice", "-n", str(NICENESS), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"{shlex.join(args)} took over {timeout:.0f} s") from error
    if check and result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise BuildError(f"{shlex.join(args)} exited with {result.returncode}:\n{tail}")
    return str(result.stdout)


@functools.cache
def storage_driver() -> str:
    """overlay where the kernel mounts it on the cache's filesystem, else vfs.

    With overlay a layer is a difference, so a build keeps each step as a layer and the next
    build reuses them (the add-on's shares the standalone image's up to BUILD_ARCH); with vfs
    each layer is a full copy, which makes keeping them slower than building again. Overlay
    does not mount on every filesystem (not on another overlay, as in a container).
    """
    probe = CACHE / f"overlay-probe-{os.getpid()}"
    folders = [probe / name for name in ("lower", "upper", "work", "merged")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    lower, upper, work, merged = map(str, folders)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    try:
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, merged],
            capture_output=True,
            check=False,
        )
        if mounted.returncode == 0:
            subprocess.run(["umount", merged], capture_output=True, check=True)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return "overlay" if mounted.returncode == 0 else "vfs"


@dataclass(frozen=True)
class Buildah:
    """buildah with a storage of its own, so nothing touches the machine's containers; one
    per architecture, whose images share nothing."""

    root: Path
    driver: str

    @classmethod
    def for_arch(cls, arch: Arch) -> Buildah:
        driver = storage_driver()
        return cls(CACHE / f"{driver}-{arch.name}", driver)

    @property
    def layers(self) -> bool:
        """Whether builds keep their steps for the next build (see storage_driver)."""
        return self.driver == "overlay"

    def command(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            f"{self.root}-run",
            "--storage-driver",
            self.driver,
            *args,
        ]

    def __call__(self, *args: str, timeout: float = BUILD_TIMEOUT, **kwargs: Any) -> str:
        return run(self.command(*args), timeout, **kwargs).strip()

    def images(self, repo: str) -> set[str]:
        listing = self("images", "--format", "{{.Name}}:{{.Tag}}", "--filter", f"reference={repo}")
        return set(listing.split())

    def has_image(self, name: str) -> bool:
        return name in self.images(name.rpartition(":")[0])

    def inspect(self, name: str, kind: str = "image") -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self("inspect", "--type", kind, name))
        return found

    def tidy(self, repos: list[str]) -> None:
        """Remove what no build or run is likely to need again, since every checkout of the
        machine adds to this storage: the images of ``repos`` but the newest few, and the
        steps no image keeps (those of earlier sources), each if made over an hour ago.

        A tagged image keeps the steps it was made of, so the dependencies stage, tagged too,
        stays for builds of other sources. An image a container uses is not removed.
        """
        now = time.time()
        for repo in repos:
            found = self.listing("--filter", f"reference={repo}")
            found.sort(key=lambda entry: int(entry["created"]), reverse=True)
            for entry in found[KEEP_NEWEST:]:
                if now - int(entry["created"]) > KEEP_RECENT:
                    run(self.command("rmi", entry["id"]), check=False)
        # Removing an untagged step leaves its parent untagged and childless in turn.
        tried: set[str] = set()
        while stale := [
            entry["id"]
            for entry in self.listing("--filter", "dangling=true")
            if now - int(entry["created"]) > KEEP_RECENT and entry["id"] not in tried
        ]:
            run(self.command("rmi", *stale), check=False)
            tried.update(stale)

    def listing(self, *filters: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] | None = json.loads(self("images", "--json", *filters))
        return found or []

    def remove_orphan_containers(self) -> None:
        """Working containers of runs that died (their pid ends the name)."""
        for name in self("containers", "--format", "{{.ContainerName}}").split():
            if name.startswith(CONTAINER_PREFIX):
                pid = name.rpartition("-")[2]
                if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                    self("rm", name)


def digest(*parts: bytes | str) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hashed.update(len(data).to_bytes(8, "big") + data)
    return hashed.hexdigest()[:16]


# -- the machine's registries -------------------------------------------------------------------


def debian_mirror() -> str | None:
    """The Debian archive this machine's apt uses (deb822 or one-line sources), if any."""
    os_release = Path("/etc/os-release")
    if not os_release.is_file() or not re.search(
        r"^ID=\"?debian\"?$", os_release.read_text(encoding="utf-8"), re.MULTILINE
    ):
        return None  # another distribution's archive has no bookworm: debootstrap's default
    entries: list[tuple[list[str], list[str], list[str], list[str]]] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields: dict[str, list[str]] = {}
            for line in paragraph.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ")):
                    fields[key.strip().lower()] = value.split()
            entries.append(
                (
                    fields.get("types", []),
                    fields.get("uris", []),
                    fields.get("suites", []),
                    fields.get("components", []),
                )
            )
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text(encoding="utf-8", errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 4:
                entries.append(([words[0]], [words[1]], [words[2]], words[3:]))
    for types, uris, suites, components in entries:
        # The main archive: not the security one, which serves no base packages.
        plain = [suite for suite in suites if "-" not in suite and "/" not in suite]
        if "deb" in types and plain and "main" in components and uris:
            return uris[0]
    return None


@dataclass
class PipSetup:
    """This machine's pip configuration, made to work the same inside the build."""

    conf: str
    files: list[Path] = field(default_factory=list)
    """Files the settings name (CA bundle, constraints): copied into the base."""
    folders: list[Path] = field(default_factory=list)
    """Local indexes and wheel folders: mounted read-only while building."""

    def key(self) -> str:
        return digest(self.conf, *(p.read_bytes() for p in self.files), *map(str, self.folders))


def pip_setup() -> PipSetup:
    """The effective settings of this machine's pip, environment variables included.

    A build's RUN steps see neither the caller's environment nor its config files, so pip in
    the build would otherwise go to the default index with the base's own CA bundle, which
    fails where this machine reaches the index through its own CA.
    """
    listing = run([sys.executable, "-m", "pip", "config", "list"], timeout=60)
    sections: dict[str, dict[str, str]] = {}
    from_environment: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, _, name = key.partition(".")
        if not sep or not name:
            continue
        value = str(ast.literal_eval(raw))  # pip prints each value's repr
        if section == ":env:":
            from_environment[name] = value
        else:
            sections.setdefault(section, {})[name] = value
    # PIP_* variables override the files for every command, as on the host.
    for values in sections.values():
        for name in from_environment:
            values.pop(name, None)
    sections.setdefault("global", {}).update(from_environment)

    setup = PipSetup(conf="")
    for values in sections.values():
        for name, value in list(values.items()):
            kept = []
            for item in value.split():
                local = Path(item.removeprefix("file://"))
                if not local.is_absolute():  # a URL, a flag's value
                    kept.append(item)
                elif local.is_file():
                    setup.files.append(local)
                    kept.append(item)
                elif local.is_dir():
                    # A PEP 503 "simple" index links to its files beside it, in the parent.
                    setup.folders.append(local.parent if local.name == "simple" else local)
                    kept.append(item)
                # else: a path that does not exist here; pip would only warn about it
            values[name] = " ".join(kept)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{name} = {value}" for name, value in values.items() if value)
    setup.conf = "\n".join(lines) + "\n"
    setup.files = sorted(set(setup.files))
    setup.folders = sorted(set(setup.folders))
    return setup


# -- the steps ----------------------------------------------------------------------------------


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(time.monotonic() - started, 1)

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds} s" for name, seconds in self.steps.items())


def unmount_below(path: str) -> None:
    """Undo the /proc and /sys mounts an interrupted debootstrap leaves in its target."""
    prefix = path.rstrip("/") + "/"
    mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    for mountpoint in sorted((line.split()[1] for line in mounts), reverse=True):
        if mountpoint.startswith(prefix):
            subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)


@contextlib.contextmanager
def working_container(buildah: Buildah, purpose: str, image: str) -> Iterator[str]:
    name = f"{CONTAINER_PREFIX}{purpose}-{os.getpid()}"
    buildah("from", "--pull=never", "--name", name, image)
    try:
        yield name
    finally:
        buildah("rm", name)


def debootstrap(arch: Arch, tree: str, mirror: str | None) -> None:
    """Debian into ``tree``; a foreign architecture's second stage runs under emulation."""
    foreign = [] if native(arch) else ["--foreign"]
    first = ["debootstrap", f"--arch={arch.name}", *foreign, *DEBOOTSTRAP, SUITE, tree]
    try:
        run([*first, *([mirror] if mirror else [])])
        if foreign:
            # Unpacking was done on the host; configuring runs the packages' own programs.
            run(["chroot", tree, "/debootstrap/debootstrap", "--second-stage"])
    finally:
        unmount_below(tree)


def build_debian(buildah: Buildah, arch: Arch, timings: Timings) -> str:
    """A minimal Debian bookworm with Debian's python3, made by debootstrap: this setup's
    counterpart of the base image Docker pulls, made once per machine (its storage is the
    machine's), and most of a first build's time."""
    mirror = debian_mirror()
    name = f"{DEBIAN_REPO}-{arch.name}:{digest(SUITE, arch.name, *DEBOOTSTRAP, mirror or '')}"
    if buildah.has_image(name):
        return name
    purpose = f"debian-{arch.name}"
    with timings.step("debootstrap"), working_container(buildah, purpose, "scratch") as ctr:
        tree = buildah("mount", ctr)
        debootstrap(arch, tree, mirror)
        # Like Debian's own images: no package lists or downloaded packages.
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for entry in (Path(tree) / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        buildah("umount", ctr)
        buildah(
            "config",
            f"--arch={arch.name}",
            "--os=linux",
            f"--env=PATH={BASE_PATH}",
            '--cmd=["/bin/bash"]',
            ctr,
        )
        buildah("commit", "--quiet", "--format=docker", ctr, name)
    return name


def build_base(buildah: Buildah, arch: Arch, pip: PipSetup, timings: Timings) -> str:
    """BODHI_BASE: Debian, plus this machine's pip settings and the files they name."""
    debian = build_debian(buildah, arch, timings)
    name = f"{BASE_REPO}-{arch.name}:{digest(debian, pip.key())}"
    if buildah.has_image(name):
        return name
    purpose = f"base-{arch.name}"
    with (
        timings.step("base"),
        working_container(buildah, purpose, debian) as ctr,
        tempfile.TemporaryDirectory() as scratch,
    ):
        conf = Path(scratch) / "pip.conf"
        conf.write_text(pip.conf, encoding="utf-8")
        for path in pip.files:
            buildah("copy", ctr, str(path), str(path))
        buildah("copy", ctr, str(conf), "/etc/pip.conf")
        buildah("commit", "--quiet", "--format=docker", ctr, name)
    return name


def context_files() -> list[Path]:
    """What the build context holds (the '!' lines of .dockerignore), byte for byte."""
    included = [
        line.strip()[1:].strip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("!")
    ]
    files: list[Path] = []
    for entry in included:
        path = ROOT / entry
        for found in [path] if path.is_file() else sorted(path.rglob("*")):
            parts = found.relative_to(ROOT).parts
            if found.is_file() and not any(
                part == "__pycache__" or part.endswith((".pyc", ".egg-info")) for part in parts
            ):
                files.append(found)
    return files


def sources_key() -> str:
    """What every image is built from: the Dockerfile and the build context."""
    inputs = [ROOT / "Dockerfile", ROOT / ".dockerignore", *context_files()]
    return digest(
        *(str(p.relative_to(ROOT)) for p in inputs),
        *(p.read_bytes() for p in inputs),
    )


def image_key(base: str, args: list[str]) -> str:
    return digest(base, *args, sources_key())


def dependencies() -> list[str]:
    """What the Dockerfile's requirements stage lists: the project's dependencies."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(pyproject["project"]["dependencies"])


def supervisor_arguments(arch: Arch) -> list[str]:
    """What the Supervisor adds to ``docker buildx build`` for an add-on with no build.yaml.

    supervisor/apps/build.py, AppBuild.get_docker_args (home-assistant/supervisor at 090ef31,
    2026.08): ``--platform`` (its MAP_ARCH), the io.hass labels from config.yaml, and the
    build arguments BUILD_VERSION and BUILD_ARCH; BUILD_FROM only when there is a build.yaml,
    or, before 2026.04, always.
    """
    import yaml  # here, so that .ci/run can make the bases with any python3, before a venv

    manifest = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    labels = {
        "io.hass.version": manifest["version"],
        "io.hass.arch": arch.supervisor,
        "io.hass.type": "app",
        "io.hass.name": manifest["name"].replace("'", ""),
        "io.hass.description": manifest["description"].replace("'", ""),
        "io.hass.url": manifest["url"],
    }
    build_args = {
        "BUILD_VERSION": manifest["version"],
        "BUILD_ARCH": arch.supervisor,
        # What Supervisors before 2026.04 add without a build.yaml (AddonBuild.base_image at
        # 1264dbed^): Home Assistant's Alpine base. It is not in this storage, so a Dockerfile
        # that built on it would fail here (--pull=never) instead of on an older Supervisor.
        "BUILD_FROM": f"ghcr.io/home-assistant/{arch.supervisor}-base:latest",
    }
    return [
        *(f"--label={key}={value}" for key, value in labels.items()),
        *(f"--build-arg={key}={value}" for key, value in build_args.items()),
    ]


def image_repo(arch: Arch, addon: bool) -> str:
    return f"{IMAGE_REPO}-{'addon' if addon else 'standalone'}-{arch.name}"


def repos(arch: Arch) -> list[str]:
    return [f"{repo}-{arch.name}" for repo in (DEBIAN_REPO, BASE_REPO, DEPENDENCIES_REPO)] + [
        image_repo(arch, addon) for addon in (False, True)
    ]


def bud(buildah: Buildah, pip: PipSetup, *args: str) -> None:
    """``buildah bud`` of the Dockerfile, as ``docker build`` does it."""
    buildah(
        "bud",
        "--isolation=chroot",
        "--pull=never",
        # Docker's format: OCI image configs have no HEALTHCHECK.
        "--format=docker",
        f"--layers={str(buildah.layers).lower()}",
        *args,
        *(f"--volume={folder}:{folder}:ro" for folder in pip.folders),
        str(ROOT),
    )


def build_dependencies(buildah: Buildah, base: str, arch: Arch, pip: PipSetup) -> None:
    """The Dockerfile's dependencies stage, tagged: a tagged image keeps the steps it was made
    of, so tidy() leaves them for the next build, of whatever sources (the layer cache)."""
    name = f"{DEPENDENCIES_REPO}-{arch.name}:{digest(base, *dependencies())}"
    bud(
        buildah,
        pip,
        f"--platform={arch.platform}",
        f"--build-arg=BODHI_BASE={base}",
        "--target=dependencies",
        f"--tag={name}",
    )


def build_image(
    buildah: Buildah, base: str, arch: Arch, addon: bool, pip: PipSetup, timings: Timings
) -> str:
    """``docker build --platform linux/ARCH .`` (or as the Supervisor builds the add-on), on
    ``base``; tagged by what it was built from."""
    args = [f"--platform={arch.platform}", f"--build-arg=BODHI_BASE={base}"]
    if addon:
        args += supervisor_arguments(arch)
    name = f"{image_repo(arch, addon)}:{image_key(base, args)}"
    if buildah.has_image(name):
        return name
    if buildah.layers:
        with timings.step(f"dependencies {arch.name}"):
            build_dependencies(buildah, base, arch, pip)
    with timings.step(f"build {'add-on' if addon else 'standalone'} {arch.name}"):
        bud(buildah, pip, *args, f"--tag={name}")
    return name


@contextlib.contextmanager
def locked(arch: Arch) -> Iterator[None]:
    """One build at a time per architecture on this machine (every checkout's suite shares
    the storage); the architectures build side by side."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"lock-{arch.name}").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_image(
    arch: str = "amd64",
    addon: bool = False,
    timings: Timings | None = None,
    *,
    base_only: bool = False,
) -> tuple[Buildah, str]:
    """The image for the sources as they are now (or only its base): found in the storage,
    or built."""
    timings = timings or Timings()
    buildah = Buildah.for_arch(ARCHES[arch])
    pip = pip_setup()
    with locked(ARCHES[arch]):
        buildah.remove_orphan_containers()
        image = base = build_base(buildah, ARCHES[arch], pip, timings)
        if addon and not base_only:
            # The standalone image first, always: buildah's layer cache matches a build with
            # fewer arguments and labels to the steps of one with more, so a standalone image
            # built after the add-on of the same sources took the add-on's USER, ENV and
            # labels (root, BODHI_ADDON=true). Built before, it is the add-on that reuses its
            # steps, up to BUILD_ARCH, and no further.
            build_image(buildah, base, ARCHES[arch], False, pip, timings)
        if not base_only:
            image = build_image(buildah, base, ARCHES[arch], addon, pip, timings)
        buildah.tidy(repos(ARCHES[arch]))
        return buildah, image


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.image", description="Build (or find) an image; print the timings."
    )
    parser.add_argument("--arch", choices=sorted(ARCHES), default="amd64")
    parser.add_argument("--addon", action="store_true", help="as the Supervisor builds it")
    parser.add_argument(
        "--base",
        action="store_true",
        help="only the base it builds on (Debian and this machine's pip settings): .ci/run "
        "makes it before the suite, as Docker would pull a base image",
    )
    options = parser.parse_args()
    reason = unavailable(options.arch)
    if reason:
        print(f"cannot build the image: {reason}", file=sys.stderr)
        return 1
    timings = Timings()
    started = time.monotonic()
    buildah, image = ensure_image(options.arch, options.addon, timings, base_only=options.base)
    print(f"{image} in {time.monotonic() - started:.1f} s ({timings})")
    print(f"storage: {shlex.join(buildah.command())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
