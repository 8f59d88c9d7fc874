"""The Wyoming side: accepting connections, reading events within bounds, one handler per
connection, Info, and the health check."""
