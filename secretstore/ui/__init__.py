"""The local web page: ``secretstore ui``, Gradient's Secrets tab served by your own machine.

An optional extra (``pip install 'secretstore[ui]'``): the server needs
Werkzeug and Jinja2, which the core CLI never imports. This module stays
light, so that registering the ``ui`` command costs the other commands
nothing; the page itself is in:

- ``actions.py``  what the page does, as calls into the library (never the files)
- ``auth.py``     the one-time login token, sessions, CSRF tokens (stdlib only)
- ``app.py``      the WSGI application: routes, refusals, security headers
- ``server.py``   a threaded ``wsgiref`` server on 127.0.0.1, the login URL, Ctrl-C
- ``templates/``  server-rendered HTML and the one stylesheet; no JavaScript
"""

from __future__ import annotations

from secretstore.errors import SecretStoreError

# The modules the extra brings; any other ImportError is a bug, not a missing extra.
_EXTRA_MODULES = frozenset({"werkzeug", "jinja2", "markupsafe"})
INSTALL_HINT = "pip install 'secretstore[ui]'"


class MissingExtraError(SecretStoreError):
    """The ``ui`` extra is not installed."""


def serve(store_root: str, *, port: int = 0, open_browser: bool = True) -> int:
    """Serve the page for the store at ``store_root`` until Ctrl-C; returns the exit status."""
    try:
        from secretstore.ui import server
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA_MODULES:
            raise
        raise MissingExtraError(
            f"secretstore ui needs the ui extra ({missing} is missing): {INSTALL_HINT}"
        ) from None
    return server.serve(store_root, port=port, open_browser=open_browser)
