"""The arm64 images (a Raspberry Pi's, a Home Assistant Green's), built and run on this machine
under qemu-user emulation: the tests of tests/test_image.py, in a file of their own so that
pytest-xdist builds them beside the amd64 ones. Those whose outcome no architecture changes
run on amd64 only (ImageTests.every_check)."""

from __future__ import annotations

from .test_image import ImageTests


class TestArm64(ImageTests):
    arch = "arm64"
    every_check = False
