"""The web page's routes in-process (Werkzeug's test client), every refusal, and no value in any response.

Every response a test gets passes through ``Recorder``; after each test, the
fixture checks that no status line, header or body holds ``VALUE`` (every
value the tests set contains it); the fixtures are in tests/fixtures_ui.py.
The real server (``secretstore ui`` as a subprocess) is tested at the end;
the browser test is test_ui_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import pytest
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from secretstore import context as contexts
from secretstore import identity as identities
from secretstore import layers as reading
from secretstore import precedence
from secretstore.errors import NotFoundError
from secretstore.identity import create_identity
from secretstore.rules import MAX_VALUE_BYTES
from secretstore.store import TEAM, Scope, Store
from secretstore.ui import actions
from secretstore.ui.actions import Keys
from secretstore.ui.app import Page
from secretstore.ui.auth import LOGIN_LIFETIME, MAX_FORM_TOKENS, Session
from tests.conftest import console_script
from tests.fixtures_ui import BASE, PORT, VALUE, Clock, Recorder, Ui

PROJECT = Scope("project", "prj42")
CLUSTER = Scope("cluster", "gpu-a")


def session_of(ui: Ui) -> Session:
    cookie = ui.client.get_cookie(f"secretstore_{PORT}", domain="127.0.0.1")
    assert cookie is not None
    session = ui.page.gate.session(cookie.value)
    assert session is not None
    return session


def messages(response: TestResponse) -> list[str]:
    """The text of every message box on a page."""
    return [unescape(text) for text in re.findall(r'<div class="flash \w+" role="\w+">\s*<p>(.*?)</p>',
                                                   response.text, re.S)]


def names_listed(response: TestResponse) -> list[str]:
    """The live names on a Secrets tab (a "rotate needed" mark may follow a name)."""
    return re.findall(r'<td class="name">([^<]*?)(?: <span class="badge[^"]*"[^>]*>[^<]*</span>)?</td>', response.text)


def rotate_marked(response: TestResponse) -> list[str]:
    return re.findall(r'<td class="name">(\w+) <span class="badge warn"[^>]*>rotate needed</span></td>', response.text)


def deleted_listed(response: TestResponse) -> list[str]:
    return re.findall(r'<td class="deleted-name">([^<]*)</td>', response.text)


def hints(response: TestResponse) -> list[str]:
    return [unescape(hint) for hint in re.findall(r'<p class="hint">(.*?)</p>', response.text, re.S)]


def version_rows(response: TestResponse) -> list[tuple[str, str, str]]:
    """(number, state, by) of each row of a versions page."""
    rows = re.findall(r'<tr>\s*<td class="count">(\d+)</td>\s*<td><span class="state \w+">(\w+)</span></td>'
                      r'\s*<td><time[^>]*>[^<]*</time></td>\s*<td>(.*?)</td>', response.text, re.S)
    return [(number, state, re.sub(r"<[^>]+>", "", by)) for number, state, by in rows]


def audit_rows(response: TestResponse) -> list[list[str]]:
    """The cells of each row of an audit page, as text."""
    body = response.text.split('<table class="list audit">', 1)[-1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[-1], re.S)
    return [[" ".join(unescape(re.sub(r"<[^>]+>", "", cell)).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in rows]


# --- signing in ----------------------------------------------------------------------


def test_the_login_link_sets_a_strict_httponly_cookie_and_drops_the_token(ui: Ui) -> None:
    response = ui.login()
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"secretstore_{PORT}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert ui.page.gate.login_token not in cookie
    assert ui.get("/").status_code == 200


def test_the_login_link_works_once(ui: Ui, page: Page) -> None:
    ui.login()
    other = Ui(page, ui.recorder)  # another browser, with the same link
    refused = other.get(f"/login?token={page.gate.login_token}")
    assert refused.status_code == 403
    assert "already used" in refused.text and "Set-Cookie" not in refused.headers
    assert other.get("/").status_code == 401
    # the browser that signed in is simply sent on when it opens the link again
    again = ui.get(f"/login?token={page.gate.login_token}")
    assert (again.status_code, again.headers["Location"]) == (303, "/")


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", "?token=%00"])
def test_a_wrong_or_missing_token_is_refused(ui: Ui, query: str) -> None:
    response = ui.get(f"/login{query}")
    assert response.status_code == 403
    assert "not the one secretstore ui printed" in response.text
    assert "Set-Cookie" not in response.headers
    assert ui.get("/").status_code == 401


def test_a_wrong_token_does_not_spend_the_right_one(ui: Ui) -> None:
    assert ui.get("/login?token=nope").status_code == 403
    ui.login()


def test_the_login_link_expires(ui: Ui, gate_clock: Clock) -> None:
    gate_clock.now += LOGIN_LIFETIME + 1
    response = ui.get(f"/login?token={ui.page.gate.login_token}")
    assert response.status_code == 403
    assert "expired" in response.text
    assert ui.get("/").status_code == 401


ROUTES = [
    ("GET", "/"), ("GET", "/team"), ("GET", "/projects/prj42"), ("GET", "/clusters/gpu-a"),
    ("GET", "/precedence"), ("GET", "/open?entity=project&id=x"), ("GET", "/nonexistent"),
    ("GET", "/team/secrets/TOKEN/delete"), ("POST", "/team/secrets"),
    ("POST", "/projects/prj42/secrets"), ("POST", "/team/secrets/TOKEN/delete"),
    ("GET", "/team/secrets/TOKEN/versions"), ("POST", "/team/secrets/TOKEN/undelete"),
    ("GET", "/team/secrets/TOKEN/versions/1/rollback"), ("POST", "/team/secrets/TOKEN/versions/1/rollback"),
    ("GET", "/audit"), ("GET", "/team/audit"), ("GET", "/projects/prj42/audit"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_without_the_session_is_refused(ui: Ui, store: Store, identity, method: str,
                                                    path: str) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    before = Path(store.path(TEAM)).read_bytes()
    response = ui.client.open(path, method=method, base_url=BASE,
                              data={"name": "NEW", "value": VALUE + "-x", "csrf_token": "x"})
    assert response.status_code == 401
    assert "not signed in" in response.text
    assert Path(store.path(TEAM)).read_bytes() == before
    assert not os.path.exists(store.path(PROJECT))


def test_a_forged_session_cookie_is_refused(ui: Ui) -> None:
    ui.client.set_cookie(f"secretstore_{PORT}", "made-up", domain="127.0.0.1")
    assert ui.get("/team").status_code == 401


@pytest.mark.parametrize("host", [
    "evil.example", f"evil.example:{PORT}", f"localhost:{PORT}", "127.0.0.1:1", "127.0.0.1",
    f"127.0.0.2:{PORT}", f"127.0.0.1:{PORT}.evil.example", f"127.0.0.1:{PORT},evil.example",
])
def test_a_foreign_host_header_is_refused_before_anything(ui: Ui, page: Page, host: str) -> None:
    """DNS rebinding: a name that resolves to 127.0.0.1 reaches the socket, not the page."""
    response = ui.get(f"/login?token={page.gate.login_token}", headers={"Host": host})
    assert response.status_code == 400
    assert "answers only at" in response.text
    assert "Set-Cookie" not in response.headers
    ui.login()  # the token was not spent
    assert ui.get("/team", headers={"Host": host}).status_code == 400


def test_a_request_without_a_host_header_is_refused(ui: Ui) -> None:
    environ = EnvironBuilder("/", base_url=BASE).get_environ()
    del environ["HTTP_HOST"]
    _body, status, _headers = run_wsgi_app(ui.recorder, environ)
    assert status.startswith("400")


# --- headers on every response -----------------------------------------------------------


def _every_kind_of_response(ui: Ui) -> list[TestResponse]:
    responses = [ui.get("/", headers={"Host": "evil.example"}), ui.get("/team"), ui.get("/login?token=x")]
    responses.append(ui.login())
    responses += [ui.get("/"), ui.get("/team"), ui.get("/projects/prj42"), ui.get("/precedence"),
                  ui.get("/nope"), ui.get("/projects/bad..id"), ui.post("/team/secrets", {}),
                  ui.create("/team", "TOKEN", VALUE), ui.get("/team/secrets/TOKEN/delete")]
    responses += [ui.create("/team", "TOKEN", VALUE + "-2"), ui.get("/team/secrets/TOKEN/versions"),
                  ui.get("/team/secrets/TOKEN/versions/1/rollback"), ui.get("/audit"), ui.get("/team/audit"),
                  ui.delete("/team", "TOKEN"), ui.get("/team"), ui.get("/team/secrets/TOKEN/versions"),
                  ui.get("/team/secrets/TOKEN/undelete")]
    return responses


def test_every_response_carries_the_security_headers(ui: Ui) -> None:
    responses = _every_kind_of_response(ui)
    assert {r.status_code for r in responses} >= {200, 303, 400, 401, 403, 404, 405}
    for response in responses:
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["form-action"] == "'self'"
        assert directives["base-uri"] == "'none'"
        assert "script-src" not in directives  # so default-src 'none': no script at all
        assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", directives["style-src"])
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_script_and_nothing_from_elsewhere(ui: Ui) -> None:
    for response in _every_kind_of_response(ui):
        text = response.text.lower()
        assert "<script" not in text and "javascript:" not in text and " on" + "click=" not in text
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", text), text
        assert "<link" not in text or '<link rel="icon" href="data:,">' in text


def test_the_inline_stylesheet_matches_the_hash_in_the_policy(signed_in: Ui) -> None:
    response = signed_in.get("/team")
    styles = re.findall(r"<style>(.*?)</style>", response.text, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in response.headers["Content-Security-Policy"]


# --- the Secrets tab ----------------------------------------------------------------------


def test_create_lists_and_stores_the_value(signed_in: Ui, store: Store, identity) -> None:
    response = signed_in.create("/team", "WANDB_API_KEY", VALUE)
    assert (response.status_code, response.headers["Location"]) == (303, "/team")
    assert response.data == b""
    assert store.get(TEAM, "WANDB_API_KEY", identity) == VALUE
    page = signed_in.get("/team")
    assert messages(page) == ["Set team secret 'WANDB_API_KEY'"]
    assert names_listed(page) == ["WANDB_API_KEY"]
    updated = store.list(TEAM)[0][1]
    assert f'<time datetime="{updated}">{updated[:10]} {updated[11:16]} UTC</time>' in page.text
    assert messages(signed_in.get("/team")) == []  # shown once


def test_the_create_form_has_a_password_field_and_a_text_area(signed_in: Ui) -> None:
    text = signed_in.get("/projects/prj42").text
    assert re.search(r'<input id="value" name="value" type="password" autocomplete="new-password">', text)
    assert '<textarea id="value-multiline" name="value_multiline"' in text
    assert "Create Secret" in text and "No data found" in text


@pytest.mark.parametrize(("path", "scope"), [("/projects/prj42", PROJECT), ("/clusters/gpu-a", CLUSTER)])
def test_project_and_cluster_pages_write_their_own_scope(signed_in: Ui, store: Store, identity,
                                                         path: str, scope: Scope) -> None:
    assert signed_in.create(path, "HF_TOKEN", VALUE + "-scoped").headers["Location"] == path
    assert store.get(scope, "HF_TOKEN", identity) == VALUE + "-scoped"
    assert store.list(TEAM) == []
    page = signed_in.get(path)
    assert messages(page) == [f"Set {scope.entity} secret 'HF_TOKEN'"]
    assert names_listed(page) == ["HF_TOKEN"]


def test_a_multi_line_value_keeps_its_lines(signed_in: Ui, store: Store, identity) -> None:
    pem = f"-----BEGIN KEY-----\r\n{VALUE}\r\nline two\r\n-----END KEY-----\r\n"
    signed_in.create("/team", "TLS_KEY", multi=pem)
    assert store.get(TEAM, "TLS_KEY", identity) == f"-----BEGIN KEY-----\n{VALUE}\nline two\n-----END KEY-----"


def test_setting_an_existing_name_replaces_it(signed_in: Ui, store: Store, identity) -> None:
    signed_in.create("/team", "TOKEN", VALUE + "-1")
    signed_in.create("/team", "TOKEN", VALUE + "-2")
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-2"
    assert names_listed(signed_in.get("/team")) == ["TOKEN"]


BAD_INPUT = [
    ("bad-name", VALUE, "", "invalid secret name 'bad-name': use a letter, then letters, digits or '_'"),
    ("1ABC", VALUE, "", "invalid secret name '1ABC'"),
    ("", VALUE, "", "secret name is empty"),
    ("N" * 256, VALUE, "", "secret name is 256 characters; the limit is 255"),
    ("EMPTY", "", "", "secret value is empty"),
    ("NUL", VALUE + "\x00", "", "secret value contains a NUL byte"),
    ("BIG", VALUE + "x" * (MAX_VALUE_BYTES + 1 - len(VALUE)), "",
     f"secret value is {MAX_VALUE_BYTES + 1} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB)"),
    ("BIG_UTF8", VALUE + "é" * (MAX_VALUE_BYTES // 2), "", "the limit is 65536 (64 KiB)"),
    ("BOTH", VALUE, VALUE + "-multi", "give the value in one field, not both"),
    ("JUST_NEWLINE", "", "\r\n", "secret value is empty"),
]


@pytest.mark.parametrize(("name", "value", "multi", "message"), BAD_INPUT,
                         ids=[row[0][:12] or "empty-name" for row in BAD_INPUT])
def test_bad_input_is_a_message_on_the_page_and_nothing_is_written(
        signed_in: Ui, store: Store, name: str, value: str, multi: str, message: str) -> None:
    response = signed_in.create("/team", name, value, multi)
    assert (response.status_code, response.headers["Location"]) == (303, "/team")
    assert not os.path.exists(store.path(TEAM))
    page = signed_in.get("/team")
    shown = messages(page)
    assert len(shown) == 1 and message in shown[0], shown
    assert "<details class=\"create\" open>" in page.text  # the form stays open to fix it


def test_messages_match_the_cli(signed_in: Ui, cli_run) -> None:
    """The same words for the same outcome on the page and on the command line."""
    signed_in.create("/projects/prj42", "SAME", VALUE)
    shown = messages(signed_in.get("/projects/prj42"))
    done = cli_run("set", "project", "--id=prj42", "--name=SAME", "--value", "-", input=VALUE.encode())
    assert [done.stdout.decode().strip()] == shown
    signed_in.create("/team", "bad-name", VALUE)
    shown = messages(signed_in.get("/team"))
    done = cli_run("set", "team", "--name=bad-name", "--value", "-", input=VALUE.encode())
    assert done.stderr.decode().splitlines()[0] == f"secretstore: error: {shown[0]}"
    signed_in.delete("/projects/prj42", "SAME")
    shown = messages(signed_in.get("/projects/prj42"))
    cli_run("set", "project", "--id=prj42", "--name=SAME", "--value", "-", input=VALUE.encode())
    done = cli_run("delete", "project", "--id=prj42", "--name=SAME")
    assert [done.stdout.decode().strip()] == shown


def test_an_oversized_request_is_refused_unread(signed_in: Ui, store: Store) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="HUGE", value=VALUE * 20000)
    response = signed_in.post("/team/secrets", fields)
    assert response.status_code == 413
    assert "at most 65536 bytes" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_malformed_form_is_refused(signed_in: Ui, store: Store) -> None:
    """Werkzeug reads what it can of a broken body; without a form token it is refused."""
    body = b"--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc"  # never closed
    response = signed_in.client.post("/team/secrets", base_url=BASE, data=body,
                                      content_type="multipart/form-data; boundary=x")
    assert response.status_code == 400 and "its body is broken" in response.text
    assert "Traceback" not in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_form_of_too_many_parts_is_refused(signed_in: Ui, store: Store) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update({f"extra{number}": "x" for number in range(40)}, name="MANY", value=VALUE)
    response = signed_in.client.post("/team/secrets", base_url=BASE, data=fields,
                                      content_type="multipart/form-data")
    assert response.status_code == 413
    assert not os.path.exists(store.path(TEAM))


# --- CSRF -------------------------------------------------------------------------------


def test_a_post_without_a_form_token_is_refused(signed_in: Ui, store: Store) -> None:
    response = signed_in.post("/team/secrets", {"name": "TOKEN", "value": VALUE})
    assert response.status_code == 403
    assert "nothing was changed" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_wrong_form_token_is_refused(signed_in: Ui, store: Store) -> None:
    signed_in.form("/team", "/team/secrets")
    response = signed_in.post("/team/secrets", {"csrf_token": "guessed", "name": "TOKEN", "value": VALUE})
    assert response.status_code == 403
    assert not os.path.exists(store.path(TEAM))


def test_a_replayed_form_is_refused_and_writes_nothing(signed_in: Ui, store: Store, identity) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="TOKEN", value=VALUE + "-first")
    assert signed_in.post("/team/secrets", fields).status_code == 303
    before = Path(store.path(TEAM)).read_bytes()
    fields["value"] = VALUE + "-second"
    replayed = signed_in.post("/team/secrets", fields)
    assert replayed.status_code == 403
    assert "already sent" in replayed.text
    assert Path(store.path(TEAM)).read_bytes() == before
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-first"


def test_a_form_token_only_works_for_its_own_form(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "KEEP", VALUE, identity)
    create_token = signed_in.form("/team", "/team/secrets")
    response = signed_in.post("/team/secrets/KEEP/delete", create_token)
    assert response.status_code == 403
    assert store.list(TEAM)[0][0] == "KEEP"
    project_token = signed_in.form("/projects/prj42", "/projects/prj42/secrets")
    project_token.update(name="TOKEN", value=VALUE)
    assert signed_in.post("/team/secrets", project_token).status_code == 403
    assert [name for name, _ in store.list(TEAM)] == ["KEEP"]


def test_a_form_token_of_another_session_is_refused(ui: Ui, page: Page, store: Store) -> None:
    ui.login()
    fields = ui.form("/team", "/team/secrets")
    intruder = Ui(page, ui.recorder)
    page.gate._sessions["intruder"] = Session("intruder")  # as if a second browser had signed in
    intruder.client.set_cookie(f"secretstore_{PORT}", "intruder", domain="127.0.0.1")
    fields.update(name="TOKEN", value=VALUE)
    assert intruder.post("/team/secrets", fields).status_code == 403
    assert not os.path.exists(store.path(TEAM))


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:1"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port on 127.0.0.1 is the same site
])
def test_a_form_from_another_origin_is_refused(signed_in: Ui, store: Store, headers: dict[str, str]) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="TOKEN", value=VALUE)
    response = signed_in.post("/team/secrets", fields, headers=headers)
    assert response.status_code == 403
    assert "another site" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_the_browsers_own_origin_headers_are_accepted(signed_in: Ui, store: Store, identity) -> None:
    """A browser sends 'Origin: null' under Referrer-Policy: no-referrer (seen in Chromium)."""
    for number, origin in enumerate(["null", BASE]):
        fields = signed_in.form("/team", "/team/secrets")
        fields.update(name=f"TOKEN{number}", value=VALUE)
        response = signed_in.post("/team/secrets", fields,
                                  headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
        assert response.status_code == 303
    assert [name for name, _ in store.list(TEAM)] == ["TOKEN0", "TOKEN1"]


def test_outstanding_form_tokens_are_bounded(signed_in: Ui, page: Page) -> None:
    first = signed_in.form("/team", "/team/secrets")
    for _ in range(MAX_FORM_TOKENS):
        signed_in.get("/team")
    first.update(name="OLD", value=VALUE)
    assert signed_in.post("/team/secrets", first).status_code == 403
    assert len(session_of(signed_in).form_tokens) == MAX_FORM_TOKENS


# --- delete ---------------------------------------------------------------------------


def test_delete_asks_for_confirmation_then_deletes(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    store.set(TEAM, "OTHER", VALUE + "-other", identity)
    listing = signed_in.get("/team")
    assert '<a class="button danger small" href="/team/secrets/TOKEN/delete">Delete</a>' in listing.text
    confirm = signed_in.get("/team/secrets/TOKEN/delete")
    assert confirm.status_code == 200
    assert "Delete the team secret <code>TOKEN</code>?" in confirm.text
    assert '<a class="button" href="/team">Cancel</a>' in confirm.text
    assert [name for name, _ in store.list(TEAM)] == ["OTHER", "TOKEN"]  # a GET deletes nothing
    response = signed_in.delete("/team", "TOKEN")
    assert (response.status_code, response.headers["Location"]) == (303, "/team")
    assert [name for name, _ in store.list(TEAM)] == ["OTHER"]
    page = signed_in.get("/team")
    assert messages(page) == ["Deleted team secret 'TOKEN'"]
    assert names_listed(page) == ["OTHER"]


def test_delete_drops_execs_snapshot_of_the_scope(signed_in: Ui, store: Store, identity, cli_run) -> None:
    store.set(PROJECT, "TOKEN", VALUE, identity)
    assert cli_run("exec", "--project", "prj42", "--", "true").returncode == 0
    from secretstore import paths
    from secretstore.snapshot import Snapshots

    snapshot = Snapshots(paths.snapshot_dir() or "", identity, store.root).path(PROJECT)
    assert os.path.exists(snapshot)
    signed_in.delete("/projects/prj42", "TOKEN")
    assert not os.path.exists(snapshot)


def test_deleting_a_missing_secret_says_so(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "OTHER", VALUE, identity)
    confirm = signed_in.get("/team/secrets/NOPE/delete")
    assert confirm.status_code == 404
    assert "no team secret &#39;NOPE&#39; to delete" in confirm.text
    # a confirmation page left open while the secret was deleted elsewhere
    store.set(TEAM, "GONE", VALUE, identity)
    fields = signed_in.form("/team/secrets/GONE/delete", "/team/secrets/GONE/delete")
    store.delete(TEAM, "GONE", identity)
    before = Path(store.path(TEAM)).read_bytes()
    signed_in.post("/team/secrets/GONE/delete", fields)
    assert messages(signed_in.get("/team")) == ["no team secret 'GONE' to delete"]
    assert Path(store.path(TEAM)).read_bytes() == before


def test_delete_with_an_invalid_name_is_not_found(signed_in: Ui) -> None:
    response = signed_in.get("/team/secrets/bad-name/delete")
    assert response.status_code == 404
    assert "invalid secret name" in response.text


# --- versions, undelete, rollback ------------------------------------------------------------


def test_each_name_links_to_its_versions(signed_in: Ui, store: Store, identity) -> None:
    signed_in.create("/team", "TOKEN", VALUE + "-1")
    signed_in.create("/team", "TOKEN", VALUE + "-2")
    listing = signed_in.get("/team")
    assert '<a class="button small" href="/team/secrets/TOKEN/versions">Versions</a>' in listing.text
    page = signed_in.get("/team/secrets/TOKEN/versions")
    assert page.status_code == 200
    short = identity.public_text[:16] + "..."
    assert version_rows(page) == [("0", "current", f"you {short}"), ("1", "previous", f"you {short}")]
    assert f'<code title="{identity.public_text}">{short}</code>' in page.text
    # the same versions as secretstore history, never a value
    assert [(v.number, v.state) for v in store.versions(TEAM, "TOKEN")] == [(0, "current"), (1, "previous")]
    assert "Undelete" not in page.text  # a live name has nothing to undelete
    assert '<a class="button small" href="/team/secrets/TOKEN/versions/1/rollback">Roll back to 1</a>' in page.text
    assert "/versions/0/rollback" not in page.text


def test_versions_name_each_writer_by_label(signed_in: Ui, store: Store, identity) -> None:
    bob = identities.Identity.generate()
    store.set(PROJECT, "SHARED", VALUE + "-bob", bob)  # bob writes with the same trust state: a writer
    store.trust(identity.public).trust_key(bob.public.with_label("bob"))
    store.add_recipient(identity.public, bob, PROJECT)
    signed_in.create("/projects/prj42", "SHARED", VALUE + "-mine")
    rows = version_rows(signed_in.get("/projects/prj42/secrets/SHARED/versions"))
    assert rows == [("0", "current", f"you {identity.public_text[:16]}..."),
                    ("1", "previous", f"bob {bob.public_text[:16]}...")]


def test_delete_lists_the_name_as_deleted_and_undelete_brings_it_back(signed_in: Ui, store: Store,
                                                                      identity) -> None:
    store.set_many(TEAM, {"TOKEN": VALUE + "-token", "OTHER": VALUE + "-other"}, identity)
    assert deleted_listed(signed_in.get("/team")) == []
    signed_in.delete("/team", "TOKEN")
    listing = signed_in.get("/team")
    assert names_listed(listing) == ["OTHER"]
    assert deleted_listed(listing) == ["TOKEN"]
    assert "Deleted, can be brought back" in listing.text
    assert listing.text.count('href="/team/secrets/TOKEN/versions"') == 1
    versions = signed_in.get("/team/secrets/TOKEN/versions")
    assert [row[:2] for row in version_rows(versions)] == [("0", "deleted"), ("1", "previous")]
    assert '<form method="post" action="/team/secrets/TOKEN/undelete" class="undelete">' in versions.text
    response = signed_in.undelete("/team", "TOKEN")
    assert (response.status_code, response.headers["Location"], response.data) == (303, "/team", b"")
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-token"
    page = signed_in.get("/team")
    assert messages(page) == ["Undeleted team secret 'TOKEN'"]
    assert names_listed(page) == ["OTHER", "TOKEN"]
    assert deleted_listed(page) == [] and "Deleted, can be brought back" not in page.text
    # the value came back as a new version; the one it was is kept before it
    assert [row[:2] for row in version_rows(signed_in.get("/team/secrets/TOKEN/versions"))] == [
        ("0", "current"), ("1", "previous")]


def test_a_deleted_project_name_is_undeleted_in_its_own_scope(signed_in: Ui, store: Store, identity) -> None:
    store.set(PROJECT, "HF_TOKEN", VALUE, identity)
    store.set(TEAM, "HF_TOKEN", VALUE + "-team", identity)
    signed_in.delete("/projects/prj42", "HF_TOKEN")
    assert deleted_listed(signed_in.get("/projects/prj42")) == ["HF_TOKEN"]
    assert deleted_listed(signed_in.get("/team")) == []
    assert signed_in.undelete("/projects/prj42", "HF_TOKEN").headers["Location"] == "/projects/prj42"
    assert store.get(PROJECT, "HF_TOKEN", identity) == VALUE


def test_a_replayed_undelete_is_refused_and_writes_nothing(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    store.delete(TEAM, "TOKEN", identity)
    fields = signed_in.form("/team/secrets/TOKEN/versions", "/team/secrets/TOKEN/undelete")
    assert signed_in.post("/team/secrets/TOKEN/undelete", fields).status_code == 303
    store.delete(TEAM, "TOKEN", identity)  # deleted again, so a replay would have work to do
    before = Path(store.path(TEAM)).read_bytes()
    replayed = signed_in.post("/team/secrets/TOKEN/undelete", fields)
    assert replayed.status_code == 403 and "already sent" in replayed.text
    assert signed_in.post("/team/secrets/TOKEN/undelete", {}).status_code == 403
    assert Path(store.path(TEAM)).read_bytes() == before
    assert store.list(TEAM) == []


def test_an_undelete_token_only_works_for_its_own_name(signed_in: Ui, store: Store, identity) -> None:
    store.set_many(TEAM, {"A": VALUE, "B": VALUE}, identity)
    store.delete(TEAM, "A", identity)
    store.delete(TEAM, "B", identity)
    fields = signed_in.form("/team/secrets/A/versions", "/team/secrets/A/undelete")
    assert signed_in.post("/team/secrets/B/undelete", fields).status_code == 403
    assert signed_in.post("/projects/prj42/secrets/A/undelete", fields).status_code == 403
    assert store.list(TEAM) == []


def test_undeleting_a_name_that_came_back_meanwhile_says_so(signed_in: Ui, store: Store, identity,
                                                            cli_run) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    store.delete(TEAM, "TOKEN", identity)
    fields = signed_in.form("/team/secrets/TOKEN/versions", "/team/secrets/TOKEN/undelete")
    assert cli_run("undelete", "team", "--name=TOKEN").returncode == 0  # the terminal was quicker
    before = Path(store.path(TEAM)).read_bytes()
    response = signed_in.post("/team/secrets/TOKEN/undelete", fields)
    assert response.headers["Location"] == "/team/secrets/TOKEN/versions"
    assert messages(signed_in.get("/team/secrets/TOKEN/versions")) == ["team secret 'TOKEN' is not deleted: it has a current value"]
    assert Path(store.path(TEAM)).read_bytes() == before


def test_a_purged_name_is_gone_from_the_page(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "LEAKED", VALUE, identity)
    store.delete(TEAM, "LEAKED", identity, purge=True)
    store.set(TEAM, "OTHER", VALUE, identity)
    page = signed_in.get("/team")
    assert deleted_listed(page) == [] and names_listed(page) == ["OTHER"]
    response = signed_in.get("/team/secrets/LEAKED/versions")
    assert response.status_code == 404
    assert "no team secret &#39;LEAKED&#39;" in response.text


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/team/secrets/NEVER/versions", 404, "no team secret &#39;NEVER&#39;"),
    ("/team/secrets/bad-name/versions", 404, "invalid secret name"),
    ("/projects/bad..id/secrets/A/versions", 404, "invalid project id"),
    ("/team/secrets/A/undelete", 405, "method not allowed"),
])
def test_versions_of_what_is_not_there(signed_in: Ui, store: Store, identity, path: str, status: int,
                                       message: str) -> None:
    store.set(TEAM, "A", VALUE, identity)
    response = signed_in.get(path)
    assert response.status_code == status
    assert message in response.text


def test_rollback_asks_for_confirmation_then_rolls_back(signed_in: Ui, store: Store, identity) -> None:
    for number in range(3):
        store.set(TEAM, "TOKEN", f"{VALUE}-{number}", identity)
    confirm = signed_in.get("/team/secrets/TOKEN/versions/2/rollback")
    assert confirm.status_code == 200
    assert "Make version 2 of the team secret <code>TOKEN</code> its value again?" in confirm.text
    assert '<a class="button" href="/team/secrets/TOKEN/versions">Cancel</a>' in confirm.text
    assert store.get(TEAM, "TOKEN", identity) == f"{VALUE}-2"  # a GET changes nothing
    response = signed_in.rollback("/team", "TOKEN", 2)
    assert (response.status_code, response.headers["Location"], response.data) == (
        303, "/team/secrets/TOKEN/versions", b"")
    assert store.get(TEAM, "TOKEN", identity) == f"{VALUE}-0"
    assert store.get_version(TEAM, "TOKEN", 1, identity) == f"{VALUE}-2"  # the replaced value is kept
    page = signed_in.get("/team/secrets/TOKEN/versions")
    assert messages(page) == ["Rolled team secret 'TOKEN' back to version 2, as a new version"]
    assert [row[:2] for row in version_rows(page)] == [("0", "current"), ("1", "previous"), ("2", "previous"),
                                                       ("3", "previous")]


def test_rollback_of_a_deleted_name_brings_that_version_back(signed_in: Ui, store: Store, identity) -> None:
    store.set(CLUSTER, "TOKEN", VALUE + "-old", identity)
    store.set(CLUSTER, "TOKEN", VALUE + "-new", identity)
    store.delete(CLUSTER, "TOKEN", identity)
    confirm = signed_in.get("/clusters/gpu-a/secrets/TOKEN/versions/2/rollback")
    assert "the name, now deleted, comes back with it" in confirm.text
    signed_in.rollback("/clusters/gpu-a", "TOKEN", 2)
    assert store.get(CLUSTER, "TOKEN", identity) == VALUE + "-old"
    assert names_listed(signed_in.get("/clusters/gpu-a")) == ["TOKEN"]


def test_a_replayed_rollback_is_refused_and_writes_nothing(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    fields = signed_in.form(action, action)
    assert signed_in.post(action, fields).status_code == 303
    before = Path(store.path(TEAM)).read_bytes()
    replayed = signed_in.post(action, fields)
    assert replayed.status_code == 403 and "already sent" in replayed.text
    assert Path(store.path(TEAM)).read_bytes() == before
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-a"


def test_a_rollback_token_only_works_for_its_own_version(signed_in: Ui, store: Store, identity) -> None:
    for number in range(3):
        store.set(TEAM, "TOKEN", f"{VALUE}-{number}", identity)
    before = Path(store.path(TEAM)).read_bytes()
    fields = signed_in.form("/team/secrets/TOKEN/versions/2/rollback", "/team/secrets/TOKEN/versions/2/rollback")
    assert signed_in.post("/team/secrets/TOKEN/versions/1/rollback", fields).status_code == 403
    delete_token = signed_in.form("/team/secrets/TOKEN/delete", "/team/secrets/TOKEN/delete")
    assert signed_in.post("/team/secrets/TOKEN/versions/1/rollback", delete_token).status_code == 403
    assert Path(store.path(TEAM)).read_bytes() == before


def test_a_rollback_from_another_origin_is_refused(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    response = signed_in.post(action, signed_in.form(action, action), headers={"Sec-Fetch-Site": "same-site"})
    assert response.status_code == 403 and "another site" in response.text
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-b"


@pytest.mark.parametrize(("number", "message"), [
    ("0", "version 0 of team secret &#39;TOKEN&#39; is its current value"),
    ("3", "team secret &#39;TOKEN&#39; has no version 3 (versions 0 to 1 are kept)"),
    ("abc", "&#39;abc&#39; is not a version number"),
    ("-1", "&#39;-1&#39; is not a version number"),
    ("9" * 5000, "is not a version number"),
    ("%D9%A1", "is not a version number"),  # an Arabic-Indic digit one: not a version number here
])
def test_rollback_to_a_version_that_is_not_kept_is_not_found(signed_in: Ui, page: Page, store: Store, identity,
                                                             number: str, message: str) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    before = Path(store.path(TEAM)).read_bytes()
    response = signed_in.get(f"/team/secrets/TOKEN/versions/{number}/rollback")
    assert response.status_code == 404
    assert message in response.text[:200000]
    assert "Traceback" not in response.text
    # a form for it, were one made, writes nothing either
    action = f"/team/secrets/TOKEN/versions/{number}/rollback"
    token = page.gate.new_form_token(session_of(signed_in), unquote(action))
    signed_in.post(action, {"csrf_token": token})
    assert Path(store.path(TEAM)).read_bytes() == before


def test_a_posted_rollback_to_a_version_that_is_gone_says_so(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    fields = signed_in.form(action, action)
    store.delete(TEAM, "TOKEN", identity, purge=True)
    store.set(TEAM, "TOKEN", VALUE + "-c", identity)  # a new name with no history
    before = Path(store.path(TEAM)).read_bytes()
    assert signed_in.post(action, fields).headers["Location"] == "/team/secrets/TOKEN/versions"
    shown = messages(signed_in.get("/team/secrets/TOKEN/versions"))
    assert shown == ["team secret 'TOKEN' has no version 1 (versions 0 to 0 are kept)"]
    assert Path(store.path(TEAM)).read_bytes() == before


def test_rollback_and_undelete_drop_execs_snapshot(signed_in: Ui, store: Store, identity, cli_run) -> None:
    from secretstore import paths
    from secretstore.snapshot import Snapshots

    store.set(PROJECT, "TOKEN", VALUE + "-a", identity)
    store.set(PROJECT, "TOKEN", VALUE + "-b", identity)
    snapshot = Snapshots(paths.snapshot_dir() or "", identity, store.root).path(PROJECT)
    assert cli_run("exec", "--project", "prj42", "--", "true").returncode == 0
    assert os.path.exists(snapshot)
    signed_in.rollback("/projects/prj42", "TOKEN", 1)
    assert not os.path.exists(snapshot)
    signed_in.delete("/projects/prj42", "TOKEN")
    store.set(PROJECT, "OTHER", VALUE + "-other", identity)
    assert cli_run("exec", "--project", "prj42", "--", "true").returncode == 0
    assert os.path.exists(snapshot)
    signed_in.undelete("/projects/prj42", "TOKEN")
    assert not os.path.exists(snapshot)
    done = cli_run("exec", "--project", "prj42", "--", "sh", "-c", 'test "$TOKEN" = "$0"', VALUE + "-a")
    assert done.returncode == 0, done.stderr


def test_undelete_and_rollback_messages_match_the_cli(signed_in: Ui, store: Store, identity, cli_run) -> None:
    for scope_path, scope in (("/team", TEAM), ("/projects/prj42", PROJECT)):
        store.set(scope, "SAME", VALUE + "-1", identity)
        store.set(scope, "SAME", VALUE + "-2", identity)
        store.delete(scope, "SAME", identity)
        signed_in.undelete(scope_path, "SAME")
        shown = messages(signed_in.get(scope_path))
        store.delete(scope, "SAME", identity)
        flags = ["team"] if scope is TEAM else ["project", "--id=prj42"]
        done = cli_run("undelete", *flags, "--name=SAME")
        assert [done.stdout.decode().strip()] == shown
        signed_in.rollback(scope_path, "SAME", 2)
        shown = messages(signed_in.get(f"{scope_path}/secrets/SAME/versions"))
        done = cli_run("rollback", *flags, "--name=SAME", "--to=2")
        assert [done.stdout.decode().strip()] == shown
    # and a refusal in the CLI's words
    store.set(TEAM, "LIVE", VALUE, identity)
    fields = {"csrf_token": signed_in.page.gate.new_form_token(session_of(signed_in), "/team/secrets/LIVE/undelete")}
    signed_in.post("/team/secrets/LIVE/undelete", fields)
    shown = messages(signed_in.get("/team/secrets/LIVE/versions"))
    done = cli_run("undelete", "team", "--name=LIVE")
    assert done.stderr.decode().splitlines()[0] == f"secretstore: error: {shown[0]}"


# --- rotate needed -----------------------------------------------------------------------------


def test_names_a_removed_recipient_could_read_are_marked_until_set_again(signed_in: Ui, store: Store,
                                                                         identity) -> None:
    store.set_many(TEAM, {"A": VALUE + "-a", "B": VALUE + "-b"}, identity)
    store.set(PROJECT, "C", VALUE + "-c", identity)
    bob = identities.Identity.generate()
    store.add_recipient(bob.public, identity, TEAM)
    assert rotate_marked(signed_in.get("/team")) == []
    store.remove_recipient(bob.public, identity, TEAM)
    page = signed_in.get("/team")
    assert rotate_marked(page) == ["A", "B"]
    assert names_listed(page) == ["A", "B"]
    assert rotate_marked(signed_in.get("/projects/prj42")) == []
    index = signed_in.get("/").text
    assert re.search(r'<a href="/team">team</a>.*?<span class="badge warn">2 rotate needed</span> 2</td>', index, re.S)
    signed_in.create("/team", "A", VALUE + "-a2")  # a new value clears the mark
    assert rotate_marked(signed_in.get("/team")) == ["B"]
    assert "1 rotate needed" in signed_in.get("/").text


# --- the audit log ------------------------------------------------------------------------------


def test_the_audit_page_shows_recent_entries_newest_first(signed_in: Ui, store: Store, identity,
                                                          cli_run) -> None:
    signed_in.create("/team", "TOKEN", VALUE + "-1")
    signed_in.create("/projects/prj42", "HF_TOKEN", VALUE + "-2")
    signed_in.delete("/team", "TOKEN")
    signed_in.undelete("/team", "TOKEN")
    assert cli_run("get", "team", "--name=TOKEN").returncode == 0
    page = signed_in.get("/audit")
    assert page.status_code == 200
    short = identity.public_text[:16] + "..."
    rows = audit_rows(page)
    assert [row[1:] for row in rows] == [
        ["get", "team", "TOKEN", f"you {short}"],  # the terminal's read, by the same key
        ["undelete", "team", "TOKEN", f"you {short}"],
        ["delete", "team", "TOKEN", f"you {short}"],
        ["ui set", "project prj42", "HF_TOKEN", f"you {short}"],
        ["ui set", "team", "TOKEN", f"you {short}"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row[0]) for row in rows)
    assert "5 entries, newest first." in page.text
    assert "chain is broken" not in page.text


def test_a_scopes_audit_tab_shows_its_own_entries(signed_in: Ui, store: Store, identity) -> None:
    signed_in.create("/team", "TOKEN", VALUE)
    signed_in.create("/projects/prj42", "HF_TOKEN", VALUE)
    signed_in.create("/projects/prj42", "OTHER", VALUE)
    tab = signed_in.get("/projects/prj42/audit")
    assert '<a href="/projects/prj42/audit" class="active" aria-current="page">Audit</a>' in tab.text
    assert [row[1:3] for row in audit_rows(tab)] == [["ui set", "OTHER"], ["ui set", "HF_TOKEN"]]
    only = signed_in.get("/projects/prj42/audit?name=HF_TOKEN")
    assert [row[1:3] for row in audit_rows(only)] == [["ui set", "HF_TOKEN"]]
    assert '<a href="/projects/prj42/audit">Show all</a>' in only.text
    versions = signed_in.get("/projects/prj42/secrets/HF_TOKEN/versions")
    assert 'href="/projects/prj42/audit?name=HF_TOKEN"' in versions.text
    assert "No data found" in signed_in.get("/clusters/gpu-a/audit").text
    assert '<a href="/team/audit">Audit</a>' in signed_in.get("/team").text


def test_the_audit_page_warns_of_a_broken_chain(signed_in: Ui, store: Store, identity) -> None:
    from secretstore import audit

    for number in range(3):
        signed_in.create("/team", f"N{number}", VALUE)
    assert "chain is broken" not in signed_in.get("/audit").text
    path = Path(audit.log_path(store.root))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2])  # a line removed
    page = signed_in.get("/audit")
    assert audit.verify(store.root)
    shown = messages(page)
    assert shown[0] == "The audit log's chain is broken: a line was removed or edited (1 problem)."
    assert "does not follow the line before it" in page.text
    assert "secretstore audit --verify lists every break" in hints(page)[0]
    assert [(row[1], row[3]) for row in audit_rows(page)] == [("ui set", "N2"), ("ui set", "N0")]
    # also on a scope's tab
    assert "chain is broken" in signed_in.get("/team/audit").text


def test_the_audit_page_skips_a_damaged_line_and_says_so(signed_in: Ui, store: Store) -> None:
    from secretstore import audit

    signed_in.create("/team", "TOKEN", VALUE)
    path = Path(audit.log_path(store.root))
    path.write_bytes(path.read_bytes() + b"not json at all\n")
    page = signed_in.get("/audit")
    assert "1 damaged line of the log was skipped." in messages(page)
    assert [(row[1], row[3]) for row in audit_rows(page)] == [("ui set", "TOKEN")]


def test_the_audit_page_escapes_what_the_log_holds(signed_in: Ui, store: Store) -> None:
    """Labels come from a shared roster; the page prints them as text."""
    from secretstore import audit

    audit.record(store.root, "set", scope="team", names=["A"], key="ssk2-not-really",
                 label='<img src=x onerror="alert(1)">', detail="</td><script>x</script>")
    page = signed_in.get("/audit")
    assert "<img src=x" not in page.text and "<script>x" not in page.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text


def test_an_audit_line_naming_many_secrets_is_shortened(signed_in: Ui, store: Store) -> None:
    from secretstore import audit

    audit.record(store.root, "exec", scope="team", names=[f"N{n:03}" for n in range(40)], key="")
    row = audit_rows(signed_in.get("/audit"))[0]
    assert row[3].endswith(f"N{actions.AUDIT_NAMES - 1:03} and {40 - actions.AUDIT_NAMES} more")
    assert row[4] == "unknown"


def test_an_audit_line_too_long_to_list_its_names_shows_their_count(signed_in: Ui, store: Store,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from secretstore import audit

    monkeypatch.setattr(audit, "MAX_RECORD_BYTES", 4096)  # lines of at most 4 KiB: 400 names do not fit
    audit.record(store.root, "exec", scope="team", names=[f"NAME_{n:05}" for n in range(400)], key="")
    audit.record(store.root, "get", scope="team", names=["OTHER"], key="")
    row = audit_rows(signed_in.get("/audit"))[1]
    assert row[3] == "400 names, too many to list"
    # filtered by a name, the page keeps the record that may hold it, and not the one that does not
    assert [r[1] for r in audit_rows(signed_in.get("/audit?name=NAME_00007"))] == ["exec"]
    assert [r[1] for r in audit_rows(signed_in.get("/audit?name=OTHER"))] == ["get", "exec"]


def test_the_audit_page_shows_the_newest_entries_only(signed_in: Ui, store: Store) -> None:
    from secretstore import audit

    for number in range(actions.AUDIT_ROWS + 5):
        audit.record(store.root, "get", scope="team", names=[f"N{number}"], key="")
    page = signed_in.get("/audit")
    rows = audit_rows(page)
    assert len(rows) == actions.AUDIT_ROWS
    assert rows[0][3] == f"N{actions.AUDIT_ROWS + 4}" and rows[-1][3] == "N5"
    assert f"The newest {actions.AUDIT_ROWS} of {actions.AUDIT_ROWS + 5} entries" in page.text


def test_the_audit_page_says_when_the_log_is_off(signed_in: Ui, monkeypatch) -> None:
    monkeypatch.setenv("SECRETSTORE_AUDIT", "0")
    signed_in.create("/team", "TOKEN", VALUE)
    page = signed_in.get("/audit")
    assert "The audit log is turned off (SECRETSTORE_AUDIT): nothing new is recorded." in messages(page)
    assert "No data found" in page.text


def test_an_invalid_name_filter_is_a_message(signed_in: Ui) -> None:
    page = signed_in.get("/audit?name=bad-name")
    assert page.status_code == 200
    assert messages(page) == ["invalid secret name 'bad-name': use a letter, then letters, digits or '_'"]


# --- whom you trust: refusals on the page ---------------------------------------------------------


def _write_as_someone_else(store_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           scope: Scope) -> identities.Identity:
    """A teammate, with their own trust state, writes ``scope``: a file this user has not accepted."""
    mallory = identities.Identity.generate()
    own_state = os.environ["SECRETSTORE_STATE_DIR"]
    monkeypatch.setenv("SECRETSTORE_STATE_DIR", str(tmp_path / "mallory-state"))
    Store(store_root).set(scope, "THEIRS", VALUE + "-theirs", mallory)
    monkeypatch.setenv("SECRETSTORE_STATE_DIR", own_state)
    return mallory


def test_a_file_signed_by_an_untrusted_writer_is_refused(signed_in: Ui, store: Store, identity, tmp_path,
                                                         monkeypatch, cli_run) -> None:
    mallory = _write_as_someone_else(store.root, tmp_path, monkeypatch, PROJECT)
    before = Path(store.path(PROJECT)).read_bytes()
    expected = f"projects/prj42.toml is signed by {mallory.public_text}, whom you do not trust: refusing to use it"
    trust_hint = f"if this is a teammate's key (check it with them), run: secretstore trust {mallory.public_text}"
    page = signed_in.get("/projects/prj42")
    assert (page.status_code, messages(page), hints(page)) == (200, [expected], [trust_hint])
    assert names_listed(page) == []
    # a write is refused with the same words, and writes nothing
    signed_in.create("/projects/prj42", "MINE", VALUE + "-mine")
    assert messages(signed_in.get("/projects/prj42"))[0] == expected
    assert Path(store.path(PROJECT)).read_bytes() == before
    # so are its versions, its rollback and its undelete
    versions = signed_in.get("/projects/prj42/secrets/THEIRS/versions")
    assert messages(versions) == [expected] and version_rows(versions) == []
    confirm = signed_in.get("/projects/prj42/secrets/THEIRS/versions/1/rollback")
    assert confirm.status_code == 403 and expected in unescape(confirm.text)
    token = signed_in.page.gate.new_form_token(session_of(signed_in), "/projects/prj42/secrets/THEIRS/undelete")
    signed_in.post("/projects/prj42/secrets/THEIRS/undelete", {"csrf_token": token})
    assert messages(signed_in.get("/projects/prj42/secrets/THEIRS/versions"))[0] == expected
    assert Path(store.path(PROJECT)).read_bytes() == before
    assert f"unreadable: {expected}" in unescape(signed_in.get("/").text)
    # trusting the key in the terminal is seen by the running page at once
    assert cli_run("trust", mallory.public_text).returncode == 0
    assert names_listed(signed_in.get("/projects/prj42")) == ["THEIRS"]


def test_a_rolled_back_file_is_refused(signed_in: Ui, store: Store, identity, cli_run) -> None:
    signed_in.create("/team", "TOKEN", VALUE + "-1")
    path = Path(store.path(TEAM))
    old = path.read_bytes()
    signed_in.create("/team", "TOKEN", VALUE + "-2")
    signed_in.get("/team")  # the page has read version 2
    path.write_bytes(old)  # an old copy put back
    expected = ("team.toml is version 1, older than version 2 you already read: it was rolled back "
                "(an old copy put back, or a revert); refusing to use it")
    revert_hint = "if it was reverted on purpose, accept it with: secretstore accept-revert team"
    page = signed_in.get("/team")
    assert (messages(page), hints(page), names_listed(page)) == ([expected], [revert_hint], [])
    signed_in.create("/team", "MORE", VALUE + "-3")
    assert messages(signed_in.get("/team")) == [expected, expected]  # the write's and the listing's
    token = signed_in.page.gate.new_form_token(session_of(signed_in), "/team/secrets/TOKEN/delete")
    signed_in.post("/team/secrets/TOKEN/delete", {"csrf_token": token})
    versions = signed_in.get("/team/secrets/TOKEN/versions")
    assert messages(versions) == [expected, expected]
    token = signed_in.page.gate.new_form_token(session_of(signed_in), "/team/secrets/TOKEN/versions/1/rollback")
    signed_in.post("/team/secrets/TOKEN/versions/1/rollback", {"csrf_token": token})
    assert messages(signed_in.get("/team")) == [expected, expected]
    assert path.read_bytes() == old
    # accepting the revert in the terminal is seen by the running page
    assert cli_run("accept-revert", "team").returncode == 0
    assert names_listed(signed_in.get("/team")) == ["TOKEN"]
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-1"


def test_an_unmerged_file_is_refused(signed_in: Ui, store: Store, identity) -> None:
    from secretstore.scopefile import UNMERGED_MARKER

    store.set_many(TEAM, {"TOKEN": VALUE, "OTHER": VALUE + "-other"}, identity)
    store.delete(TEAM, "OTHER", identity)
    path = Path(store.path(TEAM))
    unmerged = UNMERGED_MARKER + b"TOKEN\n" + path.read_bytes()  # what the merge driver leaves
    path.write_bytes(unmerged)
    expected = "team.toml is unmerged: both sides of a git merge changed TOKEN"
    resolve_hint = ("for each name run: secretstore git resolve ENTITY [--id ID] --name NAME --ours (or --theirs); "
                    "then git add FILE")
    page = signed_in.get("/team")
    assert (messages(page), hints(page), names_listed(page)) == ([expected], [resolve_hint], [])
    signed_in.create("/team", "MORE", VALUE + "-more")
    assert messages(signed_in.get("/team"))[0] == expected
    assert messages(signed_in.get("/team/secrets/OTHER/versions")) == [expected]
    signed_in.post("/team/secrets/OTHER/undelete",
                   {"csrf_token": signed_in.page.gate.new_form_token(session_of(signed_in),
                                                                    "/team/secrets/OTHER/undelete")})
    assert messages(signed_in.get("/team/secrets/OTHER/versions"))[0] == expected
    assert path.read_bytes() == unmerged
    assert f"unreadable: {expected}" in unescape(signed_in.get("/").text)


# --- scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "message"), [
    ("/projects/bad..id", "invalid project id &#39;bad..id&#39;"),
    ("/clusters/-gpu", "invalid cluster id &#39;-gpu&#39;"),
    ("/projects/%2E%2E", "invalid project id &#39;..&#39;"),
    ("/projects/" + "a" * 129, "at most 128 characters"),
    ("/projects", "project secrets need --id"),
    ("/projects/", "project secrets need --id"),
    ("/clusters/", "cluster secrets need --id"),
])
def test_a_missing_or_invalid_scope_id_is_not_found(signed_in: Ui, store: Store, path: str,
                                                    message: str) -> None:
    response = signed_in.get(path)
    assert response.status_code == 404
    assert message in response.text
    assert store.scopes() == []


def test_a_post_to_an_invalid_scope_writes_nothing(signed_in: Ui, page: Page, store: Store) -> None:
    token = page.gate.new_form_token(session_of(signed_in), "/projects/bad..id/secrets")
    response = signed_in.post("/projects/bad..id/secrets", {"csrf_token": token, "name": "A", "value": VALUE})
    assert response.status_code == 404
    assert store.scopes() == []


def test_the_index_lists_every_scope_with_its_count(signed_in: Ui, store: Store, identity) -> None:
    store.set_many(TEAM, {"A": VALUE, "B": VALUE}, identity)
    store.set(PROJECT, "A", VALUE, identity)
    store.set_many(CLUSTER, {"A": VALUE, "B": VALUE, "C": VALUE}, identity)
    text = signed_in.get("/").text
    rows = re.findall(r'<tr>\s*<td><a href="([^"]+)">(\w+)</a></td>.*?<td class="count">(\d+)</td>', text, re.S)
    assert rows == [("/team", "team", "2"), ("/projects/prj42", "project", "1"),
                    ("/clusters/gpu-a", "cluster", "3")]


def test_the_index_of_an_empty_store_shows_the_team(signed_in: Ui) -> None:
    text = signed_in.get("/").text
    assert re.search(r'<a href="/team">team</a>.*?<td class="count">0</td>', text, re.S)


def test_opening_a_scope_by_id(signed_in: Ui, store: Store) -> None:
    response = signed_in.get("/open?entity=cluster&id=gpu-b")
    assert (response.status_code, response.headers["Location"]) == (303, "/clusters/gpu-b")
    page = signed_in.get("/clusters/gpu-b")
    assert page.status_code == 200 and "No data found" in page.text
    assert store.scopes() == []  # opening writes nothing


@pytest.mark.parametrize(("query", "message"), [
    ("entity=project&id=", "project secrets need --id"),
    ("entity=project&id=a/b", "invalid project id 'a/b'"),
    ("entity=team&id=x", "team secrets take no --id"),
    ("entity=nope&id=x", "unknown entity: ENTITY is team, project or cluster"),
])
def test_opening_a_bad_scope_says_why(signed_in: Ui, query: str, message: str) -> None:
    response = signed_in.get(f"/open?{query}")
    assert response.headers["Location"] == "/"
    assert any(message in text for text in messages(signed_in.get("/")))


# --- precedence --------------------------------------------------------------------------


def test_precedence_shows_where_each_name_comes_from(signed_in: Ui, store: Store, identity) -> None:
    store.set_many(TEAM, {"SHARED": VALUE + "-t", "TEAM_ONLY": VALUE + "-t2"}, identity)
    store.set(CLUSTER, "SHARED", VALUE + "-c", identity)
    store.set(PROJECT, "SHARED", VALUE + "-p", identity)
    text = signed_in.get("/precedence?project=prj42&cluster=gpu-a").text
    rows = re.findall(r'<tr><td class="name">(\w+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', text)
    assert rows == [("SHARED", "project prj42", "team, cluster gpu-a"), ("TEAM_ONLY", "team", "-")]
    # the same answer as exec --dry-run computes
    context = contexts.resolve_context("prj42", "gpu-a", store=store.root, check_store=False)
    layers, _ = reading.load_layers(store, context, lambda: identity)
    assert [(n, str(m.scope)) for n, m in precedence.merge_scopes(layers).items()] == [(r[0], r[1]) for r in rows]
    only_team = signed_in.get("/precedence").text
    assert re.findall(r'<td class="name">(\w+)</td><td>([^<]*)</td>', only_team) == [
        ("SHARED", "team"), ("TEAM_ONLY", "team")]
    # the view decrypted the values to tell readable scopes from others: the audit log says so, as for exec
    from secretstore import audit

    logged = [(e.fields["command"], e.fields["scope"], e.fields["names"]) for e in audit.read(store.root)
              if e.fields is not None and e.fields.get("command") == "ui precedence"]
    assert logged == [("ui precedence", "team", ["SHARED", "TEAM_ONLY"]),
                      ("ui precedence", "cluster gpu-a", ["SHARED"]),
                      ("ui precedence", "project prj42", ["SHARED"]),
                      ("ui precedence", "team", ["SHARED", "TEAM_ONLY"])]


def test_precedence_falls_back_to_the_environment_as_exec_does(signed_in: Ui, store: Store, identity,
                                                               monkeypatch) -> None:
    store.set(PROJECT, "SHARED", VALUE, identity)
    monkeypatch.setenv("SECRETSTORE_PROJECT", "prj42")
    text = signed_in.get("/precedence").text
    assert "(from $SECRETSTORE_PROJECT)" in text
    assert re.findall(r'<td class="name">(\w+)</td><td>([^<]*)</td>', text) == [("SHARED", "project prj42")]


def test_precedence_of_an_invalid_id_says_why(signed_in: Ui) -> None:
    text = signed_in.get("/precedence?project=bad..id").text
    assert "invalid project id &#39;bad..id&#39;" in text


def test_precedence_warns_about_a_scope_it_cannot_open(signed_in: Ui, store: Store, identity,
                                                       tmp_path) -> None:
    other = identities.Identity.generate()
    store.set(PROJECT, "THEIRS", VALUE, other)
    store.set(TEAM, "MINE", VALUE, identity)
    text = signed_in.get("/precedence?project=prj42").text
    assert "skipped project prj42: not a recipient" in text
    assert re.findall(r'<td class="name">(\w+)</td>', text) == ["MINE"]


# --- library errors become messages -----------------------------------------------------------


def test_a_tampered_file_is_a_message_not_a_crash(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    path = Path(store.path(TEAM))
    text = path.read_text()
    assert "[secrets.TOKEN]" in text
    path.write_text(text.replace("[secrets.TOKEN]", "[secrets.TOKEM]"))  # a rename, after it was signed
    before = path.read_bytes()
    signed_in.create("/team", "MORE", VALUE + "-more")
    page = signed_in.get("/team")
    shown = messages(page)
    # the write is refused, and so is the listing (a signature needs no private key to check)
    assert shown and all(m.startswith("team.toml: the signature does not match") for m in shown), shown
    assert path.read_bytes() == before
    assert "Traceback" not in page.text and page.status_code == 200


def test_not_a_recipient_is_a_message_with_the_hint(signed_in: Ui, store: Store, identity) -> None:
    other = identities.Identity.generate()
    store.set(TEAM, "THEIRS", VALUE, other)
    before = Path(store.path(TEAM)).read_bytes()
    signed_in.create("/team", "MINE", VALUE)
    page = signed_in.get("/team")
    assert messages(page) == ["not a recipient of team"], messages(page)
    hints = [unescape(hint) for hint in re.findall(r'<p class="hint">(.*?)</p>', page.text)]
    assert f"ask an owner to run: secretstore recipients add {identity.public_text} --team" in hints
    assert Path(store.path(TEAM)).read_bytes() == before
    assert names_listed(signed_in.get("/team")) == ["THEIRS"]  # listing needs no key


def test_a_file_others_can_write_is_refused_on_the_page(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    os.chmod(store.path(TEAM), 0o666)  # noqa: S103 - the loose mode under test
    page = signed_in.get("/team")
    assert page.status_code == 200
    assert any("chmod go-w" in hint for hint in re.findall(r'<p class="hint">(.*?)</p>', page.text))
    assert names_listed(page) == []
    signed_in.create("/team", "MORE", VALUE)
    assert any("team.toml" in text for text in messages(signed_in.get("/team")))
    index = signed_in.get("/").text
    assert "unreadable:" in index
    os.chmod(store.path(TEAM), 0o600)
    assert [name for name, _ in store.list(TEAM)] == ["TOKEN"]


def test_a_bug_is_a_plain_500_page_without_internals(signed_in: Ui, monkeypatch, capfd) -> None:
    def broken(*args: object) -> actions.Listing:
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(actions, "scope_listing", broken)
    response = signed_in.get("/team")
    assert response.status_code == 500
    assert "internal error (RuntimeError)" in response.text
    assert "internal detail" not in response.text and "Traceback" not in response.text
    err = capfd.readouterr().err
    assert err == "secretstore: error: internal error in the page: RuntimeError (set SECRETSTORE_DEBUG=1 for a traceback)\n"


# --- identities ----------------------------------------------------------------------------


def test_the_first_write_creates_an_identity_as_the_cli_does(store: Store, isolated_env, capfd) -> None:
    keys = Keys(store)
    keys.unlock_at_start()
    page = Page(store, keys, PORT)
    ui = Ui(page, Recorder(page))
    ui.login()
    assert not os.path.exists(isolated_env["identity"])
    ui.create("/team", "FIRST", VALUE)
    assert os.path.exists(isolated_env["identity"])
    shown = messages(ui.get("/team"))
    assert shown[0] == "Set team secret 'FIRST'"
    assert shown[1].startswith(f"created a new identity at {isolated_env['identity']}")
    assert "created a new identity" in capfd.readouterr().err
    assert ui.recorder.leaks(VALUE) == []


def test_a_passphrase_is_asked_once_at_the_start(store: Store, isolated_env, monkeypatch) -> None:
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    create_identity(isolated_env["identity"], "correct horse")
    asked: list[str] = []
    monkeypatch.setattr(identities, "terminal_prompt", lambda message: asked.append(message) or "correct horse")
    keys = Keys(store)
    keys.unlock_at_start()
    assert len(asked) == 1
    page = Page(store, keys, PORT)
    ui = Ui(page, Recorder(page))
    ui.login()
    for number in range(3):
        ui.create("/team", f"N{number}", VALUE)
    ui.delete("/team", "N0")
    assert len(asked) == 1
    assert [name for name, _ in store.list(TEAM)] == ["N1", "N2"]


def test_a_request_never_asks_for_a_passphrase(store: Store, isolated_env, monkeypatch) -> None:
    """An identity protected after the start is refused on the page, not prompted for."""
    keys = Keys(store)
    keys.unlock_at_start()  # no identity yet
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    create_identity(isolated_env["identity"], "correct horse")

    def prompt(message: str) -> str:
        raise AssertionError("a request asked the terminal for a passphrase")

    monkeypatch.setattr(identities, "terminal_prompt", prompt)
    page = Page(store, keys, PORT)
    ui = Ui(page, Recorder(page))
    ui.login()
    ui.create("/team", "FIRST", VALUE)
    shown = messages(ui.get("/team"))
    assert len(shown) == 1 and "is protected by a passphrase and there is no terminal" in shown[0], shown
    assert store.scopes() == []


# --- the page and the CLI at once ----------------------------------------------------------


def test_the_page_and_the_cli_write_at_the_same_time(signed_in: Ui, page: Page, store: Store, identity) -> None:
    session = session_of(signed_in)
    cookie = f"secretstore_{PORT}={session.session_id}"
    tokens = [page.gate.new_form_token(session, "/team/secrets") for _ in range(6)]
    statuses: list[str] = []

    def post(number: int) -> None:
        environ = EnvironBuilder("/team/secrets", base_url=BASE, method="POST", headers={"Cookie": cookie},
                                 data={"csrf_token": tokens[number], "name": f"PAGE_{number}",
                                       "value": f"{VALUE}-page-{number}"}).get_environ()
        statuses.append(run_wsgi_app(signed_in.recorder, environ)[1])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    clis = [subprocess.Popen([console_script(), "set", "team", f"--name=CLI_{n}", "--value", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for n in range(4)]
    for thread in threads:
        thread.start()
    for number, process in enumerate(clis):
        _out, err = process.communicate(f"{VALUE}-cli-{number}".encode(), timeout=60)
        assert process.returncode == 0, err
    for thread in threads:
        thread.join(60)
    assert statuses == ["303 SEE OTHER"] * 6
    values = store.read(TEAM, identity)
    assert values == {**{f"PAGE_{n}": f"{VALUE}-page-{n}" for n in range(6)},
                      **{f"CLI_{n}": f"{VALUE}-cli-{n}" for n in range(4)}}


# --- the ui package stays out of the CLI's way ---------------------------------------------


def test_exec_imports_nothing_of_the_page(identity, store) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "secretstore", "exec", "--", "true"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "secretstore.commands.exec" in imported  # the check sees exec's imports
    assert [m for m in imported if m.startswith(("secretstore.ui", "secretstore.cli.ui", "secretstore.cli.framework",
                                                 "werkzeug", "jinja2", "markupsafe", "typer"))] == []


def test_the_cli_loads_the_ui_command_without_the_web_stack() -> None:
    code = ("import sys, secretstore.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('werkzeug', 'jinja2', 'markupsafe')"
            " or m.startswith('secretstore.ui.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_ui_package_never_imports_typer() -> None:
    code = ("import sys, secretstore.ui.server, secretstore.ui.app\n"
            "print('typer' in sys.modules, 'secretstore.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "False False", done.stderr


def test_without_the_extra_ui_says_how_to_install_it() -> None:
    code = ("import sys\n"
            "sys.modules['werkzeug'] = None\n"
            "sys.argv = ['secretstore', 'ui', '--no-browser']\n"
            "from secretstore.main import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == ("secretstore: error: secretstore ui needs the ui extra (werkzeug is missing): "
                           "pip install 'secretstore[ui]'\n")


# --- the real server -----------------------------------------------------------------------


class Served:
    """``secretstore ui --no-browser`` as a subprocess, and its login URL."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen([console_script(), "ui", "--no-browser", *args],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().decode().strip()
        self.origin = self.url.split("/login", 1)[0]

    def stop(self, signal_number: int = 2) -> tuple[int, str, str]:
        self.process.send_signal(signal_number)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out.decode(), err.decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(url: str, cookie: str = "", data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})  # noqa: S310 - the test server's http URL
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.mark.parametrize("signal_number", [2, 15], ids=["ctrl-c", "sigterm"])
def test_the_real_server_signs_in_serves_and_stops_cleanly(identity, store: Store, signal_number: int) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    served = Served()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]{43}", served.url)
        assert fetch(served.origin + "/team")[0] == 401
        status, headers, _ = fetch(served.url)
        assert (status, headers["Location"]) == (303, "/")
        cookie = headers["Set-Cookie"].split(";")[0]
        status, _, body = fetch(served.origin + "/team", cookie)
        assert status == 200 and "TOKEN" in body and VALUE not in body
        assert fetch(served.url)[0] == 403  # once
    finally:
        code, out, err = served.stop(signal_number)
    assert code == 0
    assert out == ""  # stdout held the URL and nothing else
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "secretstore: stopped; the page's sessions ended"
    assert VALUE not in out + err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp and tcp6 write them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                address, _, hex_port = fields[1].rpartition(":")
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.append(address)
    return found


