"""Fixtures for the web page's in-process tests (test_ui.py, test_ui_hardening.py), registered
for the whole suite by ``pytest_plugins`` in tests/conftest.py.

``page`` is the app over the test's store and identity (conftest's ``store`` and
``identity``), its sign-in gate on ``gate_clock``; ``ui`` is a signed-out browser on it,
``signed_in`` the same browser signed in. Every response passes through ``recorder``, which
checks after the test that a request was made and that no status line, header or body
holds ``VALUE`` (every value the tests set contains it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from secretstore import identity as identities
from secretstore.store import Store
from secretstore.ui.actions import Keys
from secretstore.ui.app import Page
from secretstore.ui.auth import Gate

VALUE = "Ui-Marker-5e0c2a91"  # every value the page's tests set contains it; no response may
PORT = 48123
BASE = f"http://127.0.0.1:{PORT}"


class Recorder:
    """WSGI middleware keeping (status, headers, body) of every response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, list[tuple[str, str]], bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, record))
        self.seen.append((captured["status"], list(captured["headers"]), body))
        return [body]

    def leaks(self, marker: str) -> list[str]:
        found = []
        for status, headers, body in self.seen:
            text = status + "\n".join(f"{k}: {v}" for k, v in headers)
            if marker in text or marker.encode() in body:
                found.append(status)
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Ui:
    """A signed-out browser on a page: ``ui.login()``, ``ui.get``, ``ui.post_form``."""

    def __init__(self, page: Page, recorder: Recorder) -> None:
        self.page = page
        self.recorder = recorder
        self.client = Client(recorder)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("base_url", BASE)
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("base_url", BASE)
        return self.client.post(path, data=data or {}, **kwargs)

    def login(self) -> TestResponse:
        response = self.get(f"/login?token={self.page.gate.login_token}")
        assert response.status_code == 303, response.text
        return response

    def form(self, page_path: str, action: str) -> dict[str, str]:
        """The hidden fields of the form posting to ``action`` on ``page_path``."""
        response = self.get(page_path)
        assert response.status_code == 200, response.text
        match = re.search(
            rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
            r'<input type="hidden" name="csrf_token" value="([^"]+)">',
            response.text,
        )
        assert match is not None, f"no form posting to {action} on {page_path}"
        return {"csrf_token": match.group(1)}

    def create(self, scope_path: str, name: str, value: str = "", multi: str = "") -> TestResponse:
        fields = self.form(scope_path, f"{scope_path}/secrets")
        fields.update(name=name, value=value, value_multiline=multi)
        return self.post(f"{scope_path}/secrets", fields)

    def delete(self, scope_path: str, name: str) -> TestResponse:
        action = f"{scope_path}/secrets/{name}/delete"
        return self.post(action, self.form(action, action))

    def undelete(self, scope_path: str, name: str) -> TestResponse:
        """Undelete as the versions page's button does."""
        action = f"{scope_path}/secrets/{name}/undelete"
        return self.post(action, self.form(f"{scope_path}/secrets/{name}/versions", action))

    def rollback(self, scope_path: str, name: str, number: int) -> TestResponse:
        """Roll back through the confirmation page's form."""
        action = f"{scope_path}/secrets/{name}/versions/{number}/rollback"
        return self.post(action, self.form(action, action))


@pytest.fixture
def gate_clock() -> Clock:
    """The page's sign-in clock: a test moves ``gate_clock.now`` to expire links and sessions."""
    return Clock()


@pytest.fixture
def page(store: Store, identity: identities.Identity, gate_clock: Clock) -> Page:
    keys = Keys(store)
    keys.unlock_at_start()
    return Page(store, keys, PORT, Gate(clock=gate_clock))


@pytest.fixture
def recorder(page: Page) -> Iterator[Recorder]:
    recording = Recorder(page)
    yield recording
    assert recording.seen, "the test made no request"
    assert recording.leaks(VALUE) == []


@pytest.fixture
def ui(page: Page, recorder: Recorder) -> Ui:
    return Ui(page, recorder)


@pytest.fixture
def signed_in(ui: Ui) -> Ui:
    ui.login()
    return ui
