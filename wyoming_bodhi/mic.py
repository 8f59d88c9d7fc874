"""``python -m wyoming_bodhi.mic``: the microphone client (see :mod:`.clients.mic`)."""

import sys

from .clients.mic import main

if __name__ == "__main__":
    sys.exit(main())
