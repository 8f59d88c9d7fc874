"""Speech-to-text engines: the interface (:mod:`.base`), what the engines share (the
WebSocket transport in :mod:`.websocket`, error tables in :mod:`.errors`), each engine as a
plugin (:mod:`.plugin`) found through its entry point (:mod:`.registry`), and one package per
engine shipped here."""
