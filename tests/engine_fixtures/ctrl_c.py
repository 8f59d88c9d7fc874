"""A plugin being imported when the user presses Ctrl-C: a real SIGINT, to this process."""

import signal

signal.raise_signal(signal.SIGINT)
