"""``xeclient inject``: arm the rebind worker's ``rebind_enospc`` fault attribute.

On a real kernel it writes the debugfs fault-attr files (``probability``,
``times``, ``interval``, ``space``, ``verbose``; ``probability`` last) of the
directory found under ``/sys/kernel/debug/dri/<minor>/`` (a name containing
"rebind" and "enospc"), or of ``--fault-dir``.  The setting stays until changed:
the next run(s) of any VM's rebind worker fail with -ENOSPC.  ``--disarm`` and
``--status`` do what they say.

On the fake the fault attribute lives in this process, so arming it alone
would have no effect afterwards; there ``--then-demo`` runs ``xeclient demo``
in the same process with the fault injected into each incident (the same as
``xeclient demo --inject --probability P --times T --interval I``), and without
it the command says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..backends import Backend
from ..device import Device
from ..errors import NoDeviceError
from . import add_backend_option


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "inject",
        help="arm rebind-worker fault injection (fake or debugfs)",
        description="Arm a fault attribute of the xe driver (debugfs on a real kernel; on the fake use --then-demo).",
    )
    p.add_argument("name", nargs="?", default="rebind_enospc", help="fault attribute (default rebind_enospc)")
    p.add_argument("--probability", type=int, default=100, help="percent of calls that fail (default 100)")
    p.add_argument("--times", type=int, default=1, help="failures before it stops; -1 unlimited (default 1)")
    p.add_argument("--interval", type=int, default=1, help="fail at most every Nth call (default 1)")
    p.add_argument("--space", type=int, default=0, help="bytes of 'size' to let pass first (default 0)")
    p.add_argument(
        "--verbose-fault",
        dest="verbose_fault",
        type=int,
        default=None,
        metavar="N",
        help="the attribute's verbose file (0-2)",
    )
    p.add_argument(
        "--fault-dir",
        metavar="DIR",
        default=os.environ.get("XE_FAULT_DIR") or None,
        help="the fault-attr directory (absolute, or a name under /sys/kernel/debug/dri/<minor>/); env XE_FAULT_DIR",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument("--disarm", action="store_true", help="probability 0, times 0")
    action.add_argument("--status", action="store_true", help="print the current settings and exit")
    action.add_argument(
        "--then-demo",
        action="store_true",
        help="then run xeclient demo with this fault injected (the way to use it on the fake)",
    )
    p.add_argument("--incidents", type=int, default=3, metavar="N", help="with --then-demo: incidents (default 3)")
    p.add_argument(
        "--policy", choices=("lru", "largest", "priority"), default="lru", help="with --then-demo: trim policy"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    add_backend_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..faults import FaultInjectionUnavailable, check_settings, fault_injector
    from .info import no_device_sentence, select_backend

    try:
        check_settings(args.probability, args.times, args.interval, args.space)
    except ValueError as exc:
        print(f"xeclient inject: {exc}", file=sys.stderr)
        return 2
    try:
        backend, fallback_reason = select_backend(args.backend, args.device)
    except (OSError, ValueError) as exc:
        print(f"xeclient inject: {exc}", file=sys.stderr)
        return 1
    if args.then_demo:
        return _then_demo(args, backend, fallback_reason)
    try:
        sentence = no_device_sentence(backend, args.device)
        if sentence:
            print(sentence, file=sys.stderr)
            return 1
        try:
            with Device.open(args.device, backend=backend) as dev:
                injector = fault_injector(dev, name=args.name, fault_dir=args.fault_dir)
                if args.status:
                    status = injector.status()
                elif args.disarm:
                    injector.disarm()
                    status = injector.status()
                else:
                    injector.arm(
                        probability=args.probability,
                        times=args.times,
                        interval=args.interval,
                        space=args.space,
                        verbose=args.verbose_fault,
                    )
                    status = injector.status()
                path = dev.path
        except FaultInjectionUnavailable as exc:
            print(f"xeclient inject: {exc}", file=sys.stderr)
            return 1
        except NoDeviceError as exc:
            print(f"{exc}.", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"xeclient inject: {exc}", file=sys.stderr)
            return 1
    finally:
        shutdown = getattr(backend, "shutdown", None)
        if shutdown is not None:
            shutdown()
    what = "status" if args.status else ("disarmed" if args.disarm else "armed")
    if args.json:
        print(
            json.dumps(
                {
                    "backend": backend.name,
                    "device": path,
                    "fault": injector.name,
                    "where": injector.where,
                    "action": what,
                    "persistent": injector.persistent,
                    "settings": status,
                }
            )
        )
    else:
        if fallback_reason:
            print(f"No Xe device found ({fallback_reason}); using the bundled fake driver.")
        settings = ", ".join(f"{k}={v}" for k, v in status.items() if v is not None)
        print(f"{what} {injector.name} at {injector.where}: {settings}")
        if not injector.persistent and not args.status:
            print(
                "note: the fake driver lives in this process, so this setting ended with it; "
                "use `xeclient inject --then-demo ...` or `xeclient demo --inject ...` to see it act."
            )
    if not injector.persistent and not (args.status or args.disarm):
        return 2  # armed nothing that outlives us: say so in the exit status too
    return 0


def _then_demo(args: argparse.Namespace, backend: Backend, fallback_reason: str | None) -> int:
    from .demo import run_with_backend

    if args.name != "rebind_enospc":
        print(f"xeclient inject: --then-demo injects rebind_enospc, not {args.name!r}", file=sys.stderr)
        return 2
    demo_args = argparse.Namespace(
        backend=args.backend,
        device=args.device,
        incidents=args.incidents,
        policy=args.policy,
        trigger="inject",
        fill=0.75,
        buffers=12,
        max_attempts=4,
        timeout=5.0,
        fault_dir=args.fault_dir,
        probability=args.probability,
        times=args.times,
        interval=args.interval,
        json=args.json,
    )
    return run_with_backend(demo_args, backend, fallback_reason)
