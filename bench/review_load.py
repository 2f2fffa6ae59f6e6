"""Load test of the review app: simulated clerks against a real server on loopback.

    python bench/review_load.py [--seconds 60] [--clerks 20] [--letters 2000] [--think 0] [--db URL] [--out result.json]

Starts ``triage review``'s server (werkzeug, threaded) in a subprocess on 127.0.0.1 over a
fresh database filled with synthetic letters (made up here), logs in N clerks (threads),
and has each repeatedly open the queue, open a letter and submit a correction with the
letter's review version.  Reports p50/p95 latency per route, errors and version conflicts,
then checks that every correction the server acknowledged is in the database (0 lost).
Target: p95 < 200 ms on every route, 0 errors, 0 lost.  ``--think`` adds a random pause
(exponential, that mean) before each request; 0 (default) is the worst case of clerks
clicking without reading.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.store import open_store  # noqa: E402

PASSWORD = "bench-password"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')
_IDS = re.compile(r'class="open">([^<]+)<')

_TEMPLATES = [
    "本村{n}户村民的承包地被征用，补偿款至今未发放，多次到镇政府反映无果，联系电话1380013{n:04d}。",
    "单位拖欠工资{n}个月，劳动仲裁后仍未支付，请求督促。",
    "法院判决生效后对方拒不履行，申请执行{n}个月没有进展。",
    "小区供暖不达标，室温只有{n}度，物业推诿，请求主管部门处理。",
    "道路施工噪音扰民，夜间施工到{n}点，多次投诉无人处理，群众情绪激烈。",
]


def synthetic_records(n: int, departments: tuple[str, ...], rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        k = rng.randrange(len(_TEMPLATES))
        text = _TEMPLATES[k].format(n=rng.randrange(1, 24))
        dep = rng.choice(departments)
        conf = round(rng.uniform(0.3, 0.99), 3)
        alts = [[d, round(rng.uniform(0.01, 0.3), 3)] for d in rng.sample(departments, 3)]
        term = text[2:6]
        out.append(
            {
                "id": f"B{i:06d}",
                "title": text[:12],
                "text": text,
                "received_at": f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d}",
                "channel": "网上",
                "track": "涉法涉诉" if k == 2 else "普通信访",
                "track_confidence": round(rng.uniform(0.5, 0.99), 3),
                "route": "执行" if k == 2 else None,
                "department": dep,
                "department_confidence": conf,
                "department_alternatives": json.dumps(alts, ensure_ascii=False),
                "risk": rng.choice(["低", "低", "中", "高"]),
                "risk_score": round(rng.random(), 3),
                "risk_reasons": "",
                "evidence": json.dumps({"department": [[2, 6, term]]}, ensure_ascii=False),
                "needs_review": conf < 0.6,
            }
        )
    return out


class Client:
    """One clerk's keep-alive HTTP connection with its session cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, dict]:
        body = urlencode(form).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                break
            except (http.client.HTTPException, ConnectionError, socket.timeout):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie" and v.startswith("triage_session="):
                self.cookie = v.split(";", 1)[0]
        return resp.status, text, dict(resp.getheaders())

    def login(self, name: str) -> None:
        status, html, _ = self.request("GET", "/login")
        token = _TOKEN.search(html).group(1)
        status, _, _ = self.request("POST", "/login", {"username": name, "password": PASSWORD, "csrf_token": token})
        if status != 303:
            raise RuntimeError(f"{name} 登录失败：HTTP {status}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_url: str, port: int) -> subprocess.Popen:
    code = "import sys; from triage.review.commands import serve; serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]), quiet=True)"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code, db_url, str(port)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"服务器启动失败：{proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("服务器 30 秒内没有启动")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="复核页面压力测试：模拟多名办理员并发复核")
    ap.add_argument("--seconds", type=float, default=60.0, help="持续时间（秒），默认 60")
    ap.add_argument("--clerks", type=int, default=20, help="并发办理员数，默认 20")
    ap.add_argument("--letters", type=int, default=2000, help="库中信访件数，默认 2000")
    ap.add_argument("--db", default=None, help="数据库地址（默认：临时 SQLite 文件；也可 postgresql://…，会写入测试数据）")
    ap.add_argument("--out", default=None, help="把结果写成 JSON 文件")
    ap.add_argument("--think", type=float, default=0.0, help="每名办理员两次请求之间的平均停顿（秒），默认 0（不停顿，最坏情况）")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    tmp = tempfile.TemporaryDirectory()
    db_url = args.db or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    store = open_store(db_url)
    store.password_method = "pbkdf2:sha256:1000"  # setup speed only; logins are not timed
    deps = store.heads["department"].labels
    store.upsert_scored(synthetic_records(args.letters, deps, rng), "bench-m1", "bench-b1")
    names = [f"办理员{i:02d}" for i in range(args.clerks)]
    existing = {u["name"] for u in store.users()}
    for n in names:
        if n not in existing:
            store.add_user(n, "clerk", PASSWORD)
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        first_event = conn.execute(sa.text("select coalesce(max(id), 0) from events")).scalar_one()
    port = free_port()
    proc = start_server(db_url, port)
    print(
        f"服务器 http://127.0.0.1:{port}/ ，{args.letters} 件信访件，{args.clerks} 名办理员，"
        f"平均停顿 {args.think} 秒，持续 {args.seconds:.0f} 秒",
        file=sys.stderr,
    )

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter = Counter()
    conflicts = [0]
    acknowledged: list[tuple[str, str, str, str]] = []  # (letter, head, label, user)
    lock = threading.Lock()
    heads = {"department": deps, "risk": ("低", "中", "高")}
    start_barrier = threading.Barrier(args.clerks + 1)
    deadline = [0.0]

    def clerk(name: str, seed: int) -> None:
        r = random.Random(seed)
        c = Client(port)
        c.login(name)
        start_barrier.wait()

        def timed(route: str, method: str, path: str, form: dict | None = None):
            if args.think > 0:
                time.sleep(r.expovariate(1.0 / args.think))
            t0 = time.perf_counter()
            try:
                out = c.request(method, path, form)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors[f"{route}: {type(exc).__name__}"] += 1
                return None
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies[route].append(dt)
            return out

        while time.time() < deadline[0]:
            res = timed("GET /queue", "GET", "/queue?" + urlencode({"page": r.randint(1, 3)}))
            if res is None or res[0] != 200:
                with lock:
                    errors[f"GET /queue: HTTP {res[0] if res else '-'}"] += 1
                continue
            ids = _IDS.findall(res[1])
            if not ids:
                continue
            lid = r.choice(ids)
            res = timed("GET /letters/<id>", "GET", f"/letters/{lid}")
            if res is None or res[0] != 200:
                with lock:
                    errors[f"GET /letters/<id>: HTTP {res[0] if res else '-'}"] += 1
                continue
            token = _TOKEN.search(res[1]).group(1)
            version = _VERSION.search(res[1]).group(1)
            head = r.choice(list(heads))
            label = r.choice(heads[head])
            form = {"csrf_token": token, "version": version, "head": head, "label": label, "advance": "0", "q": "", "next": ""}
            res = timed("POST /letters/<id>/correct", "POST", f"/letters/{lid}/correct", form)
            if res is None:
                continue
            if res[0] == 303:
                with lock:
                    acknowledged.append((lid, head, label, name))
            elif res[0] == 409:
                with lock:
                    conflicts[0] += 1
            else:
                with lock:
                    errors[f"POST correct: HTTP {res[0]}"] += 1

    threads = [threading.Thread(target=clerk, args=(n, args.seed * 1000 + i)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    deadline[0] = time.time() + args.seconds
    start_barrier.wait()
    t_start = time.time()
    for t in threads:
        t.join()
    elapsed = time.time() - t_start
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()

    # every acknowledged correction must be in the database, and nothing else
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("select letter_id, head, new_label, user_name from events where kind = 'correct' and id > :first"),
            {"first": first_event},
        ).all()
    in_db = Counter(tuple(r) for r in rows)
    sent = Counter(acknowledged)
    lost = sum((sent - in_db).values())
    phantom = sum((in_db - sent).values())
    store.close()
    tmp.cleanup()

    routes = {}
    for route, vals in sorted(latencies.items()):
        routes[route] = {
            "n": len(vals),
            "p50_ms": round(statistics.median(vals), 1),
            "p95_ms": round(pct(vals, 0.95), 1),
            "max_ms": round(max(vals), 1),
        }
    result = {
        "seconds": round(elapsed, 1),
        "clerks": args.clerks,
        "think_s": args.think,
        "letters": args.letters,
        "db": "postgresql" if db_url.startswith("postgres") else "sqlite",
        "routes": routes,
        "requests_per_s": round(sum(len(v) for v in latencies.values()) / elapsed, 1),
        "corrections_acknowledged": len(acknowledged),
        "conflicts_409": conflicts[0],
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "lost": lost,
        "unexpected_in_db": phantom,
        "p95_target_ms": 200,
        "ok": lost == 0 and phantom == 0 and not errors and all(r["p95_ms"] < 200 for r in routes.values()),
    }
    print(f"{'路由':<28}{'次数':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for route, r in routes.items():
        print(f"{route:<28}{r['n']:>8}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['max_ms']:>10}")
    print(
        f"{result['requests_per_s']} 请求/秒；确认保存的改正 {len(acknowledged)} 条，版本冲突 409：{conflicts[0]} 次，"
        f"错误 {result['errors']} 次，丢失 {lost} 条，多出 {phantom} 条 —— {'达标' if result['ok'] else '未达标'}"
    )
    if errors:
        print("错误：", dict(errors))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
