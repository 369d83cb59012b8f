"""The ``xeclient`` command: one module per subcommand, each with ``register(subparsers)``.

Subcommand modules are imported only when the command line names them, so
``xeclient info`` never pays for the benchmark or demo code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("xeclient.cli.info", "show the Xe device, its memory and engines, and the backend in use"),
    "watch": ("xeclient.cli.watch", "print the device's notification events live"),
    "demo": ("xeclient.cli.demo", "OOM recovery demo: VM_ERR -> trim -> VM_RESTART, N times"),
    "inject": ("xeclient.cli.inject", "arm rebind-worker fault injection (fake or debugfs)"),
    "bench": ("xeclient.cli.bench", "benchmarks: delivery latency, throughput, overheads"),
}


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--device``, shared by every subcommand that opens a device."""
    parser.add_argument(
        "--backend",
        choices=("auto", "kernel", "fake"),
        default=None,
        help="auto (default; env XE_BACKEND): a real Xe device if one opens, else the bundled fake driver",
    )
    parser.add_argument("--device", metavar="PATH", default=None, help="render node, e.g. /dev/dri/renderD128")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xeclient", description="Intel Xe VM-error notifications and VM restart")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
