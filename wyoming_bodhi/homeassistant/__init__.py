"""Home Assistant integration: exposed names as hotwords, Supervisor discovery, zeroconf."""
