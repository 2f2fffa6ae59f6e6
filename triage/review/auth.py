"""Login, sessions, roles and login throttling for the review app."""

from __future__ import annotations

import functools
from typing import Callable

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from triage.store import ROLES, Store

bp = Blueprint("auth", __name__)

#: a login lasts this long (seconds), then the clerk logs in again
SESSION_LIFETIME_S = 8 * 3600

ROLE_RANK = {r: i for i, r in enumerate(ROLES)}  # clerk < supervisor < admin


def store() -> Store:
    return current_app.extensions["triage_store"]


def now() -> float:
    return current_app.config["CLOCK"]()


def load_user() -> None:
    """before_request: ``g.user`` is the logged-in active user or None; ``g.expired`` if the login ran out."""
    g.user = None
    g.expired = False
    name = session.get("user")
    if not name:
        return
    if now() - float(session.get("login_at", 0)) > current_app.config["SESSION_LIFETIME_S"]:
        session.clear()
        g.expired = True
        return
    user = store().get_user(name)
    if user is None or not user["active"]:
        session.clear()
        g.expired = True
        return
    g.user = user


def has_role(role: str) -> bool:
    return g.user is not None and ROLE_RANK[g.user["role"]] >= ROLE_RANK[role]


def can_see_pii() -> bool:
    return has_role("supervisor")


def scope_department() -> str | None:
    """The one department a clerk is tied to (None: sees every department)."""
    if g.user is None or has_role("supervisor"):
        return None
    return g.user["department"] or None


def login_redirect():
    flash("登录已过期，请重新登录" if g.get("expired") or request.method == "POST" else "请先登录", "error")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target) if target else url_for("auth.login"), code=303)


def login_required(role: str = "clerk") -> Callable:
    def deco(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None:
                return login_redirect()
            if not has_role(role):
                need = {"supervisor": "主管或管理员", "admin": "管理员"}.get(role, role)
                return render_template("error.html", message=f"没有权限：此操作需要{need}角色"), 403
            return view(*args, **kwargs)

        return wrapped

    return deco


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("review.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.user is not None:
            return redirect(url_for("review.queue"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    nxt = request.form.get("next") or ""
    key = f"{username}|{request.remote_addr or '-'}"
    wait = store().login_wait(key, now())
    if wait > 0:
        msg = f"登录失败次数过多，请 {int(wait) + 1} 秒后再试"
        return render_template("login.html", error=msg, next=nxt, username=username), 429
    user = store().verify_password(username, password)
    if user is None:
        lock = store().login_failed(key, now())
        msg = "用户名或密码错误"
        if lock:
            msg += f"；失败次数过多，{int(lock)} 秒内不能再试"
        return render_template("login.html", error=msg, next=nxt, username=username), 401
    store().login_succeeded(key)
    session.clear()
    session.permanent = True
    session["user"] = user["name"]
    session["login_at"] = now()
    return redirect(_safe_next(nxt), code=303)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("已退出登录", "info")
    return redirect(url_for("auth.login"), code=303)
