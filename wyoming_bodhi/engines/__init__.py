"""Speech-to-text engines: one package per vendor behind the interface in :mod:`.base`."""
