"""Wyoming protocol speech-to-text server for Bodhi, Navana's real-time ASR for Indian languages."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wyoming-bodhi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
