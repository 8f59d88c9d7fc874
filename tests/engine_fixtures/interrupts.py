"""A plugin that raises KeyboardInterrupt itself as it is imported: no one pressed Ctrl-C."""

raise KeyboardInterrupt
