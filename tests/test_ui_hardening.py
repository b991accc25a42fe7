"""The web page against pages of other sites, changes made between a confirmation and its POST,
and malformed addresses and forms (tests/test_ui.py has the rest of the page's tests).

- A page served from another port on 127.0.0.1 is the *same site* for the browser, which sends
  it the SameSite=Strict cookie: its requests (GET or POST) are refused before the session is
  looked at, so it cannot make the page read values (an audit line each), roll the audit log
  over, spend the session's CSRF tokens or take its messages.
- A rollback or undelete restores the version the confirmation showed, or nothing (409).
- A query string or form that is not percent-encoded UTF-8, a broken form, a form of too many
  fields: 400 or 413, each saying why, and nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from secretstore import audit, fsio
from secretstore.store import TEAM, Store
from secretstore.ui.app import Page
from secretstore.ui.auth import Flash
from tests.fixtures_ui import BASE, PORT, VALUE, Ui
from tests.test_ui import messages, session_of


def audit_lines(store: Store) -> int:
    return sum(1 for _ in audit.read(store.root))


def raw_get(ui: Ui, path: str, query: bytes) -> tuple[str, bytes]:
    """GET with the query string's bytes as sent (PEP 3333 passes them as latin-1 text), signed in."""
    environ = EnvironBuilder(path, base_url=BASE).get_environ()
    environ["QUERY_STRING"] = query.decode("latin-1")
    cookie = ui.client.get_cookie(f"secretstore_{PORT}", domain="127.0.0.1")
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"{cookie.key}={cookie.value}"
    body, status, _headers = run_wsgi_app(ui.recorder, environ, buffered=True)
    return status, b"".join(body)


# --- requests from other sites (another port on 127.0.0.1 is the same site) ----------------


FOREIGN = [
    {"Sec-Fetch-Site": "same-site"},  # a page on another port of 127.0.0.1
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "something-new"},  # only the values known to be ours are let in
    {"Origin": "http://127.0.0.1:1"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-origin"},
]


@pytest.mark.parametrize("headers", FOREIGN)
def test_a_read_from_another_site_is_refused_and_writes_no_audit_line(signed_in: Ui, store: Store, identity,
                                                                      headers: dict[str, str]) -> None:
    store.set(TEAM, "TOKEN", VALUE, identity)
    before = audit_lines(store)
    for _ in range(3):
        response = signed_in.get("/precedence", headers={**headers, "Sec-Fetch-Mode": "no-cors"})
        assert response.status_code == 403
        assert response.mimetype == "text/plain"
        assert "another site (or of another port on this machine)" in response.text
    assert audit_lines(store) == before
    assert signed_in.get("/precedence").status_code == 200  # the page's own request: read, and audited
    assert audit_lines(store) == before + 1


@pytest.mark.parametrize("path", ["/", "/team", "/team/audit", "/audit", "/team/secrets/TOKEN/versions",
                                  "/team/secrets/TOKEN/delete", "/team/secrets/TOKEN/versions/1/rollback",
                                  "/open?entity=team", "/nope"])
def test_no_page_answers_another_site_nor_spends_tokens_or_messages(signed_in: Ui, page: Page, store: Store,
                                                                     identity, path: str) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    session = session_of(signed_in)
    page.gate.new_form_token(session, "/team/secrets")
    page.gate.flash(session, Flash("ok", "a message for the user's next page"))
    pending = list(session.flashes)
    tokens = dict(session.form_tokens)
    response = signed_in.get(path, headers={"Sec-Fetch-Site": "same-site"})
    assert response.status_code == 403 and "another site" in response.text
    assert dict(session.form_tokens) == tokens  # no token made (none pushed out of the 256 kept)
    assert session.flashes == pending  # the user's message still waits for the user


@pytest.mark.parametrize("headers", FOREIGN)
def test_a_form_from_another_site_writes_nothing(signed_in: Ui, store: Store, headers: dict[str, str]) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="TOKEN", value=VALUE)
    response = signed_in.post("/team/secrets", fields, headers=headers)
    assert response.status_code == 403 and "another site" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_the_login_link_from_another_site_is_refused_and_not_spent(ui: Ui, page: Page) -> None:
    response = ui.get(f"/login?token={page.gate.login_token}", headers={"Sec-Fetch-Site": "same-site"})
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    response = ui.get(f"/login?token={page.gate.login_token}", headers={"Sec-Fetch-Site": "none"})
    assert response.status_code == 303  # from the terminal (or the address bar): signed in


