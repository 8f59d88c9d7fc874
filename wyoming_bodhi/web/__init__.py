"""The status page, ``/metrics`` and ``/healthz``, served by the same process over HTTP."""
