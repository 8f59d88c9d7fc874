"""Wyoming protocol speech-to-text server for Bodhi, Navana's real-time ASR for Indian languages."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is looked up when first asked for: importlib.metadata takes a tenth of a
    # second to load, and the wyoming-bodhi command takes its stop signals before anything
    # slow (see .command).
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("wyoming-bodhi")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
