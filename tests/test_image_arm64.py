"""The arm64 images (a Raspberry Pi's, a Home Assistant Green's), built and run on this machine
under qemu-user emulation: the tests of tests/test_image.py, in files of their own so that
pytest-xdist builds and runs them beside the amd64 ones: the standalone image's here, the
add-on's in tests/test_image_arm64_addon.py. Those whose outcome no architecture changes run
on amd64 only (ImageTests.every_check)."""

from __future__ import annotations

from .test_image import StandaloneTests


class TestArm64(StandaloneTests):
    arch = "arm64"
    every_check = False
