"""Views: thin over :class:`triage.store.Store`."""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any, Callable
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, urlencode

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from triage import schema
from triage.normalize import mask_field, mask_pii
from triage.store import (
    HEAD_NAMES,
    MAX_NOTE_CHARS,
    ROLES,
    STATUSES,
    ConflictError,
    LabelError,
    LetterNotFound,
    NoteTooLong,
    QueueFilter,
    StoreError,
    UserError,
)

from .auth import can_see_pii, has_role, login_required, scope_department, store
from .highlight import masked_segments, resolve_spans

bp = Blueprint("review", __name__)

PER_PAGE = 50
#: keyboard key that focuses each head's label list
HEAD_KEYS = {"track": "t", "route": "g", "department": "d", "risk": "r"}
STATUS_FILTERS = {"todo": "未复核完（待复核＋部分复核）", "pending": "待复核", "partial": "部分复核", "done": "已复核", "all": "全部"}


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def _filter_args() -> MultiDict:
    """The queue filter travels as the query string (GET) or as the hidden field ``q`` (POST)."""
    if request.method == "POST":
        return MultiDict(parse_qsl(request.form.get("q", ""), keep_blank_values=False))
    return request.args


def parse_filter(args: MultiDict) -> QueueFilter:
    heads = store().heads
    f = QueueFilter()
    for h in ("department", "track", "risk"):
        v = (args.get(h) or "").strip()
        if v in heads[h].labels:
            setattr(f, h, v)
    status = args.get("status") or "todo"
    f.status = status if status in STATUS_FILTERS else "todo"
    for k in ("date_from", "date_to"):
        try:
            setattr(f, k, date.fromisoformat((args.get(k) or "").strip()))
        except ValueError:
            pass
    scope = scope_department()
    if scope:
        f.department = scope
    return f


def _q(f: QueueFilter) -> str:
    return urlencode(f.as_params())


def _letter_url(letter_id: str, f: QueueFilter, qs: str | None = None) -> str:
    """Same as url_for("review.letter", ...) but cheap enough for every queue row."""
    qs = _q(f) if qs is None else qs
    return f"{request.script_root}/letters/{quote(letter_id, safe='')}" + (f"?{qs}" if qs else "")


# --------------------------------------------------------------------------------------
# Queue
# --------------------------------------------------------------------------------------


@bp.route("/queue")
@login_required()
def queue():
    f = parse_filter(request.args)
    try:
        page = int(request.args.get("page", 1))
    except ValueError:
        page = 1
    result = store().queue(f, page=page, per_page=PER_PAGE, scope_department=scope_department())
    mask = None if can_see_pii() else mask_pii
    qs = _q(f)
    rows = []
    for r in result["rows"]:
        r["title_shown"] = mask(r["title"] or "") if mask else (r["title"] or "")
        r["url"] = _letter_url(r["id"], f, qs)
        rows.append(SimpleNamespace(**r))  # attribute access is much cheaper in Jinja than dict fallback
    result["rows"] = rows
    return render_template(
        "queue.html",
        f=f,
        q=_q(f),
        result=result,
        heads=store().heads,
        status_filters=STATUS_FILTERS,
        scope=scope_department(),
        page_url=lambda p: url_for("review.queue", page=p, **f.as_params()),
    )


@bp.route("/bulk-accept", methods=["POST"])
@login_required("supervisor")
def bulk_accept():
    f = parse_filter(_filter_args())
    try:
        threshold = float(request.form.get("min_confidence", "0.9"))
    except ValueError:
        threshold = -1.0
    if not 0.5 <= threshold <= 1.0:
        return render_template("error.html", message="置信度门槛应为 0.5 到 1 之间的数，没有接受任何建议"), 400
    accepted, skipped = store().bulk_accept(f, g.user["name"], threshold, scope_department())
    msg = f"已批量接受 {accepted} 件信访件的模型建议（置信度 ≥ {threshold:.2f}）"
    if skipped:
        msg += f"；{skipped} 件因正被他人修改或没有可接受的建议而跳过"
    flash(msg, "info")
    return redirect(url_for("review.queue", **f.as_params()), code=303)


# --------------------------------------------------------------------------------------
# Letter page
# --------------------------------------------------------------------------------------


