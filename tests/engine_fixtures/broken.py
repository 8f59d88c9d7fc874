"""A plugin whose import fails, as one with a missing dependency does."""

raise ImportError("No module named 'acme_sdk'")
