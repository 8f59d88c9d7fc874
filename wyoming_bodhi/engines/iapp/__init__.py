"""iApp ASRx (Thai): protocol messages (sans-I/O), errors, the WebSocket client, the engine."""
