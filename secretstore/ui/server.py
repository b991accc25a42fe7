"""Serve the page on 127.0.0.1: a threaded ``wsgiref`` server, the login URL, a clean stop.

The standard library's WSGI server is enough for one person's browser on the
loopback interface; it is threaded because a browser opens spare connections
that would otherwise hold the only thread. It logs nothing per request (the
login URL's query string holds the token) and turns a dropped connection into
silence, never a traceback. Ctrl-C (or SIGTERM) stops it: requests being
answered are given a moment to finish, every session ends, and the exit
status is 0.
"""

from __future__ import annotations

import os
import signal
import socketserver
import sys
import threading
from types import FrameType
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from secretstore.console import error_line, notice, warning_line
from secretstore.errors import SecretStoreError
from secretstore.store import Store
from secretstore.ui.actions import Keys
from secretstore.ui.app import HOST, Page

IDLE_CONNECTION_SECONDS = 30  # a spare connection the browser never uses is closed after this
STOP_GRACE_SECONDS = 10  # how long a stop waits for requests being answered


class _QuietServerHandler(ServerHandler):
    def log_exception(self, exc_info: object) -> None:
        error_line("a response could not be sent completely")


class _Handler(WSGIRequestHandler):
    timeout = IDLE_CONNECTION_SECONDS

    def log_message(self, format: str, *args: object) -> None:
        """No access log: the login URL carries the token in its query string."""

    def handle(self) -> None:
        """``WSGIRequestHandler.handle``, with a handler that reports a failure in one line."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _QuietServerHandler(
            self.rfile, self.wfile, sys.stderr, self.get_environ(), multithread=True  # type: ignore[arg-type]
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        app = self.server.get_app()  # type: ignore[attr-defined]
        handler.run(app)


class LoopbackServer(socketserver.ThreadingMixIn, WSGIServer):
    """``WSGIServer`` bound to 127.0.0.1 only, one thread per connection."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name; 127.0.0.1 needs no lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.server_address[1]
        self.setup_environ()

    def handle_error(self, request: object, client_address: object) -> None:
        """A browser dropping or idling a connection is normal; anything else is one line."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        error_line(f"internal error while answering a request: {type(exc).__name__}")


def listen(port: int) -> LoopbackServer:
    try:
        return LoopbackServer((HOST, port), _Handler)
    except OverflowError:
        raise SecretStoreError(f"--port {port} is not a port number (0 to 65535)") from None
    except OSError as exc:
        raise SecretStoreError(
            f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
            hint="choose another --port, or leave --port out for a free one",
        ) from None


def login_url(page: Page) -> str:
    return f"{page.origin}/login?token={page.gate.login_token}"


def serve(store_root: str, *, port: int = 0, open_browser: bool = True) -> int:
    """Unlock the identity, listen, print the login URL, serve until Ctrl-C; returns 0."""
    store = Store(store_root)
    keys = Keys(store)
    keys.unlock_at_start()  # a passphrase prompt (or a wrong passphrase) comes before listening
    server = listen(port)
    page = Page(store, keys, server.server_port)
    server.set_app(page)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:  # from here on, Ctrl-C is the way to stop, wherever it lands
        url = login_url(page)
        notice(
            f"serving the store {store.root} at {page.origin}/ until Ctrl-C; "
            "sign in with this link (it works once):"
        )
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        if open_browser:
            open_in_browser(url)
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    if not page.wait_idle(STOP_GRACE_SECONDS):
        # Writes are atomic: the store holds the old or the new file, never half of one.
        warning_line("stopped while a request was still being answered")
    notice("stopped; the page's sessions ended")
    return 0


def has_graphical_browser() -> bool:
    """False on a Linux machine with no display and no $BROWSER: a text-mode browser would
    take over the terminal the server prints to."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))


def open_in_browser(url: str) -> bool:
    """Ask the desktop's browser to open ``url`` (in the background); False when there is none."""
    import webbrowser

    if not has_graphical_browser():
        notice("no graphical session: open the link above in your browser")
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        notice("no web browser found: open the link above in your browser")
        return False

    def launch() -> None:
        try:
            browser.open(url, new=2)
        except Exception:
            notice("the web browser did not start: open the link above in your browser")

    threading.Thread(target=launch, name="open-browser", daemon=True).start()
    return True
