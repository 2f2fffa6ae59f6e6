"""``triage``: a thin command-line dispatcher.  Each subcommand calls one library function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLE = REPO / "data" / "sample" / "letters.xlsx"
DEFAULT_CORPUS = REPO / "data" / "corpus.csv"


def _cmd_synth(a) -> int:
    from . import synth

    if a.sample:
        synth.write_sample_workbook(a.output, n=a.n or 300, seed=7 if a.seed is None else a.seed)
    else:
        synth.write_corpus(a.output, n=a.n or 20000, seed=20261126 if a.seed is None else a.seed)
    print(f"已写入 {a.output}", file=sys.stderr)
    return 0


def _cmd_train(a) -> int:
    from .train import parse_label_specs, train_version

    params = {}
    if a.risk_high is not None or a.risk_medium is not None:
        params["risk_thresholds"] = {k: v for k, v in (("high", a.risk_high), ("medium", a.risk_medium)) if v is not None}
    train_version(
        a.data,
        label_columns=parse_label_specs(a.label),
        text_col=a.text_col,
        out=a.out,
        version=a.version,
        holdout=a.holdout,
        seed=a.seed,
        model_params=params,
        promote=a.promote,
    )
    return 0


def _cmd_evaluate(a) -> int:
    from .evaluate import evaluate_file

    evaluate_file(a.model, a.data, out=a.out)
    return 0


def _cmd_score(a) -> int:
    from .score import run_args

    return run_args(a)  # prints the Chinese summary (or the error) and returns the exit code


def _cmd_review(a) -> int:
    from .review.commands import serve

    serve(a.db, a.host, a.port, quiet=a.quiet)
    return 0


def _cmd_users(a) -> int:
    from .review.commands import add_user

    add_user(a.db, a.name, a.role, None, department=a.department)  # prompts, or reads stdin's first line
    return 0


def _cmd_export_labels(a) -> int:
    from .review.commands import export_labels

    export_labels(a.db, a.output)
    return 0


def _cmd_corrections(a) -> int:
    from .review.commands import import_corrections

    import_corrections(a.file, a.db, a.user)
    return 0


def _cmd_retrain(a) -> int:
    from .retrain import retrain

    result = retrain(a.db, a.base, root=a.models_dir, tolerance=a.tolerance, min_gain=a.min_gain, seed=a.seed, promote=not a.no_promote)
    print(result.report())
    return 0


def _cmd_label_issues(a) -> int:
    from .retrain import flag_label_issues

    print(flag_label_issues(a.db, a.base, a.out).report())
    return 0


def _cmd_reproduce(a) -> int:
    from .retrain import reproduce

    result = reproduce(a.version, a.db, root=a.models_dir)
    print(result.report())
    return 0 if result.ok else 1


def _cmd_models(a) -> int:
    from . import retrain as rt

    fn = {"list": rt.models_list, "show": rt.models_show, "promote": rt.models_promote, "rollback": rt.models_rollback}[a.action]
    args = [a.version] if a.action in ("show", "promote") else []
    print(fn(*args, root=a.models_dir))
    return 0


def _cmd_drift(a) -> int:
    from .drift import drift_report

    result = drift_report(a.db, model=a.model, root=a.models_dir)
    print(result.report())
    return 1 if result.flagged and a.fail_on_drift else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="triage", description="信访分拣：诉访分离、责任单位、风险预警")
    sub = p.add_subparsers(dest="command", required=True, metavar="子命令")

    from .score import build_parser as score_parser  # the scorer owns its options

    s = sub.add_parser("score", help="批量分拣：读入当天信件，写出登记人员用的工作簿")
    score_parser(s, default_input=str(DEFAULT_SAMPLE))
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser("synth", help="生成合成信访语料（带标签）或样例工作簿")
    s.add_argument("--n", type=int, help="条数（语料默认 20000，样例默认 300）")
    s.add_argument("--seed", type=int, help="随机种子（语料默认 20261126，样例默认 7）")
    s.add_argument("--sample", action="store_true", help="生成不带标签的登记导出样例（XLSX）")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("train", help="训练模型并保存为新版本")
    s.add_argument("--data", default=str(DEFAULT_CORPUS), help="带标签的训练文件")
    s.add_argument("--text-col", help="文本列（默认按表头别名识别）")
    s.add_argument("--label", action="append", metavar="HEAD=COLUMN", help="分类头及其标签列，可重复；默认 track/route/department/risk")
    s.add_argument("--out", help="模型根目录（默认 models/）")
    s.add_argument("--version", help="版本名（默认按时间和数据校验值生成）")
    s.add_argument("--holdout", type=float, default=0.2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--risk-high", type=float, help="高风险阈值：P(高) 达到此值（默认 0.5）")
    s.add_argument("--risk-medium", type=float, help="中风险阈值：P(中)+P(高) 达到此值（默认 0.5）")
    s.add_argument("--promote", action="store_true", help="训练完成后设为冠军模型")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="在带标签的数据上评估模型，输出指标和图")
    s.add_argument("--model", help="模型版本名或目录；默认为冠军模型")
    s.add_argument("--data", required=True)
    s.add_argument("--out", help="报告目录（metrics.json 与 PNG 图）")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("review", help="启动复核网页")
    s.add_argument("--db", default="sqlite:///triage.db")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--quiet", action="store_true", help="不记录每个请求")
    s.set_defaults(func=_cmd_review)

    s = sub.add_parser("users", help="用户管理")
    us = s.add_subparsers(dest="action", required=True)
    u = us.add_parser("add", help="新建用户（密码从提示或标准输入第一行读取）")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=["clerk", "supervisor", "admin"])
    u.add_argument("--department", help="把登记人员限定在一个责任单位")
    u.add_argument("--db", default="sqlite:///triage.db")
    u.set_defaults(func=_cmd_users)

    s = sub.add_parser("export-labels", help="导出人工复核过的标签（用于重新训练）")
    s.add_argument("--db", default="sqlite:///triage.db")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=_cmd_export_labels)

    s = sub.add_parser("corrections", help="导入历史更正")
    cs = s.add_subparsers(dest="action", required=True)
    c = cs.add_parser("import", help="导入以往的人工决定")
    c.add_argument("file")
    c.add_argument("--db", default="sqlite:///triage.db")
    c.add_argument("--user", required=True)
    c.set_defaults(func=_cmd_corrections)

    s = sub.add_parser("retrain", help="用人工更正重新训练；只有更好的模型才会晋升")
    s.add_argument("--db", default="sqlite:///triage.db")
    s.add_argument("--base", help="基础语料（默认 data/corpus.csv）")
    s.add_argument("--models-dir")
    s.add_argument("--tolerance", type=float, default=0.01, help="任一分类头 macro-F1 允许下降的上限")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--min-gain", type=float, default=0.0, help="主要指标至少提高多少才晋升")
    s.add_argument("--no-promote", action="store_true", help="只评估，不晋升")
    s.set_defaults(func=_cmd_retrain)

    s = sub.add_parser("label-issues", help="列出与交叉验证预测明显不符、值得再看一眼的人工标签")
    s.add_argument("--db", default="sqlite:///triage.db")
    s.add_argument("--base", help="基础语料（默认 data/corpus.csv）")
    s.add_argument("--out", required=True, help="输出 CSV")
    s.set_defaults(func=_cmd_label_issues)

    s = sub.add_parser("reproduce", help="按清单重新训练某个版本并核对指标是否一致")
    s.add_argument("version")
    s.add_argument("--db", help="复核数据库 URL（retrain 生成的版本需要）")
    s.add_argument("--models-dir")
    s.set_defaults(func=_cmd_reproduce)

    s = sub.add_parser("models", help="模型版本：list|show|promote|rollback")
    s.add_argument("action", choices=["list", "show", "promote", "rollback"])
    s.add_argument("version", nargs="?")
    s.add_argument("--models-dir")
    s.set_defaults(func=_cmd_models)

    s = sub.add_parser("drift", help="比较近期批次与训练基准，检测分布漂移")
    s.add_argument("--db", default="sqlite:///triage.db")
    s.add_argument("--model")
    s.add_argument("--models-dir")
    s.add_argument("--fail-on-drift", action="store_true", help="检测到漂移时以非零状态退出")
    s.set_defaults(func=_cmd_drift)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .schema import SchemaError

    try:
        return int(args.func(args) or 0)
    except SchemaError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("已中断", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear message instead of a traceback for known failures
        from .persist import UntrustedModelError
        from .registry import ModelDirectoryError

        if isinstance(exc, (ModelDirectoryError, UntrustedModelError, FileNotFoundError, ValueError)):
            print(f"错误：{exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
