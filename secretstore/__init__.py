"""secretstore: a local, offline-first secret store.

This package is imported on the ``exec`` fast path, so it imports nothing.
"""

__version__ = "0.2.0"