def test_the_real_server_listens_on_the_port_asked_for_and_only_on_loopback(identity) -> None:
    port = _free_port()
    served = Served("--port", str(port))
    try:
        assert served.url.startswith(f"http://127.0.0.1:{port}/login?token=")
        assert _listeners(port) == ["0100007F"]  # 127.0.0.1, and no IPv6 or wildcard socket
    finally:
        assert served.stop()[0] == 0
    assert _listeners(port) == []


def test_a_port_in_use_is_one_line(identity, cli_run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli_run("ui", "--no-browser", "--port", str(port))
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        f"secretstore: error: cannot listen on 127.0.0.1:{port}: Address already in use",
        "secretstore: hint: choose another --port, or leave --port out for a free one",
    ]


def test_a_port_out_of_range_is_a_usage_error(cli_run) -> None:
    done = cli_run("ui", "--no-browser", "--port", "70000")
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr and b"--port" in done.stderr


def test_a_protected_identity_without_a_terminal_fails_before_listening(isolated_env, cli_run,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    create_identity(isolated_env["identity"], "correct horse")
    done = cli_run("ui", "--no-browser")
    assert done.returncode == 1 and done.stdout == b""
    assert "is protected by a passphrase and there is no terminal" in done.stderr.decode()
    wrong = cli_run("ui", "--no-browser", env={"SECRETSTORE_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1 and wrong.stdout == b""
    assert wrong.stderr.decode().startswith("secretstore: error: wrong passphrase")


def test_a_protected_identity_is_unlocked_from_the_environment(isolated_env, store: Store, monkeypatch) -> None:
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    create_identity(isolated_env["identity"], "correct horse")
    served = Served(env={"SECRETSTORE_PASSPHRASE": "correct horse"})
    try:
        _, headers, _ = fetch(served.url)
        cookie = headers["Set-Cookie"].split(";")[0]
        _, _, body = fetch(served.origin + "/team", cookie)
        token = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert token is not None
        form = f"csrf_token={token.group(1)}&name=VIA_PAGE&value={VALUE}".encode()
        status, headers, _ = fetch(served.origin + "/team/secrets", cookie, data=form)
        assert (status, headers["Location"]) == (303, "/team")
    finally:
        code, _, err = served.stop()
    assert code == 0, err
    unlocked = identities.load_identity(isolated_env["identity"], lambda _message: "correct horse")
    assert store.get(TEAM, "VIA_PAGE", unlocked) == VALUE


def test_the_terminal_prompt_for_a_passphrase_comes_first(isolated_env, monkeypatch) -> None:
    """On a terminal, the passphrase is asked before the URL is printed."""
    import pty

    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    create_identity(isolated_env["identity"], "correct horse")
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execv(console_script(), [console_script(), "ui", "--no-browser"])
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + 30
    answered = False
    try:
        while time.monotonic() < deadline and b"/login?token=" not in output:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            output += chunk
            if not answered and output.rstrip().endswith(b":"):
                os.write(fd, b"correct horse\n")
                answered = True
    finally:
        os.kill(pid, 2)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert text.index("Passphrase for") < text.index("/login?token=")
    assert os.waitstatus_to_exitcode(status) == 0
    assert "Traceback" not in text


def test_opening_the_browser_is_skipped_without_a_display(monkeypatch, capfd) -> None:
    from secretstore.ui import server

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert server.open_in_browser("http://127.0.0.1:1/login?token=x") is False
    assert "open the link above in your browser" in capfd.readouterr().err


def test_opening_the_browser_uses_the_desktops_browser(monkeypatch) -> None:
    import webbrowser

    from secretstore.ui import server

    opened: list[str] = []

    class Fake:
        def open(self, url: str, new: int = 0) -> bool:
            opened.append(url)
            return True

    monkeypatch.setenv("BROWSER", "fake")
    monkeypatch.setattr(webbrowser, "get", Fake)
    assert server.open_in_browser("http://127.0.0.1:1/login?token=x") is True
    deadline = time.monotonic() + 10
    while not opened and time.monotonic() < deadline:
        time.sleep(0.01)
    assert opened == ["http://127.0.0.1:1/login?token=x"]


def test_errors_never_quote_a_value(store: Store, identity) -> None:
    """describe_error turns library errors into page text; the library's messages hold no value."""
    with pytest.raises(NotFoundError) as caught:
        actions.require_listed(store, TEAM, "MISSING")
    assert actions.describe_error(caught.value) == "no team secret 'MISSING' to delete"
    assert actions.describe_error(OSError(28, "No space left on device")) == (
        "the operating system refused: No space left on device")
    assert actions.describe_error(KeyError(VALUE)) == "internal error: KeyError"
