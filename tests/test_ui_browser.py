"""End to end in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against the real ``secretstore ui`` started as a subprocess.

It signs in with the printed link, opens a project from the index, creates a
secret with the password field and one with the text area, lists them, looks
at the precedence, deletes one through the confirmation page, opens its
versions from the list of deleted names, undeletes it, rolls it back through
the confirmation page, reads the Audit tab, and saves screenshots under the
test's tmp dir. Every response the browser received
(status, headers, and the body of every page, read through the DevTools
protocol right after it loaded) and every page's source is checked for the
values: none may hold one.

No browser is downloaded: without /usr/bin/chromium and /usr/bin/chromedriver
the test is skipped, saying so; under CI (``CI`` set) it fails instead, since
``.ci/run`` installs both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretstore.identity import create_identity
from secretstore.store import TEAM, Scope, Store
from tests.conftest import console_script

VALUE = "Browser-Marker-9b41c7d2"
CHROMIUM = "/usr/bin/chromium"  # Debian's packages chromium and chromium-driver
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium as root, on a machine without network: no sandbox, and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,860",
]


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = (f"no browser to drive: {' and '.join(missing)} not installed "
              "(apt-get install chromium chromium-driver; .ci/run installs them)")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [console_script(), "ui", "--no-browser", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().decode().strip()
        assert "/login?token=" in self.url, self.process.stderr.read().decode() if self.process.stderr else ""
        self.origin = self.url.split("/login", 1)[0]

    def stop(self) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out.decode(), err.decode()


class Seen:
    """Every response from the server as the browser saw it, collected from the DevTools log."""

    def __init__(self, driver: Any, origin: str) -> None:
        self.driver = driver
        self.origin = origin
        self.responses: list[dict[str, Any]] = []  # url, status, headers, body (None for a redirect)
        self.steps = 0

    def collect(self) -> list[dict[str, Any]]:
        """Responses since the last call; each page's body is read now, before the next navigation."""
        new: list[dict[str, Any]] = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message["params"]
            if method == "Network.requestWillBeSent" and "redirectResponse" in params:
                response = params["redirectResponse"]
                if response["url"].startswith(self.origin):
                    new.append({"url": response["url"], "status": response["status"],
                                "headers": response["headers"], "body": None})
            elif method == "Network.responseReceived":
                response = params["response"]
                if response["url"].startswith(self.origin):
                    body = self.driver.execute_cdp_cmd("Network.getResponseBody",
                                                       {"requestId": params["requestId"]})["body"]
                    new.append({"url": response["url"], "status": response["status"],
                                "headers": response["headers"], "body": body})
            elif method == "Network.responseReceivedExtraInfo":  # raw headers, Set-Cookie included
                new.append({"url": "(raw headers)", "status": params.get("statusCode", 0),
                            "headers": params["headers"], "body": None})
        self.responses += new
        return new

    def step(self, action: Any = None) -> str:
        """Run ``action`` (a click that navigates) and wait for the new page; then return its
        source, with every response so far checked for values."""
        if action is not None:
            from selenium.common.exceptions import WebDriverException
            from selenium.webdriver.support.ui import WebDriverWait

            # The page before the action is stamped with a token no other page has; the step ends
            # once a fully loaded page without it is showing. (Waiting for the old <html> element
            # to go stale fails when Chromium froze the old page in its back/forward cache: asking
            # about the frozen node raises an inspector error instead of a stale reference.)
            self.steps += 1
            token = f"step-{self.steps}"
            self.driver.execute_script(
                "document.documentElement.setAttribute('data-seen-step', arguments[0])", token)
            action()
            WebDriverWait(self.driver, 30, ignored_exceptions=(WebDriverException,)).until(
                lambda driver: driver.execute_script(
                    "return document.readyState === 'complete'"
                    " && document.documentElement.getAttribute('data-seen-step') !== arguments[0]",
                    token))
        self.collect()
        source = self.driver.page_source
        assert VALUE not in source
        for response in self.responses:
            assert VALUE not in json.dumps(response["headers"]), response["url"]
            assert VALUE not in (response["body"] or ""), response["url"]
        return source


