"""The page as a WSGI application (Werkzeug routing and forms, Jinja2 templates).

Every request passes the same gates, in this order:

1. the ``Host`` header must be exactly ``127.0.0.1:PORT`` (a DNS-rebinding
   guard: a name that resolves to 127.0.0.1 does not reach the page): 400;
   then no request a page of another site sent is answered, GET or POST:
   ``Sec-Fetch-Site`` must be absent (curl, older browsers), ``none`` (the
   address bar, a bookmark, the link opened from the terminal) or
   ``same-origin``, and ``Origin``, when sent, ours (or ``null``): 403. Another
   port on 127.0.0.1 is the *same site* for the browser and gets the
   SameSite=Strict cookie, so this is what keeps its pages from making this
   page read values (an audit line each), roll the audit log over or spend
   this session's CSRF tokens. And a query string must be valid
   percent-encoded UTF-8: 400;
2. ``/login?token=...`` trades the printed token for a session cookie and
   redirects to a URL without the token; any other request needs the
   session cookie: 401;
3. a POST must be a form that reads (400: broken, or not valid URL-encoded
   UTF-8; 413: too large, or too many fields) and carry an outstanding CSRF
   token for its session and action, which it spends: 403, and nothing is
   written. A confirmation's token also holds which version the page showed;
   a rollback or undelete whose version changed since is refused: 409 (the
   library checks it under the store lock, in the write itself).

Then a route calls ``actions`` (the library) and renders HTML; a POST ends in
a 303 redirect with its outcome kept for the next page, so a reload never
posts again. Every response carries a strict Content-Security-Policy (no
script at all; the one inline stylesheet by hash), refuses framing, sends no
referrer and is never cached. No response holds a secret value: the page
never reads one to show it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote_to_bytes

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from secretstore.console import error_line
from secretstore.errors import (
    NotFoundError,
    SecretStoreError,
    StoreMissingError,
    VersionChangedError,
)
from secretstore.rules import MAX_VALUE_BYTES, check_name
from secretstore.store import TEAM, Scope, Store
from secretstore.ui import actions
from secretstore.ui.actions import Keys
from secretstore.ui.auth import Flash, Gate, LoginRefused, Session

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HOST = "127.0.0.1"
CSRF_FIELD = "csrf_token"
# A 64 KiB value percent-encoded is at most 192 KiB; anything much larger is refused unread.
MAX_REQUEST_BYTES = 4 * MAX_VALUE_BYTES
MAX_FORM_PARTS = 16  # the page's forms have at most four fields
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# Sec-Fetch-Site values of a request this page answers: none is what a browser sends for
# the address bar, a bookmark or a link opened from outside it (the terminal's login link).
OWN_SITES = (None, "none", "same-origin")
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")

# URL segment <-> entity
_KINDS = {"projects": "project", "clusters": "cluster"}
_SEGMENTS = {entity: kind for kind, entity in _KINDS.items()}


_STATUS_TITLES = {
    400: "Wrong address",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Changed meanwhile",
    413: "Too large",
    500: "Internal error",
}


class _Utf8Parts(MultiPartParser):
    """Every field decoded as UTF-8, whatever charset a part declares (werkzeug would take
    ascii or latin-1 at a part's word and store a value other than the one sent). Only
    called on a body already checked to be UTF-8, so no byte is ever replaced."""

    def get_part_charset(self, headers: Headers) -> str:
        return "utf-8"


class _FormParser(FormDataParser):
    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]) -> tuple[IO[bytes], MultiDict[str, str], MultiDict[str, FileStorage]]:
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        parser = _Utf8Parts(stream_factory=self.stream_factory, max_form_memory_size=self.max_form_memory_size,
                            max_form_parts=self.max_form_parts, cls=self.cls)
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class UiRequest(Request):
    max_content_length = MAX_REQUEST_BYTES
    max_form_memory_size = MAX_REQUEST_BYTES
    max_form_parts = MAX_FORM_PARTS
    confirmed = ""  # what the POST's form token confirmed (set by Page.check_post)

    form_data_parser_class = _FormParser

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        parser.silent = False  # a broken body is refused as such, not read as an empty form
        return parser


def strict_utf8(raw: bytes) -> bool:
    """True when ``raw`` (a query string, a URL-encoded form) is percent-encoded UTF-8: every
    ``%`` starts an escape, and the bytes it stands for (with any raw ones) are UTF-8. Werkzeug
    would keep ``%ff`` as the text "%FF", and fail on a raw 0xff byte in a query string."""
    if _BAD_PERCENT.search(raw) is not None:
        return False
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def query_bytes(request: Request) -> bytes | None:
    """The raw query string (PEP 3333 passes it as latin-1 text), or None when it cannot be one."""
    text = request.environ.get("QUERY_STRING", "")
    try:
        return str(text).encode("latin-1")
    except UnicodeEncodeError:
        return None


def scope_url(scope: Scope) -> str:
    if scope.scope_id is None:
        return "/team"
    return f"/{_SEGMENTS[scope.entity]}/{quote(scope.scope_id, safe='')}"


def secret_url(scope: Scope, name: str, *rest: str) -> str:
    """``/team/secrets/NAME/versions`` and the like: a name's own pages."""
    return "/".join([scope_url(scope), "secrets", quote(name, safe=""), *rest])


def version_number(text: str) -> int | None:
    """A version number from a URL (0, 1, 2...), or None: digits only, and few of them."""
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return None
    return int(text)


def refusal_status(exc: BaseException) -> int:
    """The status of a page the library refused: 404 for what is not there, else 403."""
    return 404 if isinstance(exc, (NotFoundError, StoreMissingError)) else 403


def scope_title(scope: Scope) -> str:
    return "Team" if scope.scope_id is None else f"{scope.entity.capitalize()} {scope.scope_id}"


def updated_text(stamp: str) -> str:
    """``2026-01-02T03:04:05Z`` as ``2026-01-02 03:04 UTC``; anything else as stored."""
    if len(stamp) == 20 and stamp[10] == "T" and stamp.endswith("Z"):
        return f"{stamp[:10]} {stamp[11:16]} UTC"
    return stamp


class Tab:
    __slots__ = ("active", "label", "url")

    def __init__(self, label: str, url: str, active: bool) -> None:
        self.label = label
        self.url = url
        self.active = active


def scope_tabs(scope: Scope, active: str) -> list[Tab]:
    """The tabs of a scope page: its secrets (each name's versions from there), its lines of
    the audit log, and the precedence view for it."""
    if scope.entity == "team":
        precedence = "/precedence"
    else:
        precedence = f"/precedence?{scope.entity}={quote(scope.scope_id or '', safe='')}"
    return [
        Tab("Secrets", scope_url(scope), active == "secrets"),
        Tab("Audit", f"{scope_url(scope)}/audit", active == "audit"),
        Tab("Precedence", precedence, active == "precedence"),
    ]


class Page:
    """The WSGI application for one store, answering at ``http://127.0.0.1:PORT``."""

    def __init__(self, store: Store, keys: Keys, port: int, gate: Gate | None = None) -> None:
        self.store = store
        self.keys = keys
        self.port = port
        self.host = f"{HOST}:{port}"
        self.origin = f"http://{self.host}"
        self.gate = gate or Gate()
        self._active = 0  # requests being answered
        self._idle = threading.Condition()
        # Cookies are per host, not per port: one name per server keeps two servers apart.
        self.cookie_name = f"secretstore_{port}"
        self.templates = Environment(
            loader=PackageLoader("secretstore.ui", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        css = self.templates.loader.get_source(self.templates, "style.css")[0]  # type: ignore[union-attr]
        self.css = Markup(css)  # noqa: S704 - our own stylesheet from the package, never input
        digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
        self.csp = (
            "default-src 'none'; "
            f"style-src 'sha256-{digest}'; "
            "img-src data:; "
            "form-action 'self'; "
            "frame-ancestors 'none'; "
            "base-uri 'none'"
        )
        scope_rules = []
        for prefix, defaults in (("/team", {"kind": "team"}), ("/<any(projects, clusters):kind>/<scope_id>", None)):
            scope_rules += [
                Rule(prefix, endpoint="scope", methods=["GET"], defaults=defaults),
                Rule(f"{prefix}/audit", endpoint="audit", methods=["GET"], defaults=defaults),
                Rule(f"{prefix}/secrets", endpoint="create", methods=["POST"], defaults=defaults),
                Rule(f"{prefix}/secrets/<name>/delete", endpoint="delete", methods=["GET", "POST"],
                     defaults=defaults),
                Rule(f"{prefix}/secrets/<name>/versions", endpoint="versions", methods=["GET"],
                     defaults=defaults),
                Rule(f"{prefix}/secrets/<name>/undelete", endpoint="undelete", methods=["POST"],
                     defaults=defaults),
                Rule(f"{prefix}/secrets/<name>/versions/<number>/rollback", endpoint="rollback",
                     methods=["GET", "POST"], defaults=defaults),
            ]
        self.routes = Map([
            Rule("/", endpoint="index", methods=["GET"]),
            Rule("/open", endpoint="open_scope", methods=["GET"]),
            Rule("/precedence", endpoint="precedence", methods=["GET"]),
            Rule("/audit", endpoint="store_audit", methods=["GET"]),
            Rule("/<any(projects, clusters):kind>", endpoint="missing_id", methods=["GET", "POST"]),
            Rule("/<any(projects, clusters):kind>/", endpoint="missing_id", methods=["GET", "POST"]),
            *scope_rules,
        ])
        self._handlers: dict[str, Callable[..., Response]] = {
            "index": self.index,
            "open_scope": self.open_scope,
            "precedence": self.precedence,
            "store_audit": self.store_audit,
            "scope": self.scope_page,
            "audit": self.scope_audit,
            "create": self.create,
            "delete": self.delete,
            "versions": self.versions,
            "undelete": self.undelete,
            "rollback": self.rollback,
            "missing_id": self.missing_id,
        }

    def __repr__(self) -> str:
        return f"Page({self.store!r}, port={self.port})"

    # --- WSGI ---------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = UiRequest(environ)
        with self._idle:
            self._active += 1
        try:
            response = self.dispatch(request)
        except Exception as exc:  # a bug: one line on the server's stderr, a plain page here
            response = self.internal_error(exc)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
        self.secure(response)
        return response(environ, start_response)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being answered (a stop lets a write finish); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def secure(self, response: Response) -> None:
        headers = response.headers
        headers["Content-Security-Policy"] = self.csp
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"

    def dispatch(self, request: UiRequest) -> Response:
        if request.environ.get("HTTP_HOST") != self.host:
            return self.error_page(
                400,
                f"this page answers only at {self.origin}/",
                "the request named another host (a guard against DNS rebinding): "
                "use the URL secretstore ui printed",
            )
        if self.sent_from_elsewhere(request):
            # Plain text, before the session is looked at: no page is rendered, so no CSRF
            # token is made and no message meant for the user's own next page is taken.
            return Response(
                "refused: a page of another site (or of another port on this machine) sent this "
                f"request; open {self.origin}/ from the address bar\n",
                status=403, mimetype="text/plain",
            )
        query = query_bytes(request)
        if query is None or not strict_utf8(query):
            return self.error_page(
                400, "the address is not valid: its query string is not percent-encoded UTF-8",
                "open the page from its links, or type the address again",
            )
        if request.path == "/login":
            return self.login(request)
        session = self.gate.session(request.cookies.get(self.cookie_name))
        if session is None:
            return self.error_page(
                401,
                "not signed in: open the link secretstore ui printed in its terminal",
                "if you just opened it from another page, reload this one",
            )
        try:
            endpoint, args = self.routes.bind_to_environ(request.environ).match()
        except RequestRedirect as redirect:
            return self.redirect(redirect.new_url, redirect.code)
        except HTTPException as exc:
            return self.error_page(exc.code or 400, exc.name.lower(), session=session)
        if request.method == "POST":
            refused = self.check_post(request, session)
            if refused is not None:
                return refused
        return self._handlers[endpoint](request, session, **args)

    def sent_from_elsewhere(self, request: Request) -> bool:
        """True for a request a page of another site, or of another port, sent (any method).

        With Referrer-Policy: no-referrer a browser sends "Origin: null" for its own forms;
        Sec-Fetch-Site still tells a request from another site (or another port) apart.
        """
        origin = request.headers.get("Origin")
        site = request.headers.get("Sec-Fetch-Site")
        return site not in OWN_SITES or origin not in (None, "null", self.origin)

    def check_post(self, request: UiRequest, session: Session) -> Response | None:
        """None when the POST may proceed; otherwise the refusal (nothing is written)."""
        refused = self.check_post_site(request, session)
        if refused is not None:
            return refused
        if request.mimetype not in ("", URLENCODED, MULTIPART):  # no type: an empty form, refused for its token
            return self.error_page(400, "the request is not a form: nothing was changed", session=session)
        try:
            # read first (and kept): werkzeug would take "%ff" as the text "%FF", and put U+FFFD
            # for a byte of a multipart field that is not UTF-8 (the page has no file fields, so
            # a multipart body of UTF-8 fields is UTF-8 throughout: boundaries and headers are ASCII)
            if request.mimetype == URLENCODED and not strict_utf8(request.get_data(cache=True)):
                return self.error_page(
                    400, "the form is not valid percent-encoded UTF-8: nothing was changed",
                    "send it again from the page", session=session,
                )
            if request.mimetype == MULTIPART and not is_utf8(request.get_data(cache=True)):
                return self.error_page(400, "the form is not valid UTF-8: nothing was changed",
                                       "send it again from the page", session=session)
            token = request.form.get(CSRF_FIELD, "")
        except RequestEntityTooLarge:
            return self.error_page(413, self.too_large(request), session=session)
        except (HTTPException, ValueError):  # a broken body: a multipart one not closed, no boundary...
            return self.error_page(400, "the form could not be read (its body is broken): nothing was changed",
                                   "send it again from the page", session=session)
        confirmed = self.gate.redeem_form_token(session, token, request.path)
        if confirmed is None:
            return self.error_page(
                403,
                "this form was already sent, or is not from a page of this server: nothing was changed",
                "go back, reload the page and fill in the form again",
                session=session,
            )
        request.confirmed = confirmed
        return None

    def check_post_site(self, request: Request, session: Session) -> Response | None:
        """A POST also needs Sec-Fetch-Site same-origin when it is sent ("none" is for navigations)."""
        if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin"):
            return self.error_page(403, "refused a form sent from another site", session=session)
        return None

    @staticmethod
    def too_large(request: Request) -> str:
        """Why a form was refused as too large. Werkzeug says 413 for a body over the limit and for
        a multipart body of more than MAX_FORM_PARTS parts; a body within the limit was the latter."""
        length = request.content_length
        if length is not None and length <= MAX_REQUEST_BYTES:
            return f"the form has too many fields (at most {MAX_FORM_PARTS}): nothing was changed"
        return f"the form is too large: a secret value is at most {MAX_VALUE_BYTES} bytes (64 KiB)"

    # --- pages --------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        if self.gate.session(request.cookies.get(self.cookie_name)) is not None:
            return self.redirect("/")  # already signed in: the token is not looked at
        try:
            session = self.gate.log_in(request.args.get("token", ""))
        except LoginRefused as exc:
            return self.error_page(
                403, str(exc), "stop secretstore ui (Ctrl-C) and start it again for a new link"
            )
        response = self.redirect("/")  # drops the token from the address bar and history
        response.set_cookie(
            self.cookie_name, session.session_id, path="/", httponly=True, samesite="Strict"
        )
        return response

    def index(self, request: Request, session: Session) -> Response:
        summaries = actions.scope_summaries(self.store, self.keys)
        rows = [
            {
                "entity": summary.scope.entity,
                "scope_id": summary.scope.scope_id or "",
                "url": scope_url(summary.scope),
                "count": summary.count,
                "error": summary.error,
                "rotate": summary.rotate,
            }
            for summary in summaries
        ]
        return self.render("index.html", session, title="Scopes", rows=rows)

    def open_scope(self, request: Request, session: Session) -> Response:
        entity = request.args.get("entity", "")
        scope_id = request.args.get("id", "").strip()
        try:
            scope = Scope.of(entity, scope_id or None)
        except SecretStoreError as exc:
            self.gate.flash(session, Flash("error", exc.message, exc.hint))
            return self.redirect("/")
        return self.redirect(scope_url(scope))

    def missing_id(self, request: Request, session: Session, kind: str) -> Response:
        try:
            Scope.of(_KINDS[kind], None)
        except SecretStoreError as exc:
            return self.error_page(404, exc.message, "open a scope from the list of scopes", session=session)
        raise AssertionError("Scope.of accepted a project or cluster without an id")

    def _scope(self, kind: str, scope_id: str | None) -> Scope:
        return TEAM if kind == "team" else Scope.of(_KINDS[kind], scope_id)

    def scope_page(self, request: Request, session: Session, kind: str,
                   scope_id: str | None = None) -> Response:
        try:
            scope = self._scope(kind, scope_id)
        except SecretStoreError as exc:
            return self.error_page(404, exc.message, exc.hint, session=session)
        error: Flash | None = None
        rows = []
        deleted = []
        try:
            listing = actions.scope_listing(self.store, self.keys, scope)
        except (SecretStoreError, OSError) as exc:
            error = Flash("error", actions.describe_error(exc), getattr(exc, "hint", None))
        else:
            for row in listing.live:
                rows.append({
                    "name": row.name,
                    "updated": row.updated,
                    "updated_text": updated_text(row.updated),
                    "rotate": row.rotate,
                    "versions_url": secret_url(scope, row.name, "versions"),
                    "delete_url": secret_url(scope, row.name, "delete"),
                })
            for row in listing.deleted:
                deleted.append({
                    "name": row.name,
                    "updated": row.updated,
                    "updated_text": updated_text(row.updated),
                    "versions_url": secret_url(scope, row.name, "versions"),
                })
        create_action = f"{scope_url(scope)}/secrets"
        return self.render(
            "scope.html",
            session,
            title=scope_title(scope),
            heading=scope_title(scope),
            scope_label=str(scope),
            tabs=scope_tabs(scope, "secrets"),
            rows=rows,
            deleted=deleted,
            error=error,
            create_action=create_action,
            create_token=self.gate.new_form_token(session, create_action),
        )

    def create(self, request: Request, session: Session, kind: str,
               scope_id: str | None = None) -> Response:
        try:
            scope = self._scope(kind, scope_id)
        except SecretStoreError as exc:
            return self.error_page(404, exc.message, exc.hint, session=session)
        try:
            name = request.form.get("name", "").strip()
            value = actions.form_value(request.form.get("value", ""), request.form.get("value_multiline", ""))
            message, created = actions.set_secret(self.store, self.keys, scope, name, value)
        except (SecretStoreError, OSError) as exc:
            self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
        else:
            self.gate.flash(session, Flash("ok", message))
            if created:
                identity, _ = self.keys.for_write()
                self.gate.flash(session, Flash("notice", actions.created_identity_message(identity)))
        return self.redirect(scope_url(scope))

    def delete(self, request: Request, session: Session, kind: str, name: str,
               scope_id: str | None = None) -> Response:
        try:
            scope = self._scope(kind, scope_id)
            check_name(name)
        except SecretStoreError as exc:
            return self.error_page(404, exc.message, exc.hint, session=session)
        back = scope_url(scope)
        if request.method == "POST":
            try:
                message = actions.delete_secret(self.store, self.keys, scope, name)
            except (SecretStoreError, OSError) as exc:
                self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
            else:
                self.gate.flash(session, Flash("ok", message))
            return self.redirect(back)
        try:
            actions.require_listed(self.store, scope, name)
        except (SecretStoreError, OSError) as exc:
            return self.error_page(refusal_status(exc), actions.describe_error(exc), getattr(exc, "hint", None),
                                   session=session, back=back)
        action = secret_url(scope, name, "delete")
        return self.render(
            "confirm_delete.html",
            session,
            title=f"Delete {name}",
            heading=scope_title(scope),
            scope_label=str(scope),
            name=name,
            back=back,
            action=action,
            token=self.gate.new_form_token(session, action),
        )

    def _scope_and_name(self, session: Session, kind: str, scope_id: str | None,
                        name: str) -> tuple[Scope, Response | None]:
        """The scope and a valid name from the URL, or the 404 page saying why not."""
        try:
            scope = self._scope(kind, scope_id)
        except SecretStoreError as exc:
            return TEAM, self.error_page(404, exc.message, exc.hint, session=session)
        try:
            check_name(name)
        except SecretStoreError as exc:
            return scope, self.error_page(404, exc.message, exc.hint, session=session, back=scope_url(scope))
        return scope, None

    def versions(self, request: Request, session: Session, kind: str, name: str,
                 scope_id: str | None = None) -> Response:
        scope, refused = self._scope_and_name(session, kind, scope_id, name)
        if refused is not None:
            return refused
        back = scope_url(scope)
        error: Flash | None = None
        found: actions.History | None = None
        try:
            found = actions.history(self.store, self.keys, scope, name)
        except (NotFoundError, StoreMissingError) as exc:
            return self.error_page(404, exc.message, exc.hint, session=session, back=back)
        except (SecretStoreError, OSError) as exc:
            error = Flash("error", actions.describe_error(exc), getattr(exc, "hint", None))
        rows = []
        undelete_action = secret_url(scope, name, "undelete")
        undelete_token = ""
        if found is not None and found.deleted:
            try:
                restored = actions.restorable(self.store, self.keys, scope, name, 1, deleted_only=True)
            except (SecretStoreError, OSError) as exc:
                error = Flash("error", actions.describe_error(exc), getattr(exc, "hint", None))
                found = None
            else:
                # the token holds which version Undelete brings back: its POST refuses another one
                undelete_token = self.gate.new_form_token(session, undelete_action,
                                                          restored.tag if restored is not None else "")
        if found is not None:
            for row in found.rows:
                rows.append({
                    "number": row.number,
                    "state": row.state,
                    "updated": row.updated,
                    "updated_text": updated_text(row.updated),
                    "writer": row.writer,
                    "rollback_url": secret_url(scope, name, "versions", str(row.number), "rollback")
                    if row.number > 0 else "",
                })
        return self.render(
            "versions.html",
            session,
            title=f"{name} versions",
            heading=scope_title(scope),
            scope_label=str(scope),
            name=name,
            back=back,
            rows=rows,
            deleted=found is not None and found.deleted,
            error=error,
            undelete_action=undelete_action,
            undelete_token=undelete_token,
            audit_url=f"{back}/audit?name={quote(name, safe='')}",
        )

    def undelete(self, request: UiRequest, session: Session, kind: str, name: str,
                 scope_id: str | None = None) -> Response:
        scope, refused = self._scope_and_name(session, kind, scope_id, name)
        if refused is not None:
            return refused
        versions_url = secret_url(scope, name, "versions")
        try:
            # the version the page showed is checked by the library under the store lock, in the write
            message = actions.undelete(self.store, self.keys, scope, name, request.confirmed)
        except VersionChangedError:
            return self.changed_since_confirmed(session, scope, name, 1, versions_url, deleted_only=True)
        except (SecretStoreError, OSError) as exc:
            self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
            return self.redirect(versions_url)
        self.gate.flash(session, Flash("ok", message))
        return self.redirect(scope_url(scope))

    def changed_since_confirmed(self, session: Session, scope: Scope, name: str, number: int,
                                versions_url: str, *, deleted_only: bool = False) -> Response:
        """The 409 page when version ``number`` is no longer the one the user confirmed (the name
        was set, deleted, rolled back... since the page was shown): the library found another
        version there under the store lock (``VersionChangedError``) and wrote nothing.

        When the file has no such version any more (or the name is not deleted, for an undelete),
        the library refuses in the CLI's words instead, shown as any other refusal.
        """
        what = "Undelete" if deleted_only else f"Roll back to version {number}"
        return self.error_page(
            409,
            f"version {number} of {scope} secret {name!r} is no longer the one you confirmed "
            "(it changed since the page was shown): nothing was changed",
            f"open its versions page again, check the version and use {what} there",
            session=session, back=versions_url,
        )

    def rollback(self, request: UiRequest, session: Session, kind: str, name: str, number: str,
                 scope_id: str | None = None) -> Response:
        scope, refused = self._scope_and_name(session, kind, scope_id, name)
        if refused is not None:
            return refused
        versions_url = secret_url(scope, name, "versions")
        chosen = version_number(number)
        if chosen is None:
            return self.error_page(404, f"{number!r} is not a version number (0, 1, 2...)",
                                   session=session, back=versions_url)
        if request.method == "POST":
            try:
                # the version the page showed is checked by the library under the store lock, in the write
                message = actions.rollback(self.store, self.keys, scope, name, chosen, request.confirmed)
            except VersionChangedError:
                return self.changed_since_confirmed(session, scope, name, chosen, versions_url)
            except (SecretStoreError, OSError) as exc:
                self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
            else:
                self.gate.flash(session, Flash("ok", message))
            return self.redirect(versions_url)
        try:
            found = actions.history(self.store, self.keys, scope, name)
            found.version(chosen)
            version = actions.restorable(self.store, self.keys, scope, name, chosen)
            if version is None:  # gone between the two reads
                raise NotFoundError(f"{scope} secret {name!r} has no version {chosen}")
        except (SecretStoreError, OSError) as exc:
            return self.error_page(refusal_status(exc), actions.describe_error(exc), getattr(exc, "hint", None),
                                   session=session, back=versions_url)
        action = secret_url(scope, name, "versions", str(chosen), "rollback")
        return self.render(
            "confirm_rollback.html",
            session,
            title=f"Roll back {name}",
            heading=scope_title(scope),
            scope_url=scope_url(scope),
            scope_label=str(scope),
            name=name,
            number=chosen,
            deleted=found.deleted,
            updated_text=updated_text(version.updated),
            writer=version.writer,
            back=versions_url,
            action=action,
            # what the page shows is what the POST restores: the token holds which version it is
            token=self.gate.new_form_token(session, action, version.tag),
        )

    def store_audit(self, request: Request, session: Session) -> Response:
        return self._audit(request, session, None)

    def scope_audit(self, request: Request, session: Session, kind: str,
                    scope_id: str | None = None) -> Response:
        try:
            scope = self._scope(kind, scope_id)
        except SecretStoreError as exc:
            return self.error_page(404, exc.message, exc.hint, session=session)
        return self._audit(request, session, scope)

    def _audit(self, request: Request, session: Session, scope: Scope | None) -> Response:
        name = request.args.get("name", "").strip() or None
        view: actions.AuditView | None = None
        error: Flash | None = None
        try:
            view = actions.audit_view(self.store, self.keys, scope, name)
        except (SecretStoreError, OSError) as exc:
            error = Flash("error", actions.describe_error(exc), getattr(exc, "hint", None))
        rows = []
        if view is not None:
            for row in view.rows:
                rows.append({
                    "time": row.time,
                    "time_text": updated_text(row.time),
                    "command": row.command,
                    "scope": row.scope,
                    "names": row.names,
                    "more": row.more,
                    "detail": row.detail,
                    "writer": row.writer,
                })
        heading = "Store" if scope is None else scope_title(scope)
        return self.render(
            "audit.html",
            session,
            title=f"Audit · {heading}",
            heading=heading,
            scope=scope,
            tabs=[] if scope is None else scope_tabs(scope, "audit"),
            back="/" if scope is None else scope_url(scope),
            name=name or "",
            here=request.path,
            view=view,
            rows=rows,
            error=error,
            limit=actions.AUDIT_ROWS,
        )

    def precedence(self, request: Request, session: Session) -> Response:
        project = request.args.get("project", "").strip()
        cluster = request.args.get("cluster", "").strip()
        result: actions.Precedence | None = None
        error: Flash | None = None
        try:
            result = actions.precedence(self.store, self.keys, project, cluster)
        except (SecretStoreError, OSError) as exc:
            error = Flash("error", actions.describe_error(exc), getattr(exc, "hint", None))
        context = []
        if result is not None:
            for entity, chosen, source in (
                ("project", result.context.project, result.context.project_source),
                ("cluster", result.context.cluster, result.context.cluster_source),
            ):
                origin = "this form" if source.startswith("--") else source
                context.append({"entity": entity, "id": chosen, "source": origin})
        return self.render(
            "precedence.html",
            session,
            title="Precedence",
            project=project,
            cluster=cluster,
            result=result,
            context=context,
            error=error,
        )

    # --- responses ----------------------------------------------------------------

    def render(self, template: str, session: Session | None, *, status: int = 200, **values: Any) -> Response:
        flashes = self.gate.take_flashes(session) if session is not None else []
        html = self.templates.get_template(template).render(
            css=self.css,
            signed_in=session is not None,
            store_root=self.store.root,
            flashes=flashes,
            **values,
        )
        return Response(html, status=status, mimetype="text/html")

    def error_page(self, status: int, message: str, hint: str | None = None, *,
                   session: Session | None = None, back: str = "/") -> Response:
        return self.render(
            "error.html", session, status=status, title=_STATUS_TITLES.get(status, str(status)),
            code=status, message=message, hint=hint, back=back,
        )

    def redirect(self, location: str, code: int = 303) -> Response:
        """A redirect without a body: the location is always one of ours."""
        return Response(b"", status=code, headers={"Location": location})

    def internal_error(self, exc: BaseException) -> Response:
        error_line(f"internal error in the page: {type(exc).__name__} (set SECRETSTORE_DEBUG=1 for a traceback)")
        if os.environ.get("SECRETSTORE_DEBUG"):
            traceback.print_exception(exc, file=sys.stderr)
        message = f"internal error ({type(exc).__name__}): this is a bug in secretstore, please report it"
        try:
            return self.error_page(500, message, "the terminal running secretstore ui has a line about it")
        except Exception:  # the error page itself failed: plain text, still without internals
            return Response(message + "\n", status=500, mimetype="text/plain")