def _alternatives(raw: Any, exclude: str | None, labels: tuple[str, ...]) -> list[tuple[str, float | None]]:
    try:
        items = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except ValueError:
        return []
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, (list, tuple)) and it:
            label = str(it[0])
            prob = float(it[1]) if len(it) > 1 and isinstance(it[1], (int, float)) else None
        else:
            label, prob = str(it), None
        if label != exclude and label in labels and label not in [a for a, _ in out]:
            out.append((label, prob))
    return out[:3]


def _head_views(letter: dict) -> list[SimpleNamespace]:
    sugg = letter["suggestion"] or {}
    heads = store().heads
    conf = {"track": sugg.get("track_confidence"), "department": sugg.get("department_confidence")}
    out = []
    for h in HEAD_NAMES:
        head = heads[h]
        human = letter["labels"][h]
        suggestion = sugg.get(h)
        out.append(
            SimpleNamespace(
                name=h,
                display=head.display,
                labels=head.labels,
                suggestion=suggestion,
                suggestion_valid=suggestion in head.labels,
                confidence=conf.get(h),
                human=human,
                current=human or suggestion,
                key=HEAD_KEYS[h],
                alternatives=_alternatives(sugg.get("department_alternatives"), suggestion, head.labels)
                if h == "department"
                else [],
            )
        )
    return out


def _neighbours(letter_id: str, f: QueueFilter) -> tuple[str | None, str | None]:
    return store().neighbours(letter_id, f, scope_department())


def _in_scope(letter: dict) -> bool:
    scope = scope_department()
    return not scope or store().effective_department(letter) == scope


def _load(letter_id: str) -> dict:
    try:
        letter = store().letter(letter_id)
    except LetterNotFound as exc:
        abort(404, description=str(exc))
    if not _in_scope(letter):
        abort(403)
    return letter


def render_letter(letter_id: str, *, status: int = 200, error: str | None = None, conflict: str | None = None):
    letter = _load(letter_id)
    f = parse_filter(_filter_args())
    prev_id, next_id = _neighbours(letter_id, f)
    pii = can_see_pii()
    mask = None if pii else mask_pii
    text = letter["text"] or ""
    spans = resolve_spans(letter["title"] or "", text, (letter["suggestion"] or {}).get("evidence"))
    segs = masked_segments(text, spans, mask)
    person = {}
    for name in ("petitioner", "id_number", "phone", "address"):
        v = letter.get(name) or ""
        person[schema.INPUT_BY_NAME[name].display] = v if pii else mask_field(name, v)
    history = letter["history"]
    if not pii:
        history = [{**e, "note": mask_pii(e["note"]) if e["note"] else e["note"]} for e in history]
    history = [SimpleNamespace(**e) for e in history]
    sugg = letter["suggestion"] or {}
    route_now = letter["labels"]["route"] or sugg.get("route")
    return (
        render_template(
            "letter.html",
            letter=letter,
            title=(letter["title"] or "") if pii else mask_pii(letter["title"] or ""),
            segments=segs,
            evidence_heads=sorted({h for _, _, h in spans}),
            person=person,
            heads=_head_views(letter),
            head_display={h: store().heads[h].display for h in HEAD_NAMES},
            history=history,
            sugg=sugg,
            guidance=schema.ROUTE_GUIDANCE.get(route_now or "", ""),
            q=_q(f),
            prev_url=_letter_url(prev_id, f) if prev_id else None,
            next_url=_letter_url(next_id, f) if next_id else None,
            next_id=next_id or "",
            queue_url=url_for("review.queue", **f.as_params()),
            error=error,
            conflict=conflict,
            pii=pii,
            max_note=MAX_NOTE_CHARS,
        ),
        status,
    )


@bp.route("/letters/<letter_id>")
@login_required()
def letter(letter_id: str):
    return render_letter(letter_id)


def decision(view: Callable) -> Callable:
    """Common handling of a decision POST: scope, version, errors, auto-advance."""

    @functools.wraps(view)
    def wrapped(letter_id: str):
        letter = _load(letter_id)
        raw = request.form.get("version", "")
        try:
            version = int(raw)
        except ValueError:
            return render_letter(letter_id, status=400, error="表单缺少版本号或版本号无效，操作没有保存；请刷新页面后重试")
        try:
            message = view(letter, version)
        except ConflictError as exc:
            return render_letter(letter_id, status=409, conflict=str(exc))
        except (LabelError, NoteTooLong, UserError, StoreError) as exc:
            return render_letter(letter_id, status=400, error=f"{exc}。操作没有保存。")
        flash(message, "info")
        f = parse_filter(_filter_args())
        nxt = request.form.get("next", "")
        if request.form.get("advance") == "1" and nxt and nxt != letter_id and _exists(nxt):
            return redirect(_letter_url(nxt, f), code=303)
        if not _in_scope(store().letter(letter_id)):
            flash("该件已改派到其他单位，已移出您的队列", "info")
            return redirect(url_for("review.queue", **f.as_params()), code=303)
        return redirect(_letter_url(letter_id, f), code=303)

    return wrapped


