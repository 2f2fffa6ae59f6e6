"""End to end in a real browser (Debian's Chromium driven by Playwright): a clerk logs in,
opens the queue, corrects a department with the keyboard only, and sees it in the history."""

from __future__ import annotations

import os
import threading

import pytest

from triage.review.commands import make_server
from triage.store import open_store

from conftest import FAKE_PHONE, make_records

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.heavy,
    # in CI .ci/services.sh installs Chromium, so there a missing browser fails instead of skipping
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason=f"没有 {CHROMIUM}（apt-get install chromium；CI 由 .ci/services.sh 安装）"),
]


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    store = open_store(url)
    store.password_method = "pbkdf2:sha256:1000"
    deps = store.heads["department"].labels
    store.upsert_scored(make_records(12, deps), "m1", "b1")
    store.add_user("小王", "clerk", "password-1")
    store.close()
    srv, srv_store = make_server(url, "127.0.0.1", 0, quiet=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}", url
    srv.shutdown()
    srv_store.close()


def test_clerk_corrects_department_with_keyboard_only(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, url = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(f"{base}/queue")
            assert "/login" in page.url  # login required
            page.keyboard.type("小王")  # the user name field has focus
            page.keyboard.press("Tab")
            page.keyboard.type("password-1")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/queue**")
            assert "复核队列" in page.inner_text("h1")
            assert FAKE_PHONE not in page.content()  # a clerk sees masked personal data

            first_id = page.inner_text("tr.qrow.cursor a.open")
            page.keyboard.press("j")
            page.keyboard.press("k")  # the cursor is back on the first row
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/letters/{first_id}**")
            old = page.inner_text("#head-department .suggestion")
            assert page.is_visible("text=快捷键")

            page.keyboard.press("d")  # focus the department list
            assert page.evaluate("document.activeElement.id") == "select-department"
            page.keyboard.press("ArrowDown")
            new = page.evaluate("document.getElementById('select-department').value")
            assert new != old
            page.keyboard.press("Enter")  # submit the correction; auto-advance to the next letter
            page.wait_for_function(f"!location.pathname.endsWith('/letters/{first_id}')")
            assert "已改正责任单位" in page.inner_text(".flash")

            page.keyboard.press("k")  # back to the corrected letter
            page.wait_for_url(f"{base}/letters/{first_id}**")
            assert page.inner_text("#label-department") == new
            row = page.inner_text("#history tbody tr:first-child")
            for text in ("小王", "改正", "责任单位", old, new, "m1"):
                assert text in row, (text, row)
        finally:
            browser.close()

    store = open_store(url)
    try:
        ev = store.history(first_id)[0]
        assert (ev["kind"], ev["head"], ev["old_label"], ev["new_label"], ev["user_name"]) == ("correct", "department", old, new, "小王")
    finally:
        store.close()


def test_script_in_letter_is_shown_as_text(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{base}/login")
            page.fill("#username", "小王")
            page.fill("#password", "password-1")
            page.press("#password", "Enter")
            page.wait_for_url(f"{base}/queue**")
            page.goto(f"{base}/letters/X00001")
            assert "<script>alert('x')</script>" in page.inner_text("#letter-text")
            assert dialogs == []
        finally:
            browser.close()
