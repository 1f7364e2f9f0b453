"""Fixtures for the console's browser tests: a real tokenmint server on a
throw-away SQLite database (started here, stopped at the end), an admin and
a read-only key bootstrapped with the CLI, Debian's Chromium driven by
Playwright, and a page that fails its test on any browser console error."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("TOKENMINT_BIN", str(ROOT / "target/debug/tokenmint"))
CHROMIUM = os.environ.get("CONSOLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = pathlib.Path(os.environ.get("CONSOLE_SCREENSHOTS", ROOT / "target/console-shots"))


class Server:
    def __init__(self, base, tmp, env):
        self.base = base
        self.tmp = tmp
        self.env = env

    def cli(self, *args):
        out = subprocess.run([BIN, *args], env=self.env, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return json.loads(out.stdout)

    def call(self, method, path, body=None, token=None, form=None):
        """One HTTP call; returns (status, parsed JSON or {})."""
        headers = {"accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if form is not None:
            data = form.encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                status, text = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, (json.loads(text) if text else {})

    def exchange(self, api_key, api_secret):
        return self.call("POST", "/auth/token", {"api_key": api_key, "api_secret": api_secret})

    def token(self, pair):
        status, body = self.exchange(pair["api_key"], pair["api_secret"])
        assert status == 200, body
        return body["access_token"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="tokenmint-console.")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not (k.startswith("TOKENMINT_") or k == "DATABASE_URL")}
    env.update(
        DATABASE_URL=f"sqlite://{tmp}/t.db",
        TOKENMINT_KEYS_DIR=f"{tmp}/keys",
        TOKENMINT_BIND=f"127.0.0.1:{port}",
        TOKENMINT_ISSUER=f"http://127.0.0.1:{port}",
        # Cheap argon2: the tests exchange often; hashing strength is not the point.
        TOKENMINT_ARGON2_M_KIB="256",
        TOKENMINT_ARGON2_T="1",
        TOKENMINT_LOG="warn",
    )
    srv = Server(f"http://127.0.0.1:{port}", tmp, env)
    srv.cli("migrate")
    srv.admin = srv.cli("api-key", "create", "--name", "console-admin", "--scope", "tokenmint:admin")
    srv.reader = srv.cli("api-key", "create", "--name", "console-reader", "--scope", "tokenmint:keys:read")
    log = open(f"{tmp}/server.log", "w")
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(srv.base + "/healthz", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "the server exited during start-up"
                assert time.time() < deadline, "the server was not healthy after 30 s"
                time.sleep(0.2)
        srv.admin_token = srv.token(srv.admin)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        panics = [line for line in open(f"{tmp}/server.log") if "panicked at" in line]
        shutil.rmtree(tmp, ignore_errors=True)
        assert not panics, panics


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page whose console errors, uncaught exceptions and dialogs are kept."""

    def __init__(self, page):
        self.page = page
        self.errors = []
        self.dialogs = []
        self.allowed = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("dialog", self._dialog)

    def _dialog(self, d):
        self.dialogs.append(d.message)
        d.dismiss()

    def allow(self, fragment):
        """Console errors containing `fragment` are expected by this test."""
        self.allowed.append(fragment)

    def unexpected(self):
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def watched(browser, server, request):
    size = getattr(request, "param", {"width": 1280, "height": 900})
    # A zone that is not UTC, so local-time conversions are really tested.
    context = browser.new_context(viewport=size, base_url=server.base, timezone_id="America/New_York")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    w = Watched(context.new_page())
    yield w
    context.close()
    assert not w.unexpected(), f"browser console errors: {w.unexpected()}"
    assert not w.dialogs, f"dialogs opened: {w.dialogs}"


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)
