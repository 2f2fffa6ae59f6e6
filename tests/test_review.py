"""The review web app through Flask's test client: every route, role and bad input.

Runs on SQLite and, when TRIAGE_TEST_PG_URL is set, PostgreSQL (``db_url`` fixture)."""

from __future__ import annotations

import io
import re
import threading
import urllib.request

import pandas as pd
import pytest
import sqlalchemy as sa

from triage.review import create_app
from triage.review import commands
from triage.store import MAX_NOTE_CHARS, open_store

from conftest import FAKE_ID_NUMBER, FAKE_PHONE

PW = "password-1"


class Clock:
    def __init__(self) -> None:
        self.t = 2_000_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def env(store, records):
    deps = store.heads["department"].labels
    recs = records(60, deps)
    store.upsert_scored(recs, "m1", "b1")
    store.add_user("clerk", "clerk", PW, deps[0])  # tied to one department
    store.add_user("free", "clerk", PW)  # sees every department
    store.add_user("boss", "supervisor", PW)
    store.add_user("root", "admin", PW)
    clock = Clock()
    app = create_app(store, testing=True, clock=clock)
    return {"store": store, "app": app, "clock": clock, "deps": deps, "recs": {r["id"]: r for r in recs}}


def token(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, "page has no CSRF token"
    return m.group(1)


def login(app, name: str, password: str = PW):
    c = app.test_client()
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": token(c.get("/login"))})
    assert r.status_code == 303, r.get_data(as_text=True)
    return c


def form_of(client, letter_id: str) -> dict:
    html = client.get(f"/letters/{letter_id}").get_data(as_text=True)
    fields = {}
    for name in ("csrf_token", "version", "q", "next"):
        m = re.search(rf'name="{name}" value="([^"]*)"', html)
        fields[name] = m.group(1)
    return fields


def n_events(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("select count(*) from events")).scalar_one()


def letter_of(env, dep_index: int = 0, *, other: bool = False) -> str:
    dep = env["deps"][dep_index]
    for lid, r in env["recs"].items():
        if (r["department"] == dep) != other:
            return lid
    raise AssertionError


# --------------------------------------------------------------------------------------
# login, sessions, headers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/queue", "/letters/X00001", "/admin/users"])
def test_login_required(env, path):
    r = env["app"].test_client().get(path)
    assert r.status_code in (302, 303)
    assert "/login" in r.headers["Location"] or r.headers["Location"] == "/queue"


def test_anonymous_post_redirects_and_records_nothing(env):
    c = env["app"].test_client()
    for path in ("/letters/X00001/correct", "/letters/X00001/accept", "/letters/X00001/note", "/bulk-accept", "/admin/users"):
        r = c.post(path, data={"head": "risk", "label": "高", "version": "0"})
        assert r.status_code == 303 and "/login" in r.headers["Location"]
    assert n_events(env["store"]) == 0


def test_login_page_and_bad_password(env):
    c = env["app"].test_client()
    r = c.get("/login")
    assert r.status_code == 200 and "登录" in r.get_data(as_text=True)
    r = c.post("/login", data={"username": "clerk", "password": "nope-nope", "csrf_token": token(r)})
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    r = c.post("/login", data={"username": "clerk", "password": PW})  # no CSRF token
    assert r.status_code == 400 and "登录表单已失效" in r.get_data(as_text=True)
    assert c.get("/queue").status_code == 303  # still not logged in


def test_repeated_failures_lock_out_with_growing_delay(env):
    app, clock = env["app"], env["clock"]
    c = app.test_client()
    tok = token(c.get("/login"))

    def attempt(pw):
        return c.post("/login", data={"username": "clerk", "password": pw, "csrf_token": tok})

    assert [attempt("wrong-pass").status_code for _ in range(3)] == [401, 401, 401]
    r = attempt("wrong-pass")
    assert r.status_code == 401 and "秒内不能再试" in r.get_data(as_text=True)
    r = attempt(PW)  # even the right password is refused while locked
    assert r.status_code == 429 and "登录失败次数过多" in r.get_data(as_text=True)
    clock.t += 31
    r = attempt("wrong-pass")  # the next failure locks for longer
    assert r.status_code == 401
    clock.t += 31
    assert attempt(PW).status_code == 429
    clock.t += 31
    assert attempt(PW).status_code == 303
    # another user from the same address was never affected
    assert login(app, "free").get("/queue").status_code == 200


def test_cookie_and_security_headers(env):
    app = env["app"]
    assert app.debug is False
    c = app.test_client()
    r = c.post("/login", data={"username": "free", "password": PW, "csrf_token": token(c.get("/login"))})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = c.get("/queue")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"


def test_expired_session_redirects_and_records_nothing(env):
    c = login(env["app"], "free")
    f = form_of(c, "X00001")
    env["clock"].t += 9 * 3600
    r = c.post("/letters/X00001/correct", data={**f, "head": "risk", "label": "高"})
    assert r.status_code == 303 and "/login" in r.headers["Location"]
    assert n_events(env["store"]) == 0
    r = c.get("/queue")
    assert r.status_code == 303 and "/login" in r.headers["Location"]
    assert "登录已过期" in c.get("/login").get_data(as_text=True)


def test_logout(env):
    c = login(env["app"], "free")
    r = c.post("/logout", data={"csrf_token": token(c.get("/queue"))})
    assert r.status_code == 303
    assert c.get("/queue").status_code == 303


def test_deactivated_user_is_logged_out(env):
    c = login(env["app"], "free")
    env["store"].update_user("free", active=False)
    assert c.get("/queue").status_code == 303


# --------------------------------------------------------------------------------------
# queue
# --------------------------------------------------------------------------------------


def test_queue_clerk_sees_own_department_masked(env):
    c = login(env["app"], "clerk")
    html = c.get("/queue").get_data(as_text=True)
    ids = re.findall(r'class="open">([^<]+)<', html)
    mine = {lid for lid, r in env["recs"].items() if r["department"] == env["deps"][0]}
    assert ids and set(ids) <= mine
    assert FAKE_PHONE not in html and "138****5678" in html
    # asking for another department changes nothing for a tied clerk
    html2 = c.get("/queue", query_string={"department": env["deps"][1]}).get_data(as_text=True)
    assert set(re.findall(r'class="open">([^<]+)<', html2)) <= mine
    assert "批量接受" not in html


def test_queue_supervisor_filters_counts_pages(env):
    c = login(env["app"], "boss")
    html = c.get("/queue").get_data(as_text=True)
    assert "符合条件 <strong>60</strong> 件" in html and "第 1 / 2 页" in html
    assert len(re.findall(r'class="open">', html)) == 50
    assert FAKE_PHONE in html  # a supervisor sees personal data
    html = c.get("/queue", query_string={"page": 2}).get_data(as_text=True)
    assert len(re.findall(r'class="open">', html)) == 10
    html = c.get("/queue", query_string={"risk": "高", "track": "普通信访"}).get_data(as_text=True)
    risks = re.findall(r'<td class="risk">([^<]+)</td>', html)
    assert risks and set(r.strip() for r in risks) == {"高"}
    html = c.get("/queue", query_string={"date_from": "2026-10-01", "date_to": "2026-10-01"}).get_data(as_text=True)
    assert "符合条件 <strong>3</strong> 件" in html  # days 1 of 28, 60 letters
    html = c.get("/queue", query_string={"status": "done"}).get_data(as_text=True)
    assert "没有符合条件的信访件" in html
    html = c.get("/queue", query_string={"status": "bogus", "date_from": "yesterday"}).get_data(as_text=True)
    assert "符合条件 <strong>60</strong> 件" in html


# --------------------------------------------------------------------------------------
# letter page
# --------------------------------------------------------------------------------------


def test_letter_page_escapes_highlights_and_masks(env):
    clerk = login(env["app"], "free")
    script_id = next(lid for lid, r in env["recs"].items() if "<script>" in r["text"])
    html = clerk.get(f"/letters/{script_id}").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    html = clerk.get("/letters/X00000").get_data(as_text=True)
    assert '<mark class="ev ev-department" title="责任单位的依据">宅基地</mark>' in html
    assert '<mark class="ev ev-risk" title="风险等级的依据">集体到北京上访</mark>' in html
    assert FAKE_PHONE not in html and "138****5678" in html and "张**" in html
    for shortcut in ("全部接受", "下一件", "上一件", "选备选单位"):
        assert shortcut in html
    id_letter = next(lid for lid, r in env["recs"].items() if "身份证号" in r["text"])
    assert FAKE_ID_NUMBER not in clerk.get(f"/letters/{id_letter}").get_data(as_text=True)
    boss = login(env["app"], "boss")
    html = boss.get(f"/letters/{id_letter}").get_data(as_text=True)
    assert FAKE_ID_NUMBER in html and "张三丰" in html


def test_letter_unknown_404_other_department_403(env):
    c = login(env["app"], "clerk")
    r = c.get("/letters/NO-SUCH")
    assert r.status_code == 404 and "找不到编号为“NO-SUCH”的信访件" in r.get_data(as_text=True)
    r = c.get(f"/letters/{letter_of(env, other=True)}")
    assert r.status_code == 403 and "没有权限" in r.get_data(as_text=True)
    assert c.get(f"/letters/{letter_of(env)}").status_code == 200
    other = letter_of(env, other=True)
    f = form_of(login(env["app"], "free"), other)
    r = c.post(f"/letters/{other}/correct", data={**f, "csrf_token": token(c.get("/queue")), "head": "risk", "label": "高"})
    assert r.status_code == 403 and n_events(env["store"]) == 0


def test_correct_records_event_history_and_auto_advance(env):
    c = login(env["app"], "free")
    lid = "X00001"
    f = form_of(c, lid)
    old = env["recs"][lid]["department"]
    new = next(d for d in env["deps"] if d != old)
    r = c.post(f"/letters/{lid}/correct", data={**f, "head": "department", "label": new, "advance": "1"})
    assert r.status_code == 303 and f"/letters/{f['next']}" in r.headers["Location"]
    html = c.get(f"/letters/{lid}").get_data(as_text=True)
    assert f'id="label-department">{new}<' in html
    hist = html[html.index('id="history"') :]
    assert "改正" in hist and old in hist and new in hist and "free" in hist and "m1" in hist
    ev = env["store"].history(lid)[0]
    assert (ev["kind"], ev["head"], ev["old_label"], ev["new_label"], ev["user_name"]) == ("correct", "department", old, new, "free")
    # without auto-advance the clerk stays on the letter
    f = form_of(c, lid)
    r = c.post(f"/letters/{lid}/correct", data={**f, "head": "risk", "label": "中", "advance": "0"})
    assert r.status_code == 303 and r.headers["Location"].startswith(f"/letters/{lid}")


def test_accept_head_accept_all_and_note(env):
    c = login(env["app"], "free")
    lid = "X00002"
    rec = env["recs"][lid]
    f = form_of(c, lid)
    r = c.post(f"/letters/{lid}/accept", data={**f, "head": "department", "label": rec["department"], "advance": "0"})
    assert r.status_code == 303
    f = form_of(c, lid)
    wrong = next(d for d in env["deps"] if d != rec["department"])
    r = c.post(f"/letters/{lid}/accept", data={**f, "head": "risk", "label": "高" if rec["risk"] != "高" else "低"})
    assert r.status_code == 400 and "接受只能接受模型建议" in r.get_data(as_text=True)
    r = c.post(f"/letters/{lid}/accept", data={**f, "head": "", "advance": "0"})
    assert r.status_code == 303
    letter = env["store"].letter(lid)
    assert letter["status"] == "done" and letter["labels"]["department"] == rec["department"]
    assert wrong != letter["labels"]["department"]
    f = form_of(c, lid)
    r = c.post(f"/letters/{lid}/note", data={**f, "note": "已电话联系 <b>信访人</b>", "advance": "0"})
    assert r.status_code == 303
    html = c.get(f"/letters/{lid}").get_data(as_text=True)
    assert "已电话联系 &lt;b&gt;信访人&lt;/b&gt;" in html
    kinds = [e["kind"] for e in env["store"].history(lid)]
    assert kinds.count("accept") == 4 and kinds[0] == "note"  # track, route, department, risk


def test_two_clerks_same_letter_conflict_409(env):
    app, store = env["app"], env["store"]
    a, b = login(app, "free"), login(app, "boss")
    lid = "X00003"
    fa, fb = form_of(a, lid), form_of(b, lid)
    assert fa["version"] == fb["version"]
    r = a.post(f"/letters/{lid}/correct", data={**fa, "head": "risk", "label": "高", "advance": "0"})
    assert r.status_code == 303
    r = b.post(f"/letters/{lid}/correct", data={**fb, "head": "risk", "label": "低", "advance": "0"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "已被 free 修改" in html and "您的操作没有保存" in html
    assert f'id="version">{int(fa["version"]) + 1}<' in html  # the fresh state
    assert 'id="label-risk">高<' in html
    assert [e["new_label"] for e in store.history(lid)] == ["高"]


def test_bad_input_gets_clear_status_and_records_nothing(env):
    c = login(env["app"], "free")
    store = env["store"]
    lid = "X00004"
    f = form_of(c, lid)
    cases = [
        (f"/letters/{lid}/correct", {**f, "head": "department", "label": "外星办"}, 400, "不在标签集中"),
        (f"/letters/{lid}/correct", {**f, "head": "colour", "label": "红"}, 400, "没有“colour”这一项"),
        (f"/letters/{lid}/note", {**f, "note": "长" * (MAX_NOTE_CHARS + 1)}, 400, "备注太长"),
        (f"/letters/{lid}/note", {**f, "note": "   "}, 400, "备注不能为空"),
        (f"/letters/{lid}/correct", {**f, "version": "", "head": "risk", "label": "高"}, 400, "版本号"),
        (f"/letters/{lid}/correct", {**f, "csrf_token": "forged", "head": "risk", "label": "高"}, 400, "表单已失效"),
        (f"/letters/{lid}/correct", {k: v for k, v in f.items() if k != "csrf_token"} | {"head": "risk", "label": "高"}, 400, "表单已失效"),
        ("/letters/NO-SUCH/correct", {**f, "head": "risk", "label": "高"}, 404, "找不到编号"),
        (f"/letters/{lid}/note", {**f, "note": "x" * 100_000}, 413, "提交的内容太大"),
    ]
    for path, data, status, text in cases:
        r = c.post(path, data=data)
        assert r.status_code == status, (path, data.get("label"), r.status_code)
        assert text in r.get_data(as_text=True), text
    assert n_events(store) == 0
    assert store.letter(lid)["version"] == int(f["version"])
    assert c.get(f"/letters/{lid}/correct").status_code == 405


def test_clerk_reassigning_away_goes_back_to_queue(env):
    c = login(env["app"], "clerk")
    lid = letter_of(env)
    f = form_of(c, lid)
    r = c.post(f"/letters/{lid}/correct", data={**f, "head": "department", "label": env["deps"][1], "advance": "0"})
    assert r.status_code == 303 and r.headers["Location"].startswith("/queue")
    assert "已改派到其他单位" in c.get("/queue").get_data(as_text=True)
    assert c.get(f"/letters/{lid}").status_code == 403


# --------------------------------------------------------------------------------------
# bulk accept and users
# --------------------------------------------------------------------------------------


def test_bulk_accept_supervisor_only(env):
    store = env["store"]
    clerk = login(env["app"], "free")
    r = clerk.post("/bulk-accept", data={"csrf_token": token(clerk.get("/queue")), "min_confidence": "0.9", "q": ""})
    assert r.status_code == 403 and n_events(store) == 0
    boss = login(env["app"], "boss")
    tok = token(boss.get("/queue"))
    r = boss.post("/bulk-accept", data={"csrf_token": tok, "min_confidence": "0.3", "q": ""})
    assert r.status_code == 400 and n_events(store) == 0
    dep = env["deps"][0]
    r = boss.post("/bulk-accept", data={"csrf_token": tok, "min_confidence": "0.9", "q": f"department={dep}"})
    assert r.status_code == 303
    html = boss.get(r.headers["Location"]).get_data(as_text=True)
    m = re.search(r"已批量接受 (\d+) 件", html)
    assert m and int(m.group(1)) > 0
    cur = store.current_labels()
    accepted = set(cur["letter_id"])
    assert len(accepted) == int(m.group(1))
    for lid in accepted:
        r = env["recs"][lid]
        assert r["department"] == dep and r["department_confidence"] >= 0.9 and not r["needs_review"]
    assert set(cur["user"]) == {"boss"}


def test_admin_manages_users(env):
    store = env["store"]
    for name in ("free", "boss"):
        c = login(env["app"], name)
        assert c.get("/admin/users").status_code == 403
        r = c.post("/admin/users", data={"csrf_token": token(c.get("/queue")), "name": "x", "role": "admin", "password": PW})
        assert r.status_code == 403
    assert store.get_user("x") is None
    admin = login(env["app"], "root")
    html = admin.get("/admin/users").get_data(as_text=True)
    assert "用户管理" in html and "clerk" in html
    tok = token(admin.get("/admin/users"))
    r = admin.post("/admin/users", data={"csrf_token": tok, "name": "新人", "role": "clerk", "password": PW, "department": env["deps"][2]})
    assert r.status_code == 303
    assert store.get_user("新人")["department"] == env["deps"][2]
    r = admin.post("/admin/users", data={"csrf_token": tok, "name": "新人", "role": "clerk", "password": PW})
    assert r.status_code == 400 and "已存在" in r.get_data(as_text=True)
    r = admin.post("/admin/users", data={"csrf_token": tok, "name": "短", "role": "clerk", "password": "123"})
    assert r.status_code == 400 and "密码至少" in r.get_data(as_text=True)
    r = admin.post("/admin/users/新人", data={"csrf_token": tok, "role": "supervisor", "department": "", "active": "1"})
    assert r.status_code == 303 and store.get_user("新人")["role"] == "supervisor"
    r = admin.post("/admin/users/root", data={"csrf_token": tok, "role": "clerk", "active": "1"})
    assert r.status_code == 400 and store.get_user("root")["role"] == "admin"
    r = admin.post("/admin/users/ghost", data={"csrf_token": tok, "role": "clerk"})
    assert r.status_code == 400
    assert login(env["app"], "新人").get("/queue").status_code == 200


# --------------------------------------------------------------------------------------
# CLI-facing commands
# --------------------------------------------------------------------------------------


def test_commands_users_export_import(db_url, records, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("long-password\nignored\n"))
    commands.add_user(db_url, "李四", "supervisor", None)
    assert "已添加用户 李四" in capsys.readouterr().err
    s = open_store(db_url)
    try:
        assert s.verify_password("李四", "long-password")["role"] == "supervisor"
        deps = s.heads["department"].labels
        s.upsert_scored(records(5, deps), "m1", "b1")
    finally:
        s.close()
    past = tmp_path / "past.xlsx"
    pd.DataFrame({"信访件编号": ["X00001", "X00002"], "办理类别": ["普通信访", "涉法涉诉"]}).to_excel(past, index=False)
    assert commands.import_corrections(past, db_url, "李四") == 2
    out = tmp_path / "labels.csv"
    assert commands.export_labels(db_url, out) == 2
    df = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert list(df["track"]) == ["普通信访", "涉法涉诉"] and set(df["track_by"]) == {"李四"}
    err = capsys.readouterr().err
    assert "已导入 2 条" in err and "已导出 2 件" in err


def test_real_server_serves_login_page(sqlite_url):
    server, store = commands.make_server(sqlite_url, "127.0.0.1", 0, quiet=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/login", timeout=10) as resp:
            assert resp.status == 200 and "登录" in resp.read().decode("utf-8")
    finally:
        server.shutdown()
        store.close()
