"""The review database: letters, the scorer's suggestions, and the clerks' decisions.

Human decisions are append-only *events* (accept / correct / note / import); a letter's
current label for a head is its latest decision event.  The scorer's suggestions live in
their own table keyed by (letter, model version) and are never stored as a human label:
re-scoring replaces suggestions and leaves every decision alone.

Every decision carries the letter's *review version*; a decision made on a stale version
raises :class:`ConflictError` instead of silently overwriting another clerk's work.

The schema is created and upgraded by :func:`open_store`, which runs the package's alembic
migrations programmatically.  SQLite (default, a file) and PostgreSQL (``postgresql://``,
driven by psycopg 3) are both supported.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from werkzeug.security import check_password_hash, generate_password_hash

from triage import active, schema

DEFAULT_URL = "sqlite:///triage.db"
#: decision heads, in display order
HEAD_NAMES: tuple[str, ...] = ("track", "route", "department", "risk")
KINDS: tuple[str, ...] = ("accept", "correct", "note", "import")
DECISION_KINDS: tuple[str, ...] = ("accept", "correct", "import")
KIND_DISPLAY = {"accept": "接受", "correct": "改正", "note": "备注", "import": "导入"}
ROLES: tuple[str, ...] = ("clerk", "supervisor", "admin")
ROLE_DISPLAY = {"clerk": "办理员", "supervisor": "主管", "admin": "管理员"}
STATUSES: tuple[str, ...] = ("pending", "partial", "done")
STATUS_DISPLAY = {"pending": "待复核", "partial": "部分复核", "done": "已复核"}
MAX_NOTE_CHARS = 2000
MIN_PASSWORD_CHARS = 8
RISK_RANK = {"低": 0, "中": 1, "高": 2}
#: stands in for a missing received date in the queue's sort key (undated letters last)
NO_DATE = datetime(9999, 12, 31)

# Login throttling: the first FREE_FAILURES failures cost nothing; after that each failure
# locks the (username, address) pair for LOCK_BASE_S * 2**k seconds, at most LOCK_MAX_S.
FREE_FAILURES = 3
LOCK_BASE_S = 30.0
LOCK_MAX_S = 3600.0
FAILURE_MEMORY_S = 3600.0


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class StoreError(ValueError):
    """A request the store refuses; the message is for the clerk (Chinese)."""


class LetterNotFound(StoreError, LookupError):
    def __init__(self, letter_id: str) -> None:
        self.letter_id = letter_id
        super().__init__(f"找不到编号为“{letter_id}”的信访件")


class LabelError(StoreError):
    """A head or label outside the schema."""


class NoteTooLong(StoreError):
    pass


class UserError(StoreError):
    pass


class ConflictError(StoreError):
    """The letter changed since the form was shown (another clerk decided first)."""

    def __init__(self, letter_id: str, expected: int, current: int, by: str | None = None) -> None:
        self.letter_id = letter_id
        self.expected = expected
        self.current = current
        self.by = by
        who = f"已被 {by} 修改" if by else "已被他人修改"
        super().__init__(
            f"信访件“{letter_id}”在您打开之后{who}（您看到的是第 {expected} 版，现在是第 {current} 版）。"
            "您的操作没有保存，请核对下面的最新内容后重新操作。"
        )


@dataclass(frozen=True)
class SkippedRecord:
    """A scored record :meth:`Store.upsert_scored` did not store; the rest of the call was stored.

    ``index`` is the record's position (0-based) in the sequence passed; ``column`` the field
    that could not be stored; ``reason`` says why, in Chinese, without the record's values
    (an over-long id may be a pasted letter text with a phone or ID number in it).
    """

    index: int
    column: str
    reason: str


@dataclass(frozen=True)
class UpsertResult:
    """What :meth:`Store.upsert_scored` did: ``stored`` letters written (distinct ids),
    ``skipped`` records left out, and ``cut``: column name -> number of letters whose value
    was cut to that column's length."""

    stored: int
    skipped: tuple[SkippedRecord, ...] = ()
    cut: Mapping[str, int] = field(default_factory=dict)

    def __int__(self) -> int:
        return self.stored


# --------------------------------------------------------------------------------------
# Tables (created by migrations/versions; these mirror them for queries)
# --------------------------------------------------------------------------------------

metadata = sa.MetaData()
_ID = sa.String(200)
_LABEL = sa.String(100)

letters = sa.Table(
    "letters",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("received_at", sa.DateTime),
    sa.Column("channel", sa.String(50)),
    sa.Column("petitioner", sa.Text),
    sa.Column("id_number", sa.String(64)),
    sa.Column("phone", sa.String(64)),
    sa.Column("address", sa.Text),
    sa.Column("num_people", sa.Integer),
    sa.Column("model_version", sa.String(100)),
    sa.Column("version", sa.Integer),
    sa.Column("status", sa.String(16)),
    *(sa.Column(f"label_{h}", _LABEL) for h in HEAD_NAMES),
    *(sa.Column(f"eff_{h}", _LABEL) for h in HEAD_NAMES),
    sa.Column("q_rank", sa.Integer),
    sa.Column("q_unc", sa.Float),
    sa.Column("q_received", sa.DateTime),
    sa.Column("decided_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
)
suggestions = sa.Table(
    "suggestions",
    metadata,
    sa.Column("letter_id", _ID, primary_key=True),
    sa.Column("model_version", sa.String(100), primary_key=True),
    sa.Column("batch_id", sa.String(200)),
    sa.Column("scored_at", sa.DateTime),
    sa.Column("track", _LABEL),
    sa.Column("track_confidence", sa.Float),
    sa.Column("route", _LABEL),
    sa.Column("route_guidance", sa.Text),
    sa.Column("department", _LABEL),
    sa.Column("department_confidence", sa.Float),
    sa.Column("department_alternatives", sa.Text),
    sa.Column("risk", _LABEL),
    sa.Column("risk_score", sa.Float),
    sa.Column("risk_reasons", sa.Text),
    sa.Column("evidence", sa.Text),
    sa.Column("needs_review", sa.Boolean),
    sa.Column("error", sa.Text),
    sa.Column("risk_rank", sa.Integer),
    sa.Column("uncertainty", sa.Float),
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("letter_id", _ID),
    sa.Column("head", sa.String(32)),
    sa.Column("kind", sa.String(16)),
    sa.Column("old_label", _LABEL),
    sa.Column("new_label", _LABEL),
    sa.Column("note", sa.Text),
    sa.Column("user_name", sa.String(100)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("model_version", sa.String(100)),
)
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(16)),
    sa.Column("password_hash", sa.String(300)),
    sa.Column("department", _LABEL),
    sa.Column("active", sa.Boolean),
    sa.Column("created_at", sa.DateTime),
)
batches_table = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_id", sa.String(200), primary_key=True),
    sa.Column("model_version", sa.String(100)),
    sa.Column("stats", sa.Text),
    sa.Column("created_at", sa.DateTime),
)
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("failures", sa.Integer),
    sa.Column("last_at", sa.Float),
    sa.Column("locked_until", sa.Float),
)
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text),
)

