"""Run every benchmark and write a report: ``python -m bench [NAME ...] [--out DIR]``.

Each benchmark measures matdb against a baseline in the same run (the raw database driver,
matminer, plain scikit-learn, numpy's own throughput) and reports ratios, never absolute
pass/fail times. The report goes to ``bench/report/report.md`` (+ ``results.json`` and plots).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["descriptors", "features", "ingest", "ui", "surrogate", "decisions", "pool", "watch"]


def _modules() -> list[str]:
    found = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    return [m for m in ORDER if m in found] + [m for m in found if m not in ORDER]


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flatten(v, key + ".")
        elif isinstance(v, (list, tuple)) and len(v) > 8:
            out.append((key, f"[{len(v)} values]"))
        else:
            out.append((key, v))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(_modules())})")
    ap.add_argument("--out", default=str(HERE / "report"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.names or _modules()
    results: dict[str, dict] = {}
    lines = [
        "# matdb benchmark report",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}",
        "- every number is measured in this run; ratios compare matdb with a baseline run alongside it",
        "",
    ]
    failed = 0
    for name in names:
        print(f"==> bench {name}", flush=True)
        t0 = time.perf_counter()
        report: dict = {"plots_dir": str(out)}
        try:
            mod = importlib.import_module(f"bench.bench_{name}")
            res = mod.run(report) or report
        except Exception:  # one broken benchmark must not hide the others' numbers
            failed += 1
            res = {"error": traceback.format_exc(limit=3)}
        res["wall_time_s"] = time.perf_counter() - t0
        results[name] = res
        lines += [f"## {name}", ""]
        if "summary" in res:
            lines += [str(res["summary"]), ""]
        lines += ["| key | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(res) if k not in ("summary", "plots_dir")]
        lines.append("")
        for p in sorted(out.glob(f"{name}*.html")) + sorted(out.glob(f"{name}*.png")):
            lines.append(f"- plot: [{p.name}]({p.name})")
        lines.append("")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text("\n".join(lines))
    print(f"report written to {out / 'report.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
