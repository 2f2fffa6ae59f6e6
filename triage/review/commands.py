"""What ``triage review`` / ``users add`` / ``export-labels`` / ``corrections import`` do.

``triage.cli`` parses arguments and calls these; messages are Chinese and go to stderr.
"""

from __future__ import annotations

import getpass
import logging
import sys
from pathlib import Path
from typing import TextIO

from triage.store import StoreError, UserError, open_store


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_server(db_url: str | None, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False):
    """A threaded WSGI server over the review app (not yet serving)."""
    from werkzeug.serving import make_server as _make_server

    from triage.review import create_app

    store = open_store(db_url)
    app = create_app(store)
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _make_server(host, port, app, threaded=True)
    return server, store


def serve(db_url: str | None, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False) -> None:
    """Serve the review pages until interrupted (Ctrl+C).  Never in debug mode."""
    server, store = make_server(db_url, host, port, quiet=quiet)
    if not store.users():
        _say("提示：数据库中还没有用户，请先运行：triage users add 姓名 --role admin --db <同一个数据库>")
    if host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"注意：页面对 {host} 上的其他计算机开放；请只在单位内网使用，并考虑经 HTTPS 反向代理访问")
    _say(f"复核页面已启动：http://{host}:{server.server_port}/ （按 Ctrl+C 停止）")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _say("已停止")
    finally:
        server.server_close()
        store.close()


def read_password(stdin: TextIO | None = None) -> str:
    """Prompt twice on a terminal; otherwise the first line of standard input."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("密码：")
        second = getpass.getpass("再输入一次：")
        if first != second:
            raise UserError("两次输入的密码不一致")
        return first
    line = stdin.readline()
    return line.rstrip("\r\n")


def add_user(db_url: str | None, name: str, role: str, password: str | None = None, department: str | None = None) -> None:
    """Add a user; ``password`` None reads it from a prompt or the first line of stdin."""
    if password is None:
        password = read_password()
    store = open_store(db_url)
    try:
        store.add_user(name, role, password, department)
    finally:
        store.close()
    _say(f"已添加用户 {name}（{role}{'，' + department if department else ''}）")


def export_labels(db_url: str | None, out: str | Path) -> int:
    """Write the human-reviewed labels to ``out`` (.csv or .xlsx); returns the number of letters."""
    store = open_store(db_url)
    try:
        n = store.export_labels(out)
    finally:
        store.close()
    _say(f"已导出 {n} 件人工复核过的信访件的标签到 {out}")
    return n


def import_corrections(path: str | Path, db_url: str | None, user: str) -> int:
    """Bring in past decisions from a table (id + label columns); returns the number recorded."""
    store = open_store(db_url)
    try:
        n = store.import_corrections(path, user)
    finally:
        store.close()
    _say(f"已导入 {n} 条人工决定（来自 {path}，记在用户 {user} 名下）")
    return n


__all__ = ["serve", "make_server", "add_user", "export_labels", "import_corrections", "read_password", "StoreError"]