_SUGGESTION_FIELDS = (
    "track",
    "track_confidence",
    "route",
    "route_guidance",
    "department",
    "department_confidence",
    "department_alternatives",
    "risk",
    "risk_score",
    "risk_reasons",
    "evidence",
    "needs_review",
    "error",
)
_LETTER_FIELDS = tuple(f.name for f in schema.INPUT_FIELDS)


# --------------------------------------------------------------------------------------
# Small value helpers
# --------------------------------------------------------------------------------------


def utcnow() -> datetime:
    """Naive UTC, as stored in the database."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _opt_str(v: Any) -> str | None:
    if _is_missing(v):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _opt_float(v: Any) -> float | None:
    if _is_missing(v) or (isinstance(v, str) and not v.strip()):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _opt_int(v: Any) -> int | None:
    f = _opt_float(v)
    return None if f is None or not math.isfinite(f) else int(f)


def _opt_datetime(v: Any) -> datetime | None:
    if _is_missing(v) or (isinstance(v, str) and not v.strip()):
        return None
    ts = pd.to_datetime(v, errors="coerce")
    if ts is None or pd.isna(ts):
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _truthy(v: Any) -> bool:
    if _is_missing(v):
        return False
    if isinstance(v, str):
        return v.strip().lower() in {"1", "true", "yes", "y", "是", "需要", "需复核", "t"}
    return bool(v)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"无法写成 JSON：{type(o).__name__}")


def _json_text(v: Any) -> str | None:
    if isinstance(v, (list, dict, tuple)):
        return json.dumps(v, ensure_ascii=False, default=_json_default)
    if _is_missing(v):
        return None
    if isinstance(v, str):
        return v.strip() or None
    return json.dumps(v, ensure_ascii=False, default=_json_default)


def _reasons_text(v: Any) -> str | None:
    if isinstance(v, (list, tuple)):
        return "|".join(str(x) for x in v) or None
    return _opt_str(v)


_INT32 = (-(2**31), 2**31 - 1)  # sa.Integer is 4 bytes on PostgreSQL
_CUT_TRIM = " \t,，、;；/|"


def _clean_text(v: str) -> str:
    """Drop NUL characters and replace lone surrogates (U+FFFD): PostgreSQL refuses the first
    and the UTF-8 encoder the second, either of which would fail the whole statement."""
    if "\x00" in v:
        v = v.replace("\x00", "")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            v = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in v)
    return v


def _cut(v: str, n: int) -> str:
    """``v`` cut to ``n`` characters; a cut inside a run of ASCII letters/digits (a phone or ID
    number among several in one cell) backs off to the separator before it, so no partial
    number is kept, unless the whole kept part is one such run."""
    if len(v) <= n:
        return v
    kept = v[:n]
    if _alnum(kept[-1]) and _alnum(v[n]):
        k = len(kept)
        while k and _alnum(kept[k - 1]):
            k -= 1
        if kept[:k].rstrip(_CUT_TRIM):
            kept = kept[:k]
    return kept.rstrip(_CUT_TRIM) or kept


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _limits(table: sa.Table, keys: Iterable[str]) -> tuple[dict[str, int], frozenset[str]]:
    """(column -> String length, Integer columns) of ``table``, leaving out ``keys``."""
    lengths = {
        c.name: c.type.length
        for c in table.columns
        if isinstance(c.type, sa.String) and c.type.length and c.name not in keys
    }
    ints = frozenset(c.name for c in table.columns if isinstance(c.type, sa.Integer) and c.name not in keys)
    return lengths, ints


def _fit_row(row: dict[str, Any], limits: tuple[dict[str, int], frozenset[str]], cut: dict[str, int]) -> None:
    """Fit ``row``'s values to its table's columns in place: text cleaned (:func:`_clean_text`),
    over-long bounded strings cut to the column's length (counted in ``cut``), integers outside
    the column's range dropped (None)."""
    lengths, ints = limits
    for name, v in row.items():
        if isinstance(v, str):
            v = _clean_text(v)
            n = lengths.get(name)
            if n is not None and len(v) > n:
                v = _cut(v, n)
                cut[name] = cut.get(name, 0) + 1
            row[name] = v
        elif name in ints and isinstance(v, int) and not (_INT32[0] <= v <= _INT32[1]):
            row[name] = None


def normalize_url(url: str | None) -> str:
    """``postgresql://`` (or ``postgres://``) means psycopg 3; anything else goes to SQLAlchemy as is."""
    url = (url or DEFAULT_URL).strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if "://" not in url:  # a bare path means a SQLite file
        return "sqlite:///" + url
    return url


# --------------------------------------------------------------------------------------
# Queue filters
# --------------------------------------------------------------------------------------


@dataclass
class QueueFilter:
    """What the queue shows.  ``status``: todo (pending + partial), pending, partial, done or all."""

    department: str | None = None
    track: str | None = None
    risk: str | None = None
    status: str = "todo"
    date_from: date | None = None
    date_to: date | None = None

    def as_params(self) -> dict[str, str]:
        out = {}
        for k in ("department", "track", "risk", "status"):
            v = getattr(self, k)
            if v:
                out[k] = v
        if self.date_from:
            out["date_from"] = self.date_from.isoformat()
        if self.date_to:
            out["date_to"] = self.date_to.isoformat()
        return out


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