@pytest.mark.parametrize("headers", [
    {},  # curl, older browsers
    {"Sec-Fetch-Site": "none"},  # the address bar, a bookmark
    {"Sec-Fetch-Site": "same-origin"},  # the page's own links
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    {"Sec-Fetch-Site": "same-origin", "Origin": BASE},
])
def test_the_pages_own_requests_are_answered(signed_in: Ui, headers: dict[str, str]) -> None:
    for path in ("/", "/team", "/precedence", "/audit"):
        assert signed_in.get(path, headers=headers).status_code == 200


def test_a_form_is_not_sent_from_the_address_bar(signed_in: Ui, store: Store) -> None:
    """Sec-Fetch-Site "none" opens a page; a form the page sent says "same-origin"."""
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="TOKEN", value=VALUE)
    assert signed_in.post("/team/secrets", fields, headers={"Sec-Fetch-Site": "none"}).status_code == 403
    assert not os.path.exists(store.path(TEAM))


# --- a confirmation restores what it showed, or nothing -------------------------------------


def test_a_rollback_whose_version_changed_since_the_confirmation_is_refused(signed_in: Ui, store: Store,
                                                                            identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-old", identity)
    store.set(TEAM, "TOKEN", VALUE + "-mid", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    fields = signed_in.form(action, action)  # the page shows version 1: "-old"
    store.set(TEAM, "TOKEN", VALUE + "-new", identity)  # meanwhile version 1 became "-mid"
    before = Path(store.path(TEAM)).read_bytes()
    lines = audit_lines(store)
    response = signed_in.post(action, fields)
    assert response.status_code == 409
    assert "version 1 of team secret &#39;TOKEN&#39; is no longer the one you confirmed" in response.text
    assert "nothing was changed" in response.text
    assert Path(store.path(TEAM)).read_bytes() == before
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-new"
    assert audit_lines(store) == lines
    # confirmed again, it restores what the new confirmation shows
    assert signed_in.rollback("/team", "TOKEN", 1).status_code == 303
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-mid"


def test_a_rollback_after_a_purge_and_new_history_is_refused(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    fields = signed_in.form(action, action)
    store.delete(TEAM, "TOKEN", identity, purge=True)
    store.set(TEAM, "TOKEN", VALUE + "-c", identity)
    store.set(TEAM, "TOKEN", VALUE + "-d", identity)  # a version 1 again, another one
    assert signed_in.post(action, fields).status_code == 409
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-d"


def test_a_change_to_another_name_does_not_refuse_a_rollback(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    fields = signed_in.form(action, action)
    store.set(TEAM, "OTHER", VALUE + "-x", identity)
    assert signed_in.post(action, fields).status_code == 303
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-a"


def test_an_undelete_whose_version_changed_since_the_page_is_refused(signed_in: Ui, store: Store,
                                                                     identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-first", identity)
    store.delete(TEAM, "TOKEN", identity)
    fields = signed_in.form("/team/secrets/TOKEN/versions", "/team/secrets/TOKEN/undelete")  # shows "-first"
    store.set(TEAM, "TOKEN", VALUE + "-second", identity)
    store.delete(TEAM, "TOKEN", identity)  # deleted again: Undelete would now bring back "-second"
    before = Path(store.path(TEAM)).read_bytes()
    response = signed_in.post("/team/secrets/TOKEN/undelete", fields)
    assert response.status_code == 409
    assert "is no longer the one you confirmed" in response.text
    assert Path(store.path(TEAM)).read_bytes() == before
    assert signed_in.undelete("/team", "TOKEN").status_code == 303  # from the page shown again
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-second"


@pytest.mark.parametrize("what", ["rollback", "undelete"])
def test_a_change_between_the_pages_check_and_the_write_restores_nothing(
    signed_in: Ui, store: Store, identity, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """Another writer changes the name after the POST was checked against its token, just before
    the write takes the store lock: the version is checked under that lock, in the write, so the
    value the user never confirmed is not restored: 409, nothing written, no audit line."""
    store.set(TEAM, "TOKEN", VALUE + "-old", identity)
    if what == "rollback":
        store.set(TEAM, "TOKEN", VALUE + "-mid", identity)
        action = "/team/secrets/TOKEN/versions/1/rollback"
        fields = signed_in.form(action, action)  # the page shows version 1: "-old"
    else:
        store.delete(TEAM, "TOKEN", identity)
        action = "/team/secrets/TOKEN/undelete"
        fields = signed_in.form("/team/secrets/TOKEN/versions", action)  # Undelete brings back "-old"
    seen: dict[str, object] = {}
    real_enter = fsio.locked.__enter__

    def another_writer_first(lock: fsio.locked) -> None:
        """The first time the store lock is taken during the POST, another writer gets it first."""
        if not seen:
            seen["fired"] = True
            store.set(TEAM, "TOKEN", VALUE + "-new", identity)  # takes (and releases) the lock itself
            if what == "undelete":
                store.delete(TEAM, "TOKEN", identity)  # deleted again: version 1 is now "-new"
            seen["file"] = Path(store.path(TEAM)).read_bytes()
            seen["versions"] = store.versions(TEAM, "TOKEN")
        real_enter(lock)

    lines = audit_lines(store)
    with monkeypatch.context() as racing:
        racing.setattr(fsio.locked, "__enter__", another_writer_first)
        response = signed_in.post(action, fields)
    assert seen.get("fired"), "the other writer never ran"
    assert response.status_code == 409, response.text
    assert "version 1 of team secret &#39;TOKEN&#39; is no longer the one you confirmed" in response.text
    assert "nothing was changed" in response.text
    assert Path(store.path(TEAM)).read_bytes() == seen["file"]  # nothing written after the other writer
    assert store.versions(TEAM, "TOKEN") == seen["versions"]  # the history as the other writer left it
    if what == "rollback":
        assert store.get(TEAM, "TOKEN", identity) == VALUE + "-new"
    else:
        assert store.list(TEAM) == []  # still deleted
    commands = [entry.fields.get("command") for entry in audit.read(store.root) if entry.fields]
    assert audit_lines(store) == lines and what not in commands  # no line claims a rollback or undelete


def test_a_form_token_minted_without_the_version_restores_nothing(signed_in: Ui, page: Page, store: Store,
                                                                  identity) -> None:
    """The version is held with the token, server-side: a form cannot name another one."""
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    action = "/team/secrets/TOKEN/versions/1/rollback"
    token = page.gate.new_form_token(session_of(signed_in), action)
    assert signed_in.post(action, {"csrf_token": token, "version": "anything"}).status_code == 409
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-b"


def test_the_confirmation_shows_the_version_it_restores(signed_in: Ui, store: Store, identity) -> None:
    store.set(TEAM, "TOKEN", VALUE + "-a", identity)
    store.set(TEAM, "TOKEN", VALUE + "-b", identity)
    confirm = signed_in.get("/team/secrets/TOKEN/versions/1/rollback")
    assert "Make version 1 of the team secret <code>TOKEN</code> its value again?" in confirm.text
    assert " by you " in confirm.text
    assert messages(confirm) == []


# --- addresses and forms that are not percent-encoded UTF-8 ---------------------------------


@pytest.mark.parametrize("path", ["/?scope=%ff", "/precedence?project=%ff", "/team/audit?name=%FF",
                                  "/open?entity=team&id=%C3", "/precedence?project=%zz", "/?a=%"])
def test_a_query_string_that_is_not_utf8_is_a_400(signed_in: Ui, path: str) -> None:
    response = signed_in.get(path)
    assert response.status_code == 400
    assert "its query string is not percent-encoded UTF-8" in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/", "/open", "/precedence", "/team/audit", "/login"])
def test_a_raw_byte_that_is_not_utf8_is_a_400_not_a_500(signed_in: Ui, path: str) -> None:
    status, body = raw_get(signed_in, path, b"entity=team&id=\xff&project=\xff&name=\xff&token=\xff")
    assert status.startswith("400"), status
    assert b"its query string is not percent-encoded UTF-8" in body


def test_utf8_in_a_query_string_is_read(signed_in: Ui) -> None:
    for query in (b"project=%C3%A9", "project=é".encode()):
        status, body = raw_get(signed_in, "/precedence", query)
        assert status.startswith("200"), status
        assert "invalid project id 'é'" in body.decode().replace("&#39;", "'")


def test_the_login_link_with_a_broken_token_is_a_400_and_spends_nothing(ui: Ui) -> None:
    status, _body = raw_get(ui, "/login", b"token=\xff")
    assert status.startswith("400")
    ui.login()


def post_raw(ui: Ui, body: bytes, content_type: str, path: str = "/team/secrets") -> TestResponse:
    return ui.client.post(path, base_url=BASE, data=body, content_type=content_type)


@pytest.mark.parametrize("value", [b"%ff", b"%zz", b"%", b"a%C3", b"\xff"])
def test_a_form_value_that_is_not_utf8_is_refused(signed_in: Ui, store: Store, value: bytes) -> None:
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    body = b"csrf_token=" + token.encode() + b"&name=TOKEN&value=" + value + b"&value_multiline="
    response = post_raw(signed_in, body, "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "the form is not valid percent-encoded UTF-8: nothing was changed" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_percent_sign_typed_in_a_value_is_stored(signed_in: Ui, store: Store, identity) -> None:
    """A browser sends a typed "%ff" as "%25ff", and "é" as "%C3%A9": stored as typed."""
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    body = f"csrf_token={token}&name=TOKEN&value={VALUE}%25ff+%C3%A9&value_multiline=".encode()
    assert post_raw(signed_in, body, "application/x-www-form-urlencoded").status_code == 303
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "%ff é"


def test_a_broken_multipart_form_is_a_400_saying_so(signed_in: Ui, store: Store) -> None:
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    body = (b"--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode()
            + b"\r\n--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nTOKEN")  # never closed
    response = post_raw(signed_in, body, "multipart/form-data; boundary=x")
    assert response.status_code == 400
    assert "the form could not be read (its body is broken): nothing was changed" in response.text
    assert "already sent" not in response.text
    assert not os.path.exists(store.path(TEAM))
    response = post_raw(signed_in, b"csrf_token=x", "multipart/form-data")  # no boundary
    assert response.status_code == 400 and "could not be read" in response.text


def multipart(fields: list[tuple[str, bytes, str]]) -> bytes:
    """A multipart body of (name, value, the part's extra header line or "")."""
    return b"".join(b"--x\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\n"
                    + (extra.encode() + b"\r\n" if extra else b"") + b"\r\n" + value + b"\r\n"
                    for name, value, extra in fields) + b"--x--\r\n"


@pytest.mark.parametrize("value", [b"\xff", b"a\xc3", b"\xed\xa0\x80", b"\xc3\xa9\x80"])
def test_a_multipart_value_that_is_not_utf8_is_refused_not_replaced(signed_in: Ui, store: Store,
                                                                    value: bytes) -> None:
    """Werkzeug decodes a multipart field with errors="replace": the bytes would have been stored
    as U+FFFD, a value other than the one sent."""
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    body = multipart([("csrf_token", token.encode(), ""), ("name", b"TOKEN", ""),
                      ("value", VALUE.encode() + value, ""), ("value_multiline", b"", "")])
    response = post_raw(signed_in, body, "multipart/form-data; boundary=x")
    assert response.status_code == 400
    assert "the form is not valid UTF-8: nothing was changed" in response.text
    assert not os.path.exists(store.path(TEAM))


@pytest.mark.parametrize("charset", ["iso-8859-1", "us-ascii"])
def test_a_multipart_value_is_read_as_utf8_whatever_its_part_says(signed_in: Ui, store: Store, identity,
                                                                  charset: str) -> None:
    """A part may name a charset; werkzeug would decode the bytes with it (so "é" sent as UTF-8
    became "Ã©", or two U+FFFD). The page's forms are UTF-8: the value is stored as sent."""
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    body = multipart([("csrf_token", token.encode(), ""), ("name", b"TOKEN", ""),
                      ("value", (VALUE + "-é✓").encode(), f"Content-Type: text/plain; charset={charset}"),
                      ("value_multiline", b"", "")])
    assert post_raw(signed_in, body, "multipart/form-data; boundary=x").status_code == 303
    assert store.get(TEAM, "TOKEN", identity) == VALUE + "-é✓"


def test_a_form_of_too_many_fields_says_so(signed_in: Ui, store: Store) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update({f"extra{number}": "x" for number in range(40)}, name="MANY", value=VALUE)
    response = signed_in.client.post("/team/secrets", base_url=BASE, data=fields, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "the form has too many fields (at most 16): nothing was changed" in response.text
    assert "at most 65536 bytes" not in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_form_too_large_still_says_so(signed_in: Ui, store: Store) -> None:
    fields = signed_in.form("/team", "/team/secrets")
    fields.update(name="HUGE", value=VALUE * 20000)
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        response = signed_in.client.post("/team/secrets", base_url=BASE, data=fields, content_type=content_type)
        assert response.status_code == 413
        assert "a secret value is at most 65536 bytes" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_body_that_is_not_a_form_is_a_400(signed_in: Ui, store: Store) -> None:
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    response = post_raw(signed_in, f"csrf_token={token}&name=TOKEN&value=v".encode(), "text/plain")
    assert response.status_code == 400
    assert "the request is not a form: nothing was changed" in response.text
    assert not os.path.exists(store.path(TEAM))


def test_a_form_to_a_path_with_non_ascii_characters_is_refused_not_a_crash(signed_in: Ui, store: Store) -> None:
    """The form token's action is compared as bytes: compare_digest refuses non-ASCII str."""
    token = signed_in.form("/team", "/team/secrets")["csrf_token"]
    response = signed_in.post("/projects/%C3%A9/secrets", {"csrf_token": token, "name": "TOKEN", "value": VALUE})
    assert response.status_code == 403
    assert "Traceback" not in response.text
