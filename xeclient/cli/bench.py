"""``xeclient bench``: delivery latency, restart latency, throughput, idle cost, overheads, fake scale."""

from __future__ import annotations

import argparse
import json
import sys

from ..bench import FIGURES, format_report, run_bench


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench",
        help="benchmarks: delivery latency, throughput, overheads",
        description="Run the benchmark figures and print each beside its floor/target with a ratio and PASS/MISS.",
    )
    p.add_argument(
        "--backend",
        choices=("fake", "kernel", "auto"),
        default="fake",
        help="fake (default): the bundled fake driver; kernel: this machine's kernel and Xe device; auto: kernel if an xe node opens",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--quick", action="store_true", help="small counts, one repeat: a smoke run of a few seconds")
    p.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        choices=tuple(FIGURES),
        help=f"run only this figure (repeatable): {', '.join(FIGURES)}",
    )
    p.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 3, 1 with --quick)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        if not args.json:
            print(f"  .. {msg}", file=sys.stderr, flush=True)

    try:
        report = run_bench(args.backend, quick=args.quick, only=args.only, repeats=args.repeats, log=log)
    except ValueError as exc:
        print(f"xeclient bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0
