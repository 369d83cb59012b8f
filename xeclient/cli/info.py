"""``xeclient info``: the device, its memory and engines, and the backend in use."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from ..backends import Backend, open_backend
from ..backends.kernel import KernelBackend
from ..device import Device
from ..errors import NoDeviceError
from . import add_backend_option


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="show the Xe device, its memory and engines, and the backend in use")
    add_backend_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def select_backend(name: str | None, device: str | None) -> tuple[Backend, str | None]:
    """The backend to use and, when ``auto`` fell back to the fake, the reason why."""
    if name in (None, "auto") and device is None:
        reason = KernelBackend().probe()
        if reason is None:
            return KernelBackend(), None
        return open_backend("fake"), reason
    return open_backend(name or "auto"), None


def describe(device: Device) -> dict[str, Any]:
    version = device.version()
    config = device.query_config()
    features = device.features()
    regions = device.query_mem_regions()
    return {
        "backend": device.backend.name,
        "device": device.path,
        "driver": {"name": version.name, "version": f"{version.major}.{version.minor}.{version.patchlevel}", "desc": version.desc},
        "pci_id": config.pci_id,
        "revision": config.revision,
        "kernel": platform.release(),
        "series": {
            "vm_restart": features.vm_restart,
            "watch_queue": features.watch_queue,
            "notification_pipes": features.notification_pipes,
        },
        "memory": [
            {"class": r.mem_class.name.lower(), "instance": r.instance, "total": r.total_size, "used": r.used}
            for r in regions
        ],
        "engines": [str(e) for e in device.query_engines()],
    }


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def run(args: argparse.Namespace) -> int:
    try:
        backend, fallback_reason = select_backend(args.backend, args.device)
    except OSError as exc:
        print(f"xeclient info: {exc}", file=sys.stderr)
        return 1
    if args.backend == "kernel" and not backend.render_nodes() and args.device is None:
        reason = KernelBackend().probe() or "no xe render node"
        print(f"No Xe device: {reason}.", file=sys.stderr)
        return 1
    try:
        with Device.open(args.device, backend=backend) as device:
            info = describe(device)
    except NoDeviceError as exc:
        print(f"{exc}.", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"xeclient info: {exc}", file=sys.stderr)
        return 1
    finally:
        shutdown = getattr(backend, "shutdown", None)
        if shutdown is not None:
            shutdown()
    if fallback_reason:
        info["fallback_reason"] = fallback_reason
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if fallback_reason:
        print(f"No Xe device found ({fallback_reason}); showing the bundled fake driver instead.")
    s = info["series"]
    print(f"backend   {info['backend']}")
    print(f"device    {info['device']}  PCI {info['pci_id']} rev {info['revision']}")
    print(f"driver    {info['driver']['name']} {info['driver']['version']} ({info['driver']['desc']}), kernel {info['kernel']}")
    print(
        "series    VM_RESTART {}  WATCH_QUEUE {}  notification pipes {}".format(
            *("yes" if s[k] else "no" for k in ("vm_restart", "watch_queue", "notification_pipes"))
        )
    )
    for r in info["memory"]:
        print(f"memory    {r['class']}{r['instance']}: {_mib(r['used'])} used of {_mib(r['total'])}")
    print(f"engines   {', '.join(info['engines'])}")
    return 0
