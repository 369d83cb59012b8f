"""``xeclient bench``: the benchmark runner.

One module per figure (``delivery``, ``restart``, ``throughput``, ``idle``,
``binding``, ``scale``), each with ``NAME``, ``TITLE``, ``KEYS`` and
``run(ctx) -> Figure``.  :func:`run_bench` runs them in order and returns one
JSON-ready report; :func:`format_report` renders it as tables with each
figure's floor/target, ratio and PASS/MISS beside it.

Targets live here, in the output, never in unit tests: timings on a shared
2-core machine are noisy, which is why every figure repeats its runs and shows
the spread next to the median.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ._common import Context, Figure, loadavg
from ._ctools import default_cache_dir

__all__ = ["FIGURES", "run_bench", "format_report", "figure_keys"]

#: figure name -> module, in the order they run and print.
FIGURES: dict[str, str] = {
    "delivery": "xeclient.bench.delivery",
    "restart": "xeclient.bench.restart",
    "throughput": "xeclient.bench.throughput",
    "idle": "xeclient.bench.idle",
    "binding": "xeclient.bench.binding",
    "scale": "xeclient.bench.scale",
}


def figure_keys(name: str) -> tuple[str, ...]:
    """The row keys figure ``name`` always produces (a skipped part gives SKIP rows)."""
    return tuple(importlib.import_module(FIGURES[name]).KEYS)


def resolve_backend(name: str | None) -> tuple[str, str | None]:
    """The backend to bench, "fake" or "kernel", for ``name`` ("fake" by default; "auto" probes), and why auto chose the fake."""
    name = (name or "fake").lower()
    if name == "auto":
        from ..backends.kernel import KernelBackend

        reason = KernelBackend().probe()
        return ("kernel", None) if reason is None else ("fake", reason)
    if name not in ("fake", "kernel"):
        raise ValueError(f"unknown backend {name!r}: fake, kernel or auto")
    return name, None


def run_bench(
    backend: str | None = "fake",
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    repeats: int | None = None,
    cache_dir: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the figures (all, or ``only`` those named) and return the report as one JSON-ready dict."""
    names = list(FIGURES)
    if only:
        unknown = [n for n in only if n not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {', '.join(unknown)}: choose from {', '.join(FIGURES)}")
        names = [n for n in names if n in only]
    chosen, auto_reason = resolve_backend(backend)
    ctx = Context(
        backend=chosen,
        quick=quick,
        repeats=repeats or (1 if quick else 3),
        cache_dir=cache_dir or default_cache_dir(),
        log=log or (lambda _m: None),
    )
    started = time.time()
    t0 = time.perf_counter()
    load_before = loadavg()
    figures: dict[str, Any] = {}
    for name in names:
        ctx.log(f"running {name} ...")
        module = importlib.import_module(FIGURES[name])
        f0 = time.perf_counter()
        try:
            fig: Figure = module.run(ctx)
        except Exception as exc:  # a broken figure must not hide the others
            fig = Figure(name, module.TITLE, error=f"{type(exc).__name__}: {exc}")
            fig.notes.append("".join(traceback.format_exception_only(type(exc), exc)).strip())
            fig.skip(module.KEYS, getattr(module, "LABELS", {}), f"figure failed: {type(exc).__name__}: {exc}")
        fig.seconds = time.perf_counter() - f0
        figures[name] = fig.to_json()
        ctx.log(f"{name}: {fig.seconds:.1f} s")
    statuses = [(n, k, r) for n, f in figures.items() for k, r in f["rows"].items()]
    return {
        "backend": chosen,
        "backend_note": f"auto chose the fake: {auto_reason}" if auto_reason else None,
        "quick": quick,
        "repeats": ctx.repeats,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.perf_counter() - t0, 2),
        "host": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": loadavg(),
            "switch_interval_s": sys.getswitchinterval(),
        },
        "figures": figures,
        "summary": {
            "pass": sum(1 for _n, _k, r in statuses if r["status"] == "PASS"),
            "miss": sum(1 for _n, _k, r in statuses if r["status"] == "MISS"),
            "skip": sum(1 for _n, _k, r in statuses if r["status"] == "SKIP"),
            "misses": [f"{n}.{k}" for n, k, r in statuses if r["status"] == "MISS"],
        },
    }


# --- text rendering ----------------------------------------------------------------------------------------
def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 10000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(row: dict[str, Any]) -> str:
    r = row.get("ratio")
    if r is None:
        return ""
    if row.get("ratio_kind") == "+":
        return f"{'+' if r >= 0 else ''}{_num(r)} {row['unit']}"
    return f"{r:.2f}x"


def format_report(report: dict[str, Any]) -> str:
    """The report as text tables, one per figure."""
    host = report["host"]
    load = host.get("load_before")
    lines = [
        f"xeclient bench: backend {report['backend']}{' (quick)' if report['quick'] else ''}, "
        f"{report['repeats']} repeat(s) per measurement (value = median, [min-max] = spread over repeats)",
        f"host: {host['cpus']} CPUs, load {'/'.join(f'{x:.2f}' for x in load) if load else '?'} before, "
        f"Python {host['python']}, kernel {host['kernel']}",
    ]
    if report.get("backend_note"):
        lines.append(report["backend_note"])
    headers = ("metric", "value", "spread", "floor/ref", "ratio", "target", "")
    for fig in report["figures"].values():
        lines.append("")
        lines.append(f"{fig['title']}  ({fig['seconds']:.1f} s)")
        if fig.get("params"):
            lines.append("   " + ", ".join(f"{k}={v}" for k, v in fig["params"].items()))
        table: list[tuple[str, ...]] = [headers]
        for row in fig["rows"].values():
            unit = row["unit"]
            spread = row.get("spread")
            table.append(
                (
                    row["label"],
                    f"{_num(row['value'])} {unit}" if row["value"] is not None else "-",
                    f"[{_num(spread[0])}-{_num(spread[1])}]" if spread else "",
                    f"{_num(row['floor'])} {unit}" if row.get("floor") is not None else "",
                    _ratio(row),
                    row.get("target") or "",
                    row["status"] if row["status"] != "info" else "",
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
        for i, r in enumerate(table):
            cells = [r[0].ljust(widths[0])] + [
                c.rjust(w) if j < 4 else c.ljust(w) for j, (c, w) in enumerate(zip(r[1:], widths[1:], strict=True), 1)
            ]
            lines.append("   " + "  ".join(cells).rstrip())
            if i == 0:
                lines.append("   " + "  ".join("-" * w for w in widths))
        for row in fig["rows"].values():
            if row.get("note") and row["status"] != "SKIP":
                lines.append(f"   * {row['label']}: {row['note']}")
        skipped = {row["note"] for row in fig["rows"].values() if row["status"] == "SKIP" and row.get("note")}
        for note in [*fig["notes"], *sorted(n for n in skipped if n not in fig["notes"])]:
            lines.append(f"   - {note}")
        if fig.get("error"):
            lines.append(f"   ! {fig['error']}")
    s = report["summary"]
    lines.append("")
    lines.append(
        f"{s['pass']} PASS, {s['miss']} MISS, {s['skip']} SKIP in {report['seconds']:.1f} s"
        + (f"; missed: {', '.join(s['misses'])}" if s["misses"] else "")
    )
    return "\n".join(lines)