def _exists(letter_id: str) -> bool:
    try:
        store().letter(letter_id)
    except LetterNotFound:
        return False
    return True


@bp.route("/letters/<letter_id>/accept", methods=["POST"])
@login_required()
@decision
def accept(letter: dict, version: int) -> str:
    head = request.form.get("head", "")
    if not head:
        store().accept_all(letter["id"], g.user["name"], expected_version=version)
        return f"已接受 {letter['id']} 的全部模型建议"
    h = store().head(head)
    label = request.form.get("label", "")
    shown = (letter["suggestion"] or {}).get(head)
    store().check_label(head, label)
    if label != shown:
        raise LabelError(f"“{h.display}”的模型建议是“{shown or '无'}”，不是“{label}”；接受只能接受模型建议，改成其他标签请用“改正”")
    store().add_event(letter["id"], head, label, g.user["name"], "accept", expected_version=version)
    return f"已接受{h.display}：{label}"


@bp.route("/letters/<letter_id>/correct", methods=["POST"])
@login_required()
@decision
def correct(letter: dict, version: int) -> str:
    head = request.form.get("head", "")
    label = request.form.get("label", "")
    h = store().head(head)
    store().add_event(letter["id"], head, label, g.user["name"], "correct", expected_version=version)
    return f"已改正{h.display}：{label}"


@bp.route("/letters/<letter_id>/note", methods=["POST"])
@login_required()
@decision
def note(letter: dict, version: int) -> str:
    text = request.form.get("note", "")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteTooLong(f"备注太长：最多 {MAX_NOTE_CHARS} 字，实际 {len(text)} 字")
    head = request.form.get("head") or None
    store().add_event(letter["id"], head, None, g.user["name"], "note", expected_version=version, note=text)
    return "已添加备注"


# --------------------------------------------------------------------------------------
# Users (admin)
# --------------------------------------------------------------------------------------


def _render_users(status: int = 200, error: str | None = None):
    return (
        render_template(
            "users.html", users=store().users(), roles=ROLES, departments=store().heads["department"].labels, error=error
        ),
        status,
    )


@bp.route("/admin/users")
@login_required("admin")
def users():
    return _render_users()


@bp.route("/admin/users", methods=["POST"])
@login_required("admin")
def add_user():
    try:
        store().add_user(
            request.form.get("name", ""),
            request.form.get("role", ""),
            request.form.get("password", ""),
            request.form.get("department") or None,
        )
    except UserError as exc:
        return _render_users(400, f"{exc}。没有添加用户。")
    flash(f"已添加用户 {request.form.get('name', '').strip()}", "info")
    return redirect(url_for("review.users"), code=303)


@bp.route("/admin/users/<name>", methods=["POST"])
@login_required("admin")
def update_user(name: str):
    role = request.form.get("role") or None
    active = request.form.get("active")
    if name == g.user["name"] and ((role and role != "admin") or active == "0"):
        return _render_users(400, "不能取消自己的管理员角色或停用自己。没有修改。")
    try:
        store().update_user(
            name,
            role=role,
            department=request.form.get("department") or None,
            password=request.form.get("password") or None,
            active=None if active is None else active == "1",
        )
    except UserError as exc:
        return _render_users(400, f"{exc}。没有修改。")
    flash(f"已更新用户 {name}", "info")
    return redirect(url_for("review.users"), code=303)


@bp.app_errorhandler(403)
def _forbidden(err):
    return render_template("error.html", message="没有权限查看此信访件（它不属于您所在的单位）"), 403


@bp.app_errorhandler(404)
def _not_found(err):
    desc = getattr(err, "description", "") or ""
    msg = desc if desc.startswith("找不到") else "页面不存在"
    return render_template("error.html", message=msg), 404
