"""The page as a WSGI application (Werkzeug routing and forms, Jinja2 templates).

Every request passes the same gates, in this order:

1. the ``Host`` header must be exactly ``127.0.0.1:PORT`` (a DNS-rebinding
   guard: a name that resolves to 127.0.0.1 does not reach the page): 400;
2. ``/login?token=...`` trades the printed token for a session cookie and
   redirects to a URL without the token; any other request needs the
   session cookie: 401;
3. a POST must come from this origin (``Origin``, ``Sec-Fetch-Site``) and
   carry an outstanding CSRF token for its session and action, which it
   spends: 403, and nothing is written.

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
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from secretstore.console import error_line
from secretstore.errors import NotFoundError, SecretStoreError, StoreMissingError
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

# URL segment <-> entity
_KINDS = {"projects": "project", "clusters": "cluster"}
_SEGMENTS = {entity: kind for kind, entity in _KINDS.items()}


_STATUS_TITLES = {
    400: "Wrong address",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    500: "Internal error",
}


class UiRequest(Request):
    max_content_length = MAX_REQUEST_BYTES
    max_form_memory_size = MAX_REQUEST_BYTES
    max_form_parts = 16


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

    def dispatch(self, request: Request) -> Response:
        if request.environ.get("HTTP_HOST") != self.host:
            return self.error_page(
                400,
                f"this page answers only at {self.origin}/",
                "the request named another host (a guard against DNS rebinding): "
                "use the URL secretstore ui printed",
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

    def check_post(self, request: Request, session: Session) -> Response | None:
        """None when the POST may proceed; otherwise the refusal (nothing is written)."""
        # With Referrer-Policy: no-referrer a browser sends "Origin: null" for its own forms;
        # Sec-Fetch-Site still tells a form from another site (or another port) apart.
        origin = request.headers.get("Origin")
        site = request.headers.get("Sec-Fetch-Site")
        if origin not in (None, "null", self.origin) or site not in (None, "same-origin"):
            return self.error_page(403, "refused a form sent from another site", session=session)
        try:
            token = request.form.get(CSRF_FIELD, "")
        except HTTPException as exc:  # over the size limit (413, the body was not read) or malformed
            if exc.code == 413:
                message = f"the form is too large: a secret value is at most {MAX_VALUE_BYTES} bytes (64 KiB)"
            else:
                message = "the form could not be read: nothing was changed"
            return self.error_page(exc.code or 400, message, session=session)
        if not self.gate.spend_form_token(session, token, request.path):
            return self.error_page(
                403,
                "this form was already sent, or is not from a page of this server: nothing was changed",
                "go back, reload the page and fill in the form again",
                session=session,
            )
        return None

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
            if found.deleted:
                undelete_token = self.gate.new_form_token(session, undelete_action)
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

    def undelete(self, request: Request, session: Session, kind: str, name: str,
                 scope_id: str | None = None) -> Response:
        scope, refused = self._scope_and_name(session, kind, scope_id, name)
        if refused is not None:
            return refused
        try:
            message = actions.undelete(self.store, self.keys, scope, name)
        except (SecretStoreError, OSError) as exc:
            self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
            return self.redirect(secret_url(scope, name, "versions"))
        self.gate.flash(session, Flash("ok", message))
        return self.redirect(scope_url(scope))

    def rollback(self, request: Request, session: Session, kind: str, name: str, number: str,
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
                message = actions.rollback(self.store, self.keys, scope, name, chosen)
            except (SecretStoreError, OSError) as exc:
                self.gate.flash(session, Flash("error", actions.describe_error(exc), getattr(exc, "hint", None)))
            else:
                self.gate.flash(session, Flash("ok", message))
            return self.redirect(versions_url)
        try:
            found = actions.history(self.store, self.keys, scope, name)
            version = found.version(chosen)
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
            token=self.gate.new_form_token(session, action),
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
