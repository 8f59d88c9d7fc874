"""The arm64 add-on, as the Supervisor of a Raspberry Pi or a Home Assistant Green builds and
runs it, under qemu-user emulation here: in a file, and so a pytest-xdist worker, of its own,
so that it runs beside the standalone arm64 image's tests (tests/test_image_arm64.py), whose
build it waits for and reuses."""

from __future__ import annotations

from .test_image import AddOnTests


class TestArm64AddOn(AddOnTests):
    arch = "arm64"
    every_check = False
