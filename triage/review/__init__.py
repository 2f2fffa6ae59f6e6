"""The clerks' review web app (Flask): queue, letter page, decisions, bulk accept, users.

``create_app(store)`` builds the app over a :class:`triage.store.Store`; views stay thin and
call the store.  Login is required everywhere; CSRF protects every state-changing request;
letter text is always escaped; debug mode is never on outside tests.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from flask import Flask, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from triage.store import KIND_DISPLAY, ROLE_DISPLAY, STATUS_DISPLAY, Store, open_store

from . import auth, views

#: largest request body accepted (a note is at most 2000 characters)
MAX_CONTENT_LENGTH = 64 * 1024
_BEIJING = timezone(timedelta(hours=8))


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Stored UTC -> Beijing time for display."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(_BEIJING).strftime(fmt)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def create_app(
    store: Store | str | None = None,
    *,
    testing: bool = False,
    clock: Callable[[], float] | None = None,
    secret_key: str | None = None,
) -> Flask:
    """The review app over ``store`` (a Store or a database URL).

    ``clock`` (seconds, like ``time.time``) is injectable so tests can expire sessions and
    login lockouts without sleeping.
    """
    if not isinstance(store, Store):
        store = open_store(store)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get("TRIAGE_SECRET_KEY") or store.secret_key(),
        TESTING=testing,
        DEBUG=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("TRIAGE_COOKIE_SECURE", "") == "1",
        SESSION_COOKIE_NAME="triage_session",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=auth.SESSION_LIFETIME_S),
        SESSION_LIFETIME_S=auth.SESSION_LIFETIME_S,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the login does
        WTF_CSRF_SSL_STRICT=False,
        CLOCK=clock or time.time,
        JSON_AS_ASCII=False,
    )
    app.extensions["triage_store"] = store
    # who is logged in must be known before the CSRF check runs (an expired login is sent
    # to the login page rather than shown a CSRF error)
    app.before_request(auth.load_user)
    CSRFProtect(app)

    app.jinja_env.filters["localtime"] = _localtime
    app.jinja_env.filters["date"] = _date
    app.jinja_env.globals.update(
        KIND_DISPLAY=KIND_DISPLAY,
        ROLE_DISPLAY=ROLE_DISPLAY,
        STATUS_DISPLAY=STATUS_DISPLAY,
        has_role=auth.has_role,
    )

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(CSRFError)
    def _csrf(err):
        if request.endpoint == "auth.login":
            return render_template("login.html", error="登录表单已失效，请重新输入用户名和密码", next=""), 400
        if g.get("user") is None:
            return auth.login_redirect()
        return render_template("error.html", message="表单已失效或来源不明（可能页面打开太久或被伪造），操作没有保存。请刷新页面后重试。"), 400

    @app.errorhandler(405)
    def _405(err):
        return render_template("error.html", message="不支持这种请求方式"), 405

    @app.errorhandler(413)
    def _413(err):
        return render_template("error.html", message=f"提交的内容太大（上限 {MAX_CONTENT_LENGTH // 1024} KB），没有保存"), 413

    @app.errorhandler(500)
    def _500(err):
        return render_template("error.html", message="服务器内部错误，操作可能没有保存；请稍后重试或联系管理员"), 500

    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)

    @app.route("/")
    def _index():
        return redirect(url_for("review.queue"))

    return app