class Store:
    """All reads and writes of the review database.  Thread-safe (one engine, short transactions)."""

    #: werkzeug.security hashing method for new passwords (tests may choose a cheaper one)
    password_method = "scrypt"

    def __init__(self, engine: sa.Engine, taxonomy: str | Path | None = None) -> None:
        self.engine = engine
        self._taxonomy = taxonomy
        self._heads: dict[str, schema.Head] | None = None
        # SQLite allows one writer: a transaction that reads, then writes, fails at once with
        # "database is locked" when another writer got in between (its busy handler is not
        # used for that upgrade).  Writers in this process therefore queue on a lock.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction (serialised per process on SQLite)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # ---- heads ------------------------------------------------------------------------

    @property
    def heads(self) -> dict[str, schema.Head]:
        if self._heads is None:
            heads = schema.default_heads(self._taxonomy)
            self._heads = {h: heads[h] for h in HEAD_NAMES}
        return self._heads

    def head(self, name: str) -> schema.Head:
        if name not in self.heads:
            raise LabelError(f"没有“{name}”这一项；应为：{' / '.join(self.heads)}")
        return self.heads[name]

    def check_label(self, head: str, label: str | None) -> str:
        h = self.head(head)
        if label is None or str(label).strip() not in h.labels:
            raise LabelError(f"“{h.display}”的标签“{label}”不在标签集中；应为：{' / '.join(h.labels)}")
        return str(label).strip()

    def recompute_uncertainty(self) -> int:
        """:func:`recompute_uncertainty` on this store (under the writers' lock)."""
        with self._writing() as conn:
            return recompute_uncertainty(conn)

    def close(self) -> None:
        self.engine.dispose()

    # ---- scorer side -------------------------------------------------------------------

    def upsert_scored(self, records: Sequence[Mapping[str, Any]], model_version: str, batch_id: str) -> UpsertResult:
        """Store scored letters: input fields and this model version's suggestions.

        Keyed by (letter id, model version).  The letter's input fields are refreshed, its
        queue shows this model version's suggestions, and its review version is bumped so an
        open form made on the old suggestions is caught.  Decision events are never touched.

        Values are fitted to the columns, the same on SQLite and PostgreSQL (lengths are read
        from the table definitions): a bounded text (channel, phone, id_number, batch id,
        labels) longer than its column is cut to the column's length (at a separator, when
        the cut would split a number; counted in ``cut``); NUL characters are dropped and lone
        surrogates replaced; an integer outside the column's range is left empty.

        Records this call cannot store are skipped, never merged or cut, and the others are
        stored: an id longer than the id column (cutting it could merge two letters), or a
        row the database still refuses (then the call is redone one letter per transaction
        to find it).  Each appears in ``skipped`` with its position in ``records``.

        Two records with the same id in one call: the later one wins (one letter, counted once).

        Returns :class:`UpsertResult`.  Raises :class:`schema.SchemaError` for a record with no
        id and :class:`StoreError` for a missing or over-long ``model_version``; nothing is
        stored then.
        """
        if not model_version:
            raise StoreError("缺少模型版本（model_version）")
        _check_version(model_version)
        now = utcnow()
        id_max = min(letters.c.id.type.length, suggestions.c.letter_id.type.length)
        letter_rows: dict[str, dict] = {}
        sugg_rows: dict[str, dict] = {}
        index_of: dict[str, int] = {}
        skipped: list[SkippedRecord] = []
        cut: dict[str, int] = {}
        for i, r in enumerate(records):
            lid = _opt_str(r.get("id"))
            lid = lid and _clean_text(lid).strip()
            if not lid:
                raise schema.SchemaError("记录缺少编号", row=i + 1, column="id", expected="非空编号", found=repr(r.get("id")))
            if len(lid) > id_max:
                skipped.append(
                    SkippedRecord(i, "id", f"编号过长：应不超过 {id_max} 个字符，实为 {len(lid)} 个字符；未入库（截断可能使两件信访件合并）")
                )
                continue
            index_of.pop(lid, None)  # a later duplicate takes the earlier one's place
            index_of[lid] = i
            letter_rows[lid] = {
                "id": lid,
                "title": _opt_str(r.get("title")) or "",
                "text": "" if _is_missing(r.get("text")) else str(r.get("text")),
                "received_at": _opt_datetime(r.get("received_at")),
                "channel": _opt_str(r.get("channel")),
                "petitioner": _opt_str(r.get("petitioner")),
                "id_number": _opt_str(r.get("id_number")),
                "phone": _opt_str(r.get("phone")),
                "address": _opt_str(r.get("address")),
                "num_people": _opt_int(r.get("num_people")),
                "model_version": model_version,
                "version": 0,
                "status": "pending",
                **{f"eff_{h}": _opt_str(r.get(h)) for h in HEAD_NAMES},
                "q_rank": -RISK_RANK.get(_opt_str(r.get("risk")) or "", 0),
                "q_received": _opt_datetime(r.get("received_at")) or NO_DATE,
                "created_at": now,
                "updated_at": now,
            }
            risk = _opt_str(r.get("risk"))
            sugg_rows[lid] = {
                "letter_id": lid,
                "model_version": model_version,
                "batch_id": batch_id,
                "scored_at": now,
                "track": _opt_str(r.get("track")),
                "track_confidence": _opt_float(r.get("track_confidence")),
                "route": _opt_str(r.get("route")),
                "route_guidance": _opt_str(r.get("route_guidance")),
                "department": _opt_str(r.get("department")),
                "department_confidence": _opt_float(r.get("department_confidence")),
                "department_alternatives": _json_text(r.get("department_alternatives")),
                "risk": risk,
                "risk_score": _opt_float(r.get("risk_score")),
                "risk_reasons": _reasons_text(r.get("risk_reasons")),
                "evidence": _json_text(r.get("evidence")),
                "needs_review": _truthy(r.get("needs_review")),
                "error": _opt_str(r.get("error")),
                "risk_rank": RISK_RANK.get(risk or "", 0),
                # the queue's order: margin uncertainty of the least certain head (triage.active,
                # the measure bench/learning_curve.py shows teaches the model fastest)
                "uncertainty": active.letter_uncertainty(r),
            }
        if not letter_rows:
            return UpsertResult(0, tuple(skipped), cut)
        l_limits = _limits(letters, ("id",))
        s_limits = _limits(suggestions, ("letter_id", "model_version"))
        for lid, row in letter_rows.items():
            row["q_unc"] = -sugg_rows[lid]["uncertainty"]
            _fit_row(row, l_limits, cut)
            _fit_row(sugg_rows[lid], s_limits, cut)
        ins_l = self._insert(letters)
        eff_risk = sa.func.coalesce(letters.c.label_risk, ins_l.excluded.eff_risk)
        ins_l = ins_l.on_conflict_do_update(
            index_elements=["id"],
            set_={
                **{f: ins_l.excluded[f] for f in _LETTER_FIELDS if f != "id"},
                **{f"eff_{h}": sa.func.coalesce(letters.c[f"label_{h}"], ins_l.excluded[f"eff_{h}"]) for h in HEAD_NAMES},
                "q_rank": sa.case((eff_risk == "高", -2), (eff_risk == "中", -1), else_=0),
                "q_unc": ins_l.excluded.q_unc,
                "q_received": ins_l.excluded.q_received,
                "model_version": ins_l.excluded.model_version,
                "version": letters.c.version + 1,
                "updated_at": ins_l.excluded.updated_at,
            },
        )
        ins_s = self._insert(suggestions)
        ins_s = ins_s.on_conflict_do_update(
            index_elements=["letter_id", "model_version"],
            set_={c.name: ins_s.excluded[c.name] for c in suggestions.c if c.name not in ("letter_id", "model_version")},
        )

        def write(lrows: list[dict], srows: list[dict]) -> None:
            with self._writing() as conn:
                for start in range(0, len(lrows), 500):
                    conn.execute(ins_l, lrows[start : start + 500])
                    conn.execute(ins_s, srows[start : start + 500])

        lids = list(letter_rows)
        try:  # the whole call in one transaction
            write([letter_rows[k] for k in lids], [sugg_rows[k] for k in lids])
            stored = len(lids)
        except (sa.exc.DataError, sa.exc.IntegrityError):
            # a value the fitting above did not foresee: nothing was written; redo one letter
            # per transaction and skip the ones the database refuses
            stored = 0
            for k in lids:
                try:
                    write([letter_rows[k]], [sugg_rows[k]])
                    stored += 1
                except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
                    skipped.append(SkippedRecord(index_of[k], "", f"数据库拒绝此行（{type(exc.orig).__name__}）；未入库"))
            skipped.sort(key=lambda x: x.index)
        return UpsertResult(stored, tuple(skipped), cut)

    def record_batch(self, batch_id: str, model_version: str, stats: Mapping[str, Any]) -> None:
        """Keep a batch's predicted label distribution and confidence statistics (for drift checks).

        A batch id longer than its column is cut as :meth:`upsert_scored` cuts it."""
        _check_version(str(model_version))
        ins = self._insert(batches_table)
        # cut like the suggestions' batch_id (upsert_scored), so the two still match
        row = {
            "batch_id": _cut(_clean_text(str(batch_id)), batches_table.c.batch_id.type.length),
            "model_version": str(model_version),
            "stats": json.dumps(stats, ensure_ascii=False, default=_json_default),
            "created_at": utcnow(),
        }
        ins = ins.on_conflict_do_update(
            index_elements=["batch_id"], set_={k: ins.excluded[k] for k in ("model_version", "stats", "created_at")}
        )
        with self._writing() as conn:
            conn.execute(ins, row)

    def batches(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(batches_table).order_by(batches_table.c.created_at, batches_table.c.batch_id)
            ).mappings().all()
        return [{**r, "stats": json.loads(r["stats"])} for r in rows]

    # ---- decisions --------------------------------------------------------------------

    def add_event(
        self,
        letter_id: str,
        head: str | None,
        new_label: str | None,
        user: str,
        kind: str,
        expected_version: int | None = None,
        note: str | None = None,
    ) -> int:
        """Record one human decision (or note); returns the letter's new review version.

        ``expected_version`` is the review version the clerk's form was made from; if the
        letter changed since, nothing is recorded and :class:`ConflictError` is raised.
        """
        if kind == "note":
            note = (note or "").strip()
            if not note:
                raise StoreError("备注不能为空")
            if head is not None and head != "":
                self.head(head)
            else:
                head = None
            if new_label not in (None, ""):
                raise StoreError("备注不改变标签；改标签请用“改正”")
            decisions: list[tuple[str | None, str | None]] = [(head, None)]
        elif kind in DECISION_KINDS:
            decisions = [(head, self.check_label(head or "", new_label))]
        else:
            raise StoreError(f"未知的操作“{kind}”；应为：{' / '.join(KINDS)}")
        return self.add_events(letter_id, decisions, user, kind, expected_version, note)

    def add_events(
        self,
        letter_id: str,
        decisions: Sequence[tuple[str | None, str | None]],
        user: str,
        kind: str,
        expected_version: int | None = None,
        note: str | None = None,
    ) -> int:
        """Several decisions on one letter in one transaction, one version check."""
        if kind not in KINDS:
            raise StoreError(f"未知的操作“{kind}”；应为：{' / '.join(KINDS)}")
        if not user:
            raise UserError("缺少操作用户")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise NoteTooLong(f"备注太长：最多 {MAX_NOTE_CHARS} 字，实际 {len(note)} 字")
        checked = []
        for head, label in decisions:
            if kind == "note":
                checked.append((head, None))
            else:
                checked.append((head, self.check_label(head or "", label)))
        if not checked:
            raise StoreError("没有要保存的决定")
        with self._writing() as conn:
            version = self._bump(conn, letter_id, expected_version)
            self._write_events(conn, letter_id, checked, user, kind, note)
        return version

    def accept_all(self, letter_id: str, user: str, expected_version: int | None = None) -> int:
        """Accept the shown suggestion of every head a human has not decided yet."""
        with self._writing() as conn:
            version = self._bump(conn, letter_id, expected_version)
            letter = conn.execute(sa.select(letters).where(letters.c.id == letter_id)).mappings().one()
            sugg = self._suggestion(conn, letter)
            decisions = self._acceptable(letter, sugg)
            if not decisions:
                raise StoreError("没有可接受的建议：各项都已复核，或模型没有给出建议")
            self._write_events(conn, letter_id, decisions, user, "accept", None)
        return version

    def bulk_accept(
        self, filters: QueueFilter, user: str, min_confidence: float, scope_department: str | None = None
    ) -> tuple[int, int]:
        """Accept all suggestions of letters in the filtered set whose confidences all reach
        ``min_confidence`` and which the scorer did not flag for review.  Returns (accepted, skipped)."""
        if not 0.0 < min_confidence <= 1.0:
            raise StoreError(f"置信度门槛应在 0 到 1 之间，实际为 {min_confidence}")
        f = QueueFilter(**{**filters.__dict__})
        if f.status in ("all", "done"):
            f.status = "todo"
        s = suggestions
        q = self._queue_select(f, scope_department, [letters.c.id, letters.c.version]).where(
            s.c.track_confidence >= min_confidence,
            s.c.department_confidence >= min_confidence,
            s.c.needs_review == sa.false(),
            s.c.error.is_(None),
        )
        with self.engine.connect() as conn:
            candidates = conn.execute(q).all()
        accepted = skipped = 0
        for lid, version in candidates:
            try:
                self.accept_all(lid, user, expected_version=version)
                accepted += 1
            except (ConflictError, StoreError):
                skipped += 1
        return accepted, skipped

    def _bump(self, conn: sa.Connection, letter_id: str, expected_version: int | None) -> int:
        """Write first (so SQLite takes its write lock at once), checking the version atomically."""
        cond = [letters.c.id == letter_id]
        if expected_version is not None:
            cond.append(letters.c.version == int(expected_version))
        res = conn.execute(sa.update(letters).where(*cond).values(version=letters.c.version + 1, updated_at=utcnow()))
        if res.rowcount == 0:
            row = conn.execute(sa.select(letters.c.version).where(letters.c.id == letter_id)).first()
            if row is None:
                raise LetterNotFound(letter_id)
            by = conn.execute(
                sa.select(events.c.user_name).where(events.c.letter_id == letter_id).order_by(events.c.id.desc()).limit(1)
            ).scalar()
            raise ConflictError(letter_id, int(expected_version), int(row[0]), by)
        return conn.execute(sa.select(letters.c.version).where(letters.c.id == letter_id)).scalar_one()

    def _suggestion(self, conn: sa.Connection, letter: Mapping[str, Any]) -> dict | None:
        if not letter["model_version"]:
            return None
        row = conn.execute(
            sa.select(suggestions).where(
                suggestions.c.letter_id == letter["id"], suggestions.c.model_version == letter["model_version"]
            )
        ).mappings().first()
        return dict(row) if row else None

    def _acceptable(self, letter: Mapping[str, Any], sugg: Mapping[str, Any] | None) -> list[tuple[str, str]]:
        if not sugg:
            return []
        out = []
        track = letter["label_track"] or sugg.get("track")
        for h in HEAD_NAMES:
            if letter[f"label_{h}"]:
                continue
            value = sugg.get(h)
            if h == "route" and track != schema.TRACK_LITIGATION:
                continue
            if value and value in self.heads[h].labels:
                out.append((h, value))
        return out

    def _write_events(
        self,
        conn: sa.Connection,
        letter_id: str,
        decisions: Sequence[tuple[str | None, str | None]],
        user: str,
        kind: str,
        note: str | None,
    ) -> None:
        now = utcnow()
        letter = dict(conn.execute(sa.select(letters).where(letters.c.id == letter_id)).mappings().one())
        sugg = self._suggestion(conn, letter)
        rows = []
        changes: dict[str, Any] = {}
        for head, label in decisions:
            old = None
            if head:
                old = letter[f"label_{head}"] or (sugg or {}).get(head)
            rows.append(
                {
                    "letter_id": letter_id,
                    "head": head,
                    "kind": kind,
                    "old_label": old,
                    "new_label": label,
                    "note": note,
                    "user_name": user,
                    "created_at": now,
                    "model_version": letter["model_version"],
                }
            )
            if kind != "note" and head:
                letter[f"label_{head}"] = label
                changes[f"label_{head}"] = label
                changes[f"eff_{head}"] = label
                if head == "risk":
                    changes["q_rank"] = -RISK_RANK.get(label or "", 0)
        conn.execute(sa.insert(events), rows)
        if changes:
            changes["decided_at"] = now
            changes["status"] = _status(letter, sugg)
            conn.execute(sa.update(letters).where(letters.c.id == letter_id).values(**changes))

    # ---- reading decisions -------------------------------------------------------------

    def _latest_decisions(self, conn: sa.Connection, letter_ids: Iterable[str] | None = None) -> pd.DataFrame:
        e = events
        latest = (
            sa.select(sa.func.max(e.c.id).label("id"))
            .where(e.c.kind.in_(DECISION_KINDS), e.c.head.is_not(None))
            .group_by(e.c.letter_id, e.c.head)
        )
        if letter_ids is not None:
            latest = latest.where(e.c.letter_id.in_(list(letter_ids)))
        q = sa.select(
            e.c.letter_id,
            e.c.head,
            e.c.new_label.label("label"),
            e.c.user_name.label("user"),
            e.c.created_at.label("decided_at"),
            e.c.model_version,
        ).where(e.c.id.in_(latest.scalar_subquery())).order_by(e.c.letter_id, e.c.head)
        rows = conn.execute(q).all()
        df = pd.DataFrame(rows, columns=["letter_id", "head", "label", "user", "decided_at", "model_version"])
        df["decided_at"] = pd.to_datetime(df["decided_at"])
        return df

    def current_labels(self) -> pd.DataFrame:
        """Latest human decision per (letter, head): letter_id, head, label, user, decided_at, model_version.

        Notes are not decisions; machine suggestions are never included.  Times are UTC.
        """
        with self.engine.connect() as conn:
            return self._latest_decisions(conn)

    def reviewed_letters(self) -> pd.DataFrame:
        """One row per letter with at least one human label: id, title, text, received_at,
        track, route, department, risk (None where a head is not reviewed), decided_at."""
        cols = ["id", "title", "text", "received_at", *HEAD_NAMES, "decided_at"]
        with self.engine.connect() as conn:
            cur = self._latest_decisions(conn)
            if cur.empty:
                return pd.DataFrame(columns=cols)
            ids = sorted(cur["letter_id"].unique())
            base = pd.DataFrame(
                conn.execute(
                    sa.select(letters.c.id, letters.c.title, letters.c.text, letters.c.received_at).where(letters.c.id.in_(ids))
                ).all(),
                columns=["id", "title", "text", "received_at"],
            )
        wide = cur.pivot(index="letter_id", columns="head", values="label")
        wide = wide.reindex(columns=list(HEAD_NAMES)).astype(object).where(wide.notna(), None)
        when = cur.groupby("letter_id")["decided_at"].max().rename("decided_at")
        out = base.set_index("id").join(wide).join(when).reset_index().rename(columns={"index": "id"})
        out = out[cols].sort_values("id").reset_index(drop=True)
        for h in HEAD_NAMES:
            out[h] = out[h].astype(object).where(out[h].notna(), None)
        return out

    def history(self, letter_id: str) -> list[dict]:
        """All events of a letter, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events).where(events.c.letter_id == letter_id).order_by(events.c.id.desc())
            ).mappings().all()
        return [dict(r) for r in rows]

    # ---- letters and the queue ---------------------------------------------------------

    def letter(self, letter_id: str) -> dict:
        """A letter with its latest suggestion (``suggestion``), human labels (``labels``) and history."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(letters).where(letters.c.id == letter_id)).mappings().first()
            if row is None:
                raise LetterNotFound(letter_id)
            out = dict(row)
            out["suggestion"] = self._suggestion(conn, row)
        out["labels"] = {h: out[f"label_{h}"] for h in HEAD_NAMES}
        out["history"] = self.history(letter_id)
        return out

    def _effective(self, head: str) -> sa.ColumnElement:
        """The human label if there is one, else the shown suggestion (kept on the letter row)."""
        return letters.c[f"eff_{head}"]

    def _queue_select(self, f: QueueFilter, scope_department: str | None, columns: list, *, join: bool = True) -> sa.Select:
        """Letters matching the filter; ``join`` brings in the shown suggestion's columns."""
        if join:
            j = letters.outerjoin(
                suggestions,
                sa.and_(suggestions.c.letter_id == letters.c.id, suggestions.c.model_version == letters.c.model_version),
            )
            q = sa.select(*columns).select_from(j)
        else:
            q = sa.select(*columns)
        if scope_department:
            q = q.where(self._effective("department") == scope_department)
        for head in ("department", "track", "risk"):
            v = getattr(f, head)
            if v:
                q = q.where(self._effective(head) == v)
        if f.status == "todo":
            q = q.where(letters.c.status != "done")
        elif f.status in STATUSES:
            q = q.where(letters.c.status == f.status)
        if f.date_from:
            q = q.where(letters.c.received_at >= datetime.combine(f.date_from, datetime.min.time()))
        if f.date_to:
            q = q.where(letters.c.received_at < datetime.combine(f.date_to + timedelta(days=1), datetime.min.time()))
        return q

    def _queue_keys(self) -> list:
        """The queue's sort key, all ascending and never NULL: risk (高 first), uncertainty
        (least sure first), received date (oldest first, undated last), id."""
        return [letters.c.q_rank, letters.c.q_unc, letters.c.q_received, letters.c.id]

    def _queue_order(self) -> list:
        return [k.asc() for k in self._queue_keys()]

    def neighbours(
        self, letter_id: str, filters: QueueFilter | None = None, scope_department: str | None = None
    ) -> tuple[str | None, str | None]:
        """The letters just before and after ``letter_id`` in the filtered queue order (by its
        position even when the letter itself has left the filtered set, e.g. once decided)."""
        f = filters or QueueFilter()
        keys = self._queue_keys()
        with self.engine.connect() as conn:
            here = conn.execute(sa.select(*keys).where(letters.c.id == letter_id)).first()
            if here is None:
                return None, None
            here_t = sa.tuple_(*(sa.literal(v, k.type) for v, k in zip(here, keys)))
            row_t = sa.tuple_(*keys)
            base = self._queue_select(f, scope_department, [letters.c.id], join=False)
            nxt = conn.execute(base.where(row_t > here_t).order_by(*(k.asc() for k in keys)).limit(1)).scalar()
            prv = conn.execute(base.where(row_t < here_t).order_by(*(k.desc() for k in keys)).limit(1)).scalar()
        return prv, nxt

    def queue(
        self, filters: QueueFilter | None = None, page: int = 1, per_page: int = 50, scope_department: str | None = None
    ) -> dict:
        """One page of the queue, sorted by risk, then uncertainty; with total and counts by status."""
        f = filters or QueueFilter()
        page = max(1, int(page))
        cols = [
            letters.c.id,
            letters.c.title,
            letters.c.received_at,
            letters.c.channel,
            letters.c.status,
            letters.c.version,
            suggestions.c.needs_review,
            suggestions.c.track_confidence,
            suggestions.c.department_confidence,
            suggestions.c.uncertainty,
            suggestions.c.risk_reasons,
            *(self._effective(h).label(h) for h in HEAD_NAMES),
            *(letters.c[f"label_{h}"] for h in HEAD_NAMES),
        ]
        q = self._queue_select(f, scope_department, cols).order_by(*self._queue_order())
        all_status = QueueFilter(**{**f.__dict__, "status": "all"})
        cq = self._queue_select(all_status, scope_department, [letters.c.status, sa.func.count()], join=False).group_by(
            letters.c.status
        )
        with self.engine.connect() as conn:
            counts = {s: 0 for s in STATUSES}
            counts.update({s: int(n) for s, n in conn.execute(cq).all()})
            total = {
                "todo": counts["pending"] + counts["partial"],
                "all": sum(counts.values()),
            }.get(f.status, counts.get(f.status, 0))
            pages = max(1, math.ceil(total / per_page))
            page = min(page, pages)
            rows = conn.execute(q.limit(per_page).offset((page - 1) * per_page)).mappings().all()
        return {"rows": [dict(r) for r in rows], "total": total, "counts": counts, "page": page, "pages": pages, "per_page": per_page}

    def queue_ids(self, filters: QueueFilter | None = None, scope_department: str | None = None) -> list[str]:
        q = self._queue_select(filters or QueueFilter(), scope_department, [letters.c.id], join=False).order_by(
            *self._queue_order()
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q).all()]

    def effective_department(self, letter: Mapping[str, Any]) -> str | None:
        return letter["labels"]["department"] or (letter.get("suggestion") or {}).get("department")

    # ---- users -------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, department: str | None = None) -> None:
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise UserError("用户名不能为空，最多 100 字")
        if role not in ROLES:
            raise UserError(f"角色“{role}”无效；应为：{' / '.join(ROLES)}")
        self._check_password(password)
        department = self._check_department(department)
        with self._writing() as conn:
            if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
                raise UserError(f"用户“{name}”已存在")
            conn.execute(
                sa.insert(users).values(
                    name=name,
                    role=role,
                    password_hash=generate_password_hash(password, method=self.password_method),
                    department=department,
                    active=True,
                    created_at=utcnow(),
                )
            )

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        department: str | None | type(...) = ...,
        password: str | None = None,
        active: bool | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if role is not None:
            if role not in ROLES:
                raise UserError(f"角色“{role}”无效；应为：{' / '.join(ROLES)}")
            values["role"] = role
        if department is not ...:
            values["department"] = self._check_department(department)
        if password is not None:
            self._check_password(password)
            values["password_hash"] = generate_password_hash(password, method=self.password_method)
        if active is not None:
            values["active"] = bool(active)
        if not values:
            return
        with self._writing() as conn:
            if conn.execute(sa.update(users).where(users.c.name == name).values(**values)).rowcount == 0:
                raise UserError(f"用户“{name}”不存在")

    def get_user(self, name: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        return dict(row) if row else None

    def users(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(users).order_by(users.c.name)).mappings().all()]

    def verify_password(self, name: str, password: str) -> dict | None:
        """The active user with that name and password, or None.  Same work either way."""
        user = self.get_user(name)
        if user is None:
            check_password_hash(_DUMMY_HASH(), password or "")
            return None
        if not check_password_hash(user["password_hash"], password or "") or not user["active"]:
            return None
        return user

    def _check_password(self, password: str | None) -> None:
        if not password or len(password) < MIN_PASSWORD_CHARS:
            raise UserError(f"密码至少 {MIN_PASSWORD_CHARS} 位")

    def _check_department(self, department: str | None) -> str | None:
        department = (department or "").strip() or None
        if department is not None and department not in self.heads["department"].labels:
            raise UserError(f"部门“{department}”不在部门分类中；应为：{' / '.join(self.heads['department'].labels)}")
        return department

    # ---- login throttling --------------------------------------------------------------

    def login_wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` (username + address) may try again; 0 when it may now."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(login_failures).where(login_failures.c.key == key)).mappings().first()
        if row is None:
            return 0.0
        return max(0.0, float(row["locked_until"]) - now)

    def login_failed(self, key: str, now: float) -> float:
        """Count a failed login; returns the lockout in seconds it now carries (0 while free)."""
        with self._writing() as conn:
            res = conn.execute(
                sa.update(login_failures)
                .where(login_failures.c.key == key)
                .values(
                    failures=sa.case((login_failures.c.last_at < now - FAILURE_MEMORY_S, 1), else_=login_failures.c.failures + 1),
                    last_at=now,
                )
            )
            if res.rowcount == 0:
                ins = self._insert(login_failures).values(key=key, failures=1, last_at=now, locked_until=0.0)
                ins = ins.on_conflict_do_update(
                    index_elements=["key"], set_={"failures": login_failures.c.failures + 1, "last_at": now}
                )
                conn.execute(ins)
            failures = conn.execute(sa.select(login_failures.c.failures).where(login_failures.c.key == key)).scalar_one()
            lock = 0.0
            if failures > FREE_FAILURES:
                lock = min(LOCK_BASE_S * 2 ** (failures - FREE_FAILURES - 1), LOCK_MAX_S)
            conn.execute(sa.update(login_failures).where(login_failures.c.key == key).values(locked_until=now + lock))
        return lock

    def login_succeeded(self, key: str) -> None:
        with self._writing() as conn:
            conn.execute(sa.delete(login_failures).where(login_failures.c.key == key))

    # ---- settings ----------------------------------------------------------------------

    def secret_key(self) -> str:
        """The web app's signing key, made once and kept in the database (survives restarts)."""
        with self._writing() as conn:
            ins = self._insert(settings).values(key="secret_key", value=secrets.token_hex(32))
            conn.execute(ins.on_conflict_do_nothing(index_elements=["key"]))
            return conn.execute(sa.select(settings.c.value).where(settings.c.key == "secret_key")).scalar_one()

    # ---- files -------------------------------------------------------------------------

    def export_labels(self, path: str | Path) -> int:
        """Write the human-reviewed labels (with who decided, when, under which model version).

        Only decisions by people; suggestions the scorer made are never written.  Title and
        text are PII-masked; the petitioner's personal fields are left out.  ``.xlsx`` or CSV
        (UTF-8 with BOM, opens in Excel).  Returns the number of letters written.
        """
        from triage.normalize import mask_pii

        path = Path(path)
        wide = self.reviewed_letters()
        cur = self.current_labels()
        out = wide.copy()
        out["title"] = out["title"].map(mask_pii)
        out["text"] = out["text"].map(mask_pii)
        for h in HEAD_NAMES:
            sub = {r.letter_id: r for r in cur[cur["head"] == h].itertuples(index=False)}
            out[f"{h}_by"] = [sub[i].user if i in sub else None for i in out["id"]]
            out[f"{h}_at"] = [_iso(sub[i].decided_at) if i in sub else None for i in out["id"]]
            out[f"{h}_model_version"] = [sub[i].model_version if i in sub else None for i in out["id"]]
        out["received_at"] = out["received_at"].map(lambda v: "" if _is_missing(v) else pd.Timestamp(v).date().isoformat())
        out["decided_at"] = out["decided_at"].map(_iso)
        out = out.astype(object).where(out.notna(), None)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            out.to_excel(path, index=False)
        else:
            out.to_csv(path, index=False, encoding="utf-8-sig")
        return len(out)

    def import_corrections(self, path: str | Path, user: str) -> int:
        """Bring in past decisions from a table of letter id + label columns.

        Label columns are named by head (track/route/department/risk) or by their Chinese
        display names (办理类别/法律途径/责任单位/风险等级); blank cells are skipped.  Every
        label is checked first; nothing is recorded unless the whole file is valid.  A row
        whose label equals the current human label records nothing (re-importing is safe).
        Returns the number of decisions recorded.
        """
        path = Path(path)
        if self.get_user(user) is None:
            raise UserError(f"用户“{user}”不存在；请先用 triage users add 添加")
        df = _read_corrections(path)
        id_col = next((c for c in df.columns if c == "id" or schema.canonical_column(c) == "id"), None)
        if id_col is None:
            raise schema.SchemaError(
                "缺少编号列", source=str(path), expected="编号 / id", found="、".join(map(str, df.columns))
            )
        by_display = {disp: name for name, disp in schema.LABEL_FIELDS.items() if name in HEAD_NAMES}
        head_cols: dict[str, str] = {}
        for c in df.columns:
            key = str(c).strip()
            name = key if key in HEAD_NAMES else by_display.get(key)
            if name and name not in head_cols.values():
                head_cols[str(c)] = name
        if not head_cols:
            raise schema.SchemaError(
                "没有标签列",
                source=str(path),
                expected="、".join(f"{h} / {self.heads[h].display}" for h in HEAD_NAMES),
                found="、".join(map(str, df.columns)),
            )
        ids = [_opt_str(v) for v in df[id_col]]
        labels = {
            col: schema.validate_labels(df[col].tolist(), self.heads[h], source=str(path), column=col)
            for col, h in head_cols.items()
        }
        with self.engine.connect() as conn:
            known = {r[0] for r in conn.execute(sa.select(letters.c.id).where(letters.c.id.in_([i for i in ids if i])))}
        for i, lid in enumerate(ids):
            if not lid:
                raise schema.SchemaError("编号为空", source=str(path), row=i + 2, column=str(id_col))
            if lid not in known:
                raise schema.SchemaError(
                    "数据库中没有这个编号的信访件（请先分拣入库）", source=str(path), row=i + 2, column=str(id_col), found=lid
                )
        per_letter: dict[str, list[tuple[str, str]]] = {}
        for i, lid in enumerate(ids):
            for col, h in head_cols.items():
                v = labels[col][i]
                if v is not None:
                    per_letter.setdefault(lid, []).append((h, v))
        recorded = 0
        with self._writing() as conn:
            for lid, decisions in per_letter.items():
                row = conn.execute(sa.select(letters).where(letters.c.id == lid)).mappings().one()
                last: dict[str, str] = {}
                for h, v in decisions:  # within a file, the last row for a letter wins
                    last[h] = v
                changed = [(h, v) for h, v in last.items() if row[f"label_{h}"] != v]
                if not changed:
                    continue
                self._bump(conn, lid, None)
                self._write_events(conn, lid, changed, user, "import", None)
                recorded += len(changed)
        return recorded

    # ---- dialect helpers ---------------------------------------------------------------

    def _insert(self, table: sa.Table):
        if self.engine.dialect.name == "postgresql":
            return pg_dialect.insert(table)
        if self.engine.dialect.name == "sqlite":
            return sqlite_dialect.insert(table)
        raise StoreError(f"不支持的数据库：{self.engine.dialect.name}（支持 SQLite 和 PostgreSQL）")


def _check_version(model_version: str) -> None:
    n = min(letters.c.model_version.type.length, suggestions.c.model_version.type.length, batches_table.c.model_version.type.length)
    if len(model_version) > n:
        raise StoreError(f"模型版本号过长：应不超过 {n} 个字符，实为 {len(model_version)} 个字符")


def _iso(v: Any) -> str | None:
    if _is_missing(v):
        return None
    return pd.Timestamp(v).tz_localize("UTC").isoformat() if pd.Timestamp(v).tzinfo is None else pd.Timestamp(v).isoformat()


def _status(letter: Mapping[str, Any], sugg: Mapping[str, Any] | None) -> str:
    decided = {h for h in HEAD_NAMES if letter.get(f"label_{h}")}
    if not decided:
        return "pending"
    track = letter.get("label_track") or (sugg or {}).get("track")
    needed = {"track", "department", "risk"} | ({"route"} if track == schema.TRACK_LITIGATION else set())
    return "done" if needed <= decided else "partial"


_dummy: list[str] = []


def _DUMMY_HASH() -> str:
    if not _dummy:
        _dummy.append(generate_password_hash(secrets.token_hex(8)))
    return _dummy[0]


def _read_corrections(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise schema.SchemaError("找不到文件", source=str(path))
    try:
        from triage.io import read_table  # written alongside; falls back to pandas below
    except ImportError:
        read_table = None
    if read_table is not None:
        try:
            return read_table(path).frame
        except schema.SchemaError:
            pass  # a corrections file has no letter text column; read it plainly
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path, dtype=str)
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False)
        except UnicodeDecodeError:
            continue
    raise schema.SchemaError("文件编码无法识别", source=str(path), expected="UTF-8 或 GBK 编码的 CSV，或 xlsx")


# --------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | None) -> sa.Engine:
    """An engine for ``url``.  ``hide_parameters``: a statement error never prints the row's
    values (names, ID numbers, phones) in its message or traceback."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            db_path = sa.engine.make_url(url).database
            if db_path:
                Path(db_path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            kwargs["pool_size"] = 30
            kwargs["max_overflow"] = 10
        engine = sa.create_engine(url, hide_parameters=True, **kwargs)
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)
    sa_event.listen(engine, "handle_error", _hide_error_detail)
    return engine


def _hide_error_detail(ctx) -> None:
    """PostgreSQL's DETAIL line can quote the row ("Failing row contains (..., 13812345678, ...)",
    "Key (id)=(...) already exists"), which ``hide_parameters`` does not cover: keep only the
    primary message (and hint) in the driver's exception and in SQLAlchemy's."""
    orig = ctx.original_exception
    diag = getattr(orig, "diag", None)
    if diag is None or not getattr(diag, "message_detail", None) or not diag.message_primary:
        return
    text = diag.message_primary + "\nDETAIL:  （已隐藏，可能含个人信息）"
    if diag.message_hint:
        text += "\nHINT:  " + diag.message_hint
    orig.args = (text,)
    exc = ctx.sqlalchemy_exception
    if isinstance(exc, sa.exc.DBAPIError) and exc.args:
        exc.args = (f"({type(orig).__module__}.{type(orig).__name__}) {text}",)


def recompute_uncertainty(bind: sa.Engine | sa.Connection, *, chunk: int = 5000) -> int:
    """Recompute every stored suggestion's ``uncertainty`` (and its letter's queue key) from
    the confidences and alternatives stored with it, with :func:`triage.active.letter_uncertainty`.

    Rows scored before the queue sorted by margin carry the old least-confidence value; this
    brings them onto the current measure.  Only suggestion rows whose value changes are
    written, and a letter's queue key (``q_unc``) only when the suggestion is the one its queue
    shows (the letter's model version).  Decisions, events and review versions are never
    touched.  Idempotent: a second run changes nothing.  Returns the number of suggestion
    rows changed.  Runs in one transaction (``bind``'s own when it is a connection).
    """
    if isinstance(bind, sa.Engine):
        with bind.begin() as conn:
            return recompute_uncertainty(conn, chunk=chunk)
    # only the columns this needs, so the function (also run by migration 0002) does not
    # depend on the rest of the current table definitions
    s = sa.table(
        "suggestions",
        sa.column("letter_id"),
        sa.column("model_version"),
        sa.column("track_confidence"),
        sa.column("department_confidence"),
        sa.column("department_alternatives"),
        sa.column("uncertainty"),
    )
    lt = sa.table("letters", sa.column("id"), sa.column("model_version"), sa.column("q_unc"))
    upd_s = s.update().where(s.c.letter_id == sa.bindparam("b_letter"), s.c.model_version == sa.bindparam("b_version")).values(uncertainty=sa.bindparam("b_unc"))
    upd_l = lt.update().where(lt.c.id == sa.bindparam("b_id")).values(q_unc=sa.bindparam("b_q"))
    # the letter's queue key, where this suggestion is the one its queue shows
    q = (
        sa.select(s.c.letter_id, s.c.model_version, s.c.track_confidence, s.c.department_confidence, s.c.department_alternatives, s.c.uncertainty, lt.c.id.label("shown"), lt.c.q_unc)
        .select_from(s.outerjoin(lt, sa.and_(lt.c.id == s.c.letter_id, lt.c.model_version == s.c.model_version)))
        .order_by(s.c.letter_id, s.c.model_version)
        .limit(chunk)
    )
    changed, last = 0, None
    while True:  # keyset pages: no cursor stays open over rows being updated, memory stays flat
        page = q if last is None else q.where(sa.or_(s.c.letter_id > last[0], sa.and_(s.c.letter_id == last[0], s.c.model_version > last[1])))
        rows = bind.execute(page).mappings().all()
        if not rows:
            return changed
        sugg, keys = [], []
        for r in rows:
            unc = active.letter_uncertainty(r)
            if r["uncertainty"] is None or abs(float(r["uncertainty"]) - unc) > 1e-9:
                sugg.append({"b_letter": r["letter_id"], "b_version": r["model_version"], "b_unc": unc})
            if r["shown"] is not None and (r["q_unc"] is None or abs(float(r["q_unc"]) + unc) > 1e-9):
                keys.append({"b_id": r["letter_id"], "b_q": -unc})
        if sugg:
            bind.execute(upd_s, sugg)
        if keys:  # also repairs a queue key left stale by anything else
            bind.execute(upd_l, keys)
        changed += len(sugg)
        last = (rows[-1]["letter_id"], rows[-1]["model_version"])


def migrate(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the newest revision shipped with the package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str | None = None, *, taxonomy: str | Path | None = None) -> Store:
    """Open (creating or upgrading as needed) the review database at ``url``.

    ``None`` means ``sqlite:///triage.db``; ``postgresql://user:pw@host/db`` uses psycopg 3.
    """
    engine = make_engine(url)
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StoreError(f"无法打开数据库 {sa.engine.make_url(normalize_url(url)).render_as_string(hide_password=True)}：{exc.orig}") from None
    return Store(engine, taxonomy)
