"""``python -m wyoming_bodhi.transcribe``: the file client (see :mod:`.clients.transcribe`)."""

import sys

from .clients.transcribe import main

if __name__ == "__main__":
    sys.exit(main())
