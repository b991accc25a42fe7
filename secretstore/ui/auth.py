"""Who may use the page: a one-time login token, sessions, one-time CSRF tokens.

- The server prints one URL carrying a random login token (as Jupyter does).
  The token works once, within ``LOGIN_LIFETIME`` seconds of the start; it
  becomes a session, held in a cookie the browser sends back (HttpOnly,
  SameSite=Strict) and in this process's memory only, so stopping the server
  ends every session.
- Every form the page renders carries a fresh CSRF token bound to the session
  and to the form's action. A POST must present one that is outstanding for
  its session and action; it is spent on use, so a replayed or resubmitted
  form is refused and nothing is written. A confirmation form's token also
  holds what the page showed (``confirms``: which version a rollback
  restores), so the POST can refuse when that changed meanwhile.

Plain stdlib (``secrets``, ``hmac``): no web framework is needed to decide who is who.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

LOGIN_LIFETIME = 15 * 60  # seconds from the start during which the printed link works
MAX_FORM_TOKENS = 256  # outstanding CSRF tokens per session; the oldest are dropped
TOKEN_BYTES = 32


class LoginRefused(Exception):
    """The login token is wrong, used or expired; ``str()`` says which, for the page."""


class Flash:
    """A one-line message shown once on the next page: what a POST did or why it did nothing."""

    __slots__ = ("hint", "kind", "message")

    def __init__(self, kind: str, message: str, hint: str | None = None) -> None:
        self.kind = kind  # "ok", "error" or "notice"
        self.message = message
        self.hint = hint

    def __repr__(self) -> str:
        return f"Flash({self.kind!r}, {self.message!r})"


class Session:
    """One signed-in browser: its outstanding form tokens and pending messages."""

    __slots__ = ("flashes", "form_tokens", "session_id")

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        # token -> (action path, what the form confirms: "" for most forms)
        self.form_tokens: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.flashes: list[Flash] = []

    def __repr__(self) -> str:
        return f"Session(<redacted>, {len(self.form_tokens)} form tokens)"


class Gate:
    """The login token and the sessions of one server. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.login_token = secrets.token_urlsafe(TOKEN_BYTES)
        self._login_used = False
        self._started = clock()
        self._sessions: dict[str, Session] = {}

    def __repr__(self) -> str:
        return f"Gate(<redacted>, {len(self._sessions)} sessions)"

    def log_in(self, token: str) -> Session:
        """Trade the printed token for a new session; refuse a wrong, used or expired one."""
        with self._lock:
            if not hmac.compare_digest(token.encode("utf-8"), self.login_token.encode("ascii")):
                raise LoginRefused(
                    "this login link is not the one secretstore ui printed: copy the whole URL"
                )
            if self._login_used:
                raise LoginRefused(
                    "this login link was already used (it works once); "
                    "if that was not you, someone else has signed in"
                )
            if self._clock() - self._started > LOGIN_LIFETIME:
                raise LoginRefused(
                    f"this login link expired ({LOGIN_LIFETIME // 60} minutes after the start)"
                )
            self._login_used = True
            session = Session(secrets.token_urlsafe(TOKEN_BYTES))
            self._sessions[session.session_id] = session
            return session

    def session(self, session_id: str | None) -> Session | None:
        """The session a cookie names, or None."""
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def new_form_token(self, session: Session, action: str, confirms: str = "") -> str:
        """A fresh token for one form posting to ``action``; ``confirms`` is kept with it, server-side."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock:
            session.form_tokens[token] = (action, confirms)
            while len(session.form_tokens) > MAX_FORM_TOKENS:
                session.form_tokens.popitem(last=False)
        return token

    def redeem_form_token(self, session: Session, token: str, action: str) -> str | None:
        """What the form confirms ("" if nothing) when ``token`` is outstanding for this session
        and ``action``, else None; spent either way."""
        if not token:
            return None
        with self._lock:
            expected = session.form_tokens.pop(token, None)
        # as bytes: compare_digest refuses str with non-ASCII characters (a path may hold some)
        if expected is None or not hmac.compare_digest(expected[0].encode("utf-8", "surrogatepass"),
                                                     action.encode("utf-8", "surrogatepass")):
            return None
        return expected[1]

    def spend_form_token(self, session: Session, token: str, action: str) -> bool:
        """True when ``token`` is outstanding for this session and ``action``; spent either way."""
        return self.redeem_form_token(session, token, action) is not None

    def flash(self, session: Session, flash: Flash) -> None:
        with self._lock:
            session.flashes.append(flash)

    def take_flashes(self, session: Session) -> list[Flash]:
        with self._lock:
            taken, session.flashes = session.flashes, []
        return taken