@pytest.fixture
def filled(isolated_env: dict[str, str]) -> Iterator[Store]:
    identity = create_identity(isolated_env["identity"])
    store = Store(isolated_env["store"])
    store.set(TEAM, "SHARED", VALUE + "-team", identity)
    store.set(Scope("project", "prj42"), "SHARED", VALUE + "-project", identity)
    yield store


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never look for a download
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def test_sign_in_create_list_and_delete_in_chromium(filled: Store, driver: Any, tmp_path: Path,
                                                    isolated_env: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server = Server()
    try:
        seen = Seen(driver, server.origin)

        # Sign in: the link sets the session cookie and lands on the index, without the token.
        driver.get(server.url)
        source = seen.step()
        assert driver.current_url == server.origin + "/"
        assert driver.title == "Scopes · secretstore"
        cookie = next(c for c in driver.get_cookies() if c["name"].startswith("secretstore_"))
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert "token=" not in source

        # Open a project from the index form, and create a multi-line secret there.
        Select(driver.find_element(By.ID, "entity")).select_by_value("project")
        driver.find_element(By.ID, "scope-id").send_keys("prj42")
        seen.step(driver.find_element(By.CSS_SELECTOR, "form.inline button[type=submit]").click)
        assert driver.current_url == server.origin + "/projects/prj42"
        driver.find_element(By.CSS_SELECTOR, "details.create summary").click()
        driver.find_element(By.ID, "name").send_keys("TLS_KEY")
        driver.find_element(By.ID, "value-multiline").send_keys(
            f"-----BEGIN KEY-----\n{VALUE}-pem\n-----END KEY-----\n")
        seen.step(driver.find_element(By.CSS_SELECTOR, "details.create button[type=submit]").click)
        assert driver.find_element(By.CSS_SELECTOR, ".flash.ok").text == "Set project secret 'TLS_KEY'"

        # The team page: Create Secret with the password field.
        seen.step(driver.find_element(By.LINK_TEXT, "Scopes").click)
        seen.step(driver.find_element(By.LINK_TEXT, "team").click)
        driver.find_element(By.CSS_SELECTOR, "details.create summary").click()
        driver.find_element(By.ID, "name").send_keys("WANDB_API_KEY")
        driver.find_element(By.ID, "value").send_keys(VALUE + "-wandb")
        driver.save_screenshot(str(tmp_path / "create-secret-form.png"))
        seen.step(driver.find_element(By.CSS_SELECTOR, "details.create button[type=submit]").click)
        assert driver.current_url == server.origin + "/team"
        assert driver.find_element(By.CSS_SELECTOR, ".flash.ok").text == "Set team secret 'WANDB_API_KEY'"
        listed = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "td.name")]
        assert listed == ["SHARED", "WANDB_API_KEY"]
        assert driver.find_element(By.ID, "value").get_attribute("value") == ""
        driver.save_screenshot(str(tmp_path / "secrets-tab-created.png"))

        # A reload after the POST is a plain GET: nothing is posted again.
        driver.refresh()
        seen.step()
        assert driver.find_elements(By.CSS_SELECTOR, ".flash") == []

        # Precedence: the project's SHARED beats the team's.
        driver.get(server.origin + "/precedence?project=prj42")
        seen.step()
        rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")]
        assert rows == [["SHARED", "project prj42", "team"], ["TLS_KEY", "project prj42", "-"],
                        ["WANDB_API_KEY", "team", "-"]]
        driver.save_screenshot(str(tmp_path / "precedence.png"))

        # Delete, through the confirmation page.
        driver.get(server.origin + "/team")
        seen.step()
        row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
                   if r.find_element(By.CSS_SELECTOR, "td.name").text == "WANDB_API_KEY")
        seen.step(row.find_element(By.LINK_TEXT, "Delete").click)
        assert driver.current_url == server.origin + "/team/secrets/WANDB_API_KEY/delete"
        assert "Delete the team secret WANDB_API_KEY?" in driver.find_element(By.CSS_SELECTOR, ".confirm").text
        driver.save_screenshot(str(tmp_path / "confirm-delete.png"))
        seen.step(driver.find_element(By.CSS_SELECTOR, ".confirm button[type=submit]").click)
        assert driver.find_element(By.CSS_SELECTOR, ".flash.ok").text == "Deleted team secret 'WANDB_API_KEY'"
        assert [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.name")] == ["SHARED"]
        driver.save_screenshot(str(tmp_path / "secrets-tab-deleted.png"))

        # Back to the confirmation page, and Delete again: the spent form is refused, nothing is
        # written. (Chromium may show the page from its back/forward cache despite no-store; if
        # it asks the server again instead, the fresh page says the secret is gone.)
        driver.back()
        seen.step()
        assert driver.current_url == server.origin + "/team/secrets/WANDB_API_KEY/delete"
        if driver.find_elements(By.CSS_SELECTOR, ".confirm"):
            seen.step(driver.find_element(By.CSS_SELECTOR, ".confirm button[type=submit]").click)
            refusal = "this form was already sent"
        else:
            refusal = "no team secret 'WANDB_API_KEY' to delete"
        assert refusal in driver.find_element(By.CSS_SELECTOR, ".flash.error").text

        # The deleted name is listed as one that can be brought back; its versions page has no
        # value, and Undelete brings it back.
        driver.get(server.origin + "/team")
        seen.step()
        deleted = driver.find_element(By.CSS_SELECTOR, "section.deleted")
        assert [c.text for c in deleted.find_elements(By.CSS_SELECTOR, "td.deleted-name")] == ["WANDB_API_KEY"]
        seen.step(deleted.find_element(By.LINK_TEXT, "Versions").click)
        assert driver.current_url == server.origin + "/team/secrets/WANDB_API_KEY/versions"
        versions = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")][:3]
                    for row in driver.find_elements(By.CSS_SELECTOR, "table.versions tbody tr")]
        assert [row[:2] for row in versions] == [["0", "deleted"], ["1", "previous"]]
        driver.save_screenshot(str(tmp_path / "versions.png"))
        seen.step(driver.find_element(By.CSS_SELECTOR, "form.undelete button[type=submit]").click)
        assert driver.current_url == server.origin + "/team"
        assert driver.find_element(By.CSS_SELECTOR, ".flash.ok").text == "Undeleted team secret 'WANDB_API_KEY'"
        assert [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.name")] == ["SHARED", "WANDB_API_KEY"]
        assert driver.find_elements(By.CSS_SELECTOR, "section.deleted") == []

        # Roll it back to version 1 (the value undelete brought back) through the confirmation page.
        driver.get(server.origin + "/team/secrets/WANDB_API_KEY/versions")
        seen.step()
        seen.step(driver.find_element(By.LINK_TEXT, "Roll back to 1").click)
        assert "Make version 1 of the team secret WANDB_API_KEY its value again?" in driver.find_element(
            By.CSS_SELECTOR, ".confirm").text
        seen.step(driver.find_element(By.CSS_SELECTOR, ".confirm button[type=submit]").click)
        assert driver.find_element(By.CSS_SELECTOR, ".flash.ok").text == (
            "Rolled team secret 'WANDB_API_KEY' back to version 1, as a new version")

        # The team's Audit tab: what the page did, newest first, by this identity; never a value.
        seen.step(driver.find_element(By.LINK_TEXT, "Back to Team").click)
        seen.step(driver.find_element(By.LINK_TEXT, "Audit").click)
        assert driver.current_url == server.origin + "/team/audit"
        commands = [" ".join(cell.text.split()) for cell in driver.find_elements(By.CSS_SELECTOR, "table.audit td.command")]
        # the precedence view decrypted the team's values before the delete: a read, logged
        assert commands[:5] == ["rollback (to version 1)", "undelete", "delete", "ui precedence", "ui set"]
        assert driver.find_elements(By.CSS_SELECTOR, ".flash.error") == []  # the chain is intact
        driver.save_screenshot(str(tmp_path / "audit.png"))
        driver.get(server.origin + "/audit")
        seen.step()
        assert "project prj42" in driver.find_element(By.CSS_SELECTOR, "table.audit").text

        # The browser saw every kind of response, and its console reported no policy violation.
        statuses = {response["status"] for response in seen.responses}
        assert {200, 303} <= statuses and statuses & {403, 404}
        pages = [r for r in seen.responses if r["body"] is not None]
        assert len(pages) >= 10
        for response in seen.responses:
            if response["url"] != "(raw headers)":
                headers = {key.lower(): value for key, value in response["headers"].items()}
                assert headers["content-security-policy"].startswith("default-src 'none'")
        console = [entry["message"] for entry in driver.get_log("browser")]
        assert not [line for line in console if "Content Security Policy" in line], console
    finally:
        code, out, err = server.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert VALUE not in out + err

    # What the library reads back.
    from secretstore.identity import load_identity

    identity = load_identity(isolated_env["identity"])
    assert filled.get(Scope("project", "prj42"), "TLS_KEY", identity) == (
        f"-----BEGIN KEY-----\n{VALUE}-pem\n-----END KEY-----")
    assert [name for name, _ in filled.list(TEAM)] == ["SHARED", "WANDB_API_KEY"]
    assert filled.get(TEAM, "WANDB_API_KEY", identity) == VALUE + "-wandb"
    assert [v.state for v in filled.versions(TEAM, "WANDB_API_KEY")] == ["current", "previous", "previous"]
    for name in ("create-secret-form.png", "secrets-tab-created.png", "precedence.png", "confirm-delete.png",
                 "secrets-tab-deleted.png", "versions.png", "audit.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
