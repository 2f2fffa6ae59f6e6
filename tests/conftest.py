"""Shared fixtures: a review database on SQLite and (when TRIAGE_TEST_PG_URL is set) PostgreSQL,
and synthetic scored letters (made up here; no real petition text)."""

from __future__ import annotations

import json
import os

import pytest

PG_ENV = "TRIAGE_TEST_PG_URL"


def _reset_pg(url: str) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def pytest_collection_modifyitems(config, items):
    """A test marked postgresql_only runs its db_url case for PostgreSQL only: the SQLite case
    is deselected (not skipped), so a full run shows no skip for it."""
    keep, drop = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("db_url")
        (drop if param == "sqlite" and item.get_closest_marker("postgresql_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.heavy)],
)
def db_url(request, tmp_path) -> str:
    """An empty review database: a SQLite file, or a freshly emptied PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):  # .ci/run starts PostgreSQL: a missing database is a failure there
            pytest.fail(f"CI 中未设置 {PG_ENV}：.ci/services.sh 应当已启动 PostgreSQL")
        pytest.skip(f"未设置 {PG_ENV}（PostgreSQL 测试库地址），跳过 PostgreSQL 测试；CI 由 .ci/services.sh 设置")
    _reset_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'review.db'}"


@pytest.fixture
def store(db_url):
    from triage.store import open_store

    s = open_store(db_url)
    s.password_method = "pbkdf2:sha256:1000"  # cheap hashing keeps the tests fast
    yield s
    s.close()


# A valid (checksum) resident ID and a mobile number, to check masking.
FAKE_ID_NUMBER = "11010519491231002X"
FAKE_PHONE = "13812345678"

_BODIES = [
    "我是东风村村民，宅基地被邻居占用，多次找村委会调解未果。联系电话{phone}。如果再不解决，我们几十户将集体到北京上访。",
    "单位拖欠工资八个月，劳动合同到期后不予续签，请求督促支付。<script>alert('x')</script>",
    "法院判决已经生效两年，对方仍不履行，申请执行后没有进展，身份证号{idn}。",
    "小区旁边的工厂夜间排放废气，气味刺鼻，影响居民休息，请环保部门查处。",
    "道路施工导致村民出行困难，多次反映无人答复，群众情绪激烈。",
]


def _span(text: str, term: str) -> list:
    i = text.find(term)
    assert i >= 0, term
    return [i, i + len(term), term]


def make_records(n: int, departments: tuple[str, ...], *, seed: int = 0) -> list[dict]:
    """``n`` scored letters shaped like the batch scorer's output (schema input + output fields)."""
    out = []
    for i in range(n):
        k = (i + seed) % len(_BODIES)
        text = _BODIES[k].format(phone=FAKE_PHONE, idn=FAKE_ID_NUMBER)
        litigation = k == 2
        dep = departments[(i + seed) % len(departments)]
        alts = [[departments[(i + seed + j) % len(departments)], round(0.3 / j, 3)] for j in (1, 2, 3)]
        evidence = {}
        if k == 0:
            evidence = {"department": [_span(text, "宅基地")], "risk": [_span(text, "集体到北京上访")]}
        elif k == 2:
            evidence = {"track": [_span(text, "判决已经生效")], "route": [_span(text, "申请执行")]}
        risk = ("高", "中", "低")[i % 3]
        out.append(
            {
                "id": f"X{i + seed:05d}",
                "title": f"反映问题{i}（电话{FAKE_PHONE}）",
                "text": text,
                "received_at": f"2026-10-{(i % 28) + 1:02d}",
                "channel": "网上",
                "petitioner": "张三丰",
                "id_number": FAKE_ID_NUMBER,
                "phone": FAKE_PHONE,
                "address": "东风镇东风村5组12号",
                "num_people": 1 + (i % 4),
                "track": "涉法涉诉" if litigation else "普通信访",
                "track_confidence": 0.95 - 0.01 * (i % 10),
                "route": "执行" if litigation else None,
                "route_guidance": "已有生效法律文书，引导申请强制执行" if litigation else None,
                "department": dep,
                "department_confidence": round(0.99 - 0.07 * (i % 7), 3),
                "department_alternatives": json.dumps(alts, ensure_ascii=False),
                "risk": risk,
                "risk_score": {"高": 0.9, "中": 0.5, "低": 0.1}[risk],
                "risk_reasons": "越级进京|集体行动" if risk == "高" else "",
                "evidence": json.dumps(evidence, ensure_ascii=False),
                "needs_review": i % 5 == 4,
                "model_version": "m1",
                "error": None,
            }
        )
    return out


@pytest.fixture
def records():
    """Factory: ``records(n, departments, seed=0)``."""
    return make_records
