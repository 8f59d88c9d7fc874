"""Clients people run to hear what the recogniser hears: files (and WAV reading)."""
