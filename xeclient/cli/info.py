"""``xeclient info``: the device, its memory and engines, and the backend in use.

Shows the device's name (when its PCI id is one we know), PCI id and revision,
the driver, VRAM and system memory total/used, the engines, whether the xe
driver carries the series' ioctls (VM_RESTART, WATCH_QUEUE) and notification
pipes, and which backend answered.

Backend choice: ``--backend``, else ``XE_BACKEND``, else ``auto`` -- a real Xe
render node if one opens, otherwise the bundled fake, saying so in one
sentence (exit 0).  ``--backend kernel`` without an Xe device exits 1 with one
sentence on stderr.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import sys
from typing import Any

from ..backends import Backend, open_backend
from ..backends.kernel import KernelBackend
from ..device import Device
from ..errors import NoDeviceError
from . import add_backend_option

#: Marketing names of PCI device ids this tool has met (shown when known; never guessed).
KNOWN_DEVICES: dict[int, str] = {
    0xE20B: "Intel Arc B580 (Battlemage)",
    0xE20C: "Intel Arc B570 (Battlemage)",
    0x56A0: "Intel Arc A770 (Alchemist, DG2)",
    0x56A1: "Intel Arc A750 (Alchemist, DG2)",
    0x7D55: "Intel Arc Graphics (Meteor Lake)",
    0x64A0: "Intel Arc Graphics 140V (Lunar Lake)",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="show the Xe device, its memory and engines, and the backend in use")
    add_backend_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def backend_name(name: str | None) -> str:
    """``--backend``, else ``XE_BACKEND``, else ``auto``."""
    return (name or os.environ.get("XE_BACKEND") or "auto").strip().lower()


def select_backend(name: str | None, device: str | None) -> tuple[Backend, str | None]:
    """The backend to use and, when ``auto`` fell back to the fake, the reason why.

    ``name`` None reads ``XE_BACKEND`` (default ``auto``).  With ``auto`` and an
    explicit ``device`` the kernel is used (a path names a real node).
    """
    resolved = backend_name(name)
    if resolved == "auto" and device is None:
        reason = KernelBackend().probe()
        if reason is None:
            return KernelBackend(), None
        return open_backend("fake"), reason
    if resolved == "auto":
        return KernelBackend(), None
    return open_backend(resolved), None


def no_device_sentence(backend: Backend, device: str | None) -> str | None:
    """One sentence when the kernel backend has no Xe device to open, else None."""
    if backend.name != "kernel":
        return None
    if device is None:
        if backend.render_nodes():
            return None
        reason = KernelBackend().probe() or "no render node is bound to the xe driver"
        return f"No Xe device: {reason}."
    if not os.path.exists(device):
        return f"No Xe device at {device}: there is no such file."
    return None


def open_error_sentence(exc: OSError, device: str | None) -> str:
    """One sentence for a failure to open/identify the device."""
    path = device or "the render node"
    if exc.errno == errno.ENOTTY:
        return f"No Xe device at {path}: it is not a DRM device ({exc})."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"Cannot open {path}: permission denied; add yourself to the 'render' group or run as root."
    if exc.errno == errno.ENOENT:
        return f"No Xe device at {path}: there is no such file."
    return f"Cannot use {path}: {exc}."


def describe(device: Device) -> dict[str, Any]:
    version = device.version()
    config = device.query_config()
    features = device.features()
    regions = device.query_mem_regions()
    vram = [r for r in regions if r.mem_class.name == "VRAM"]
    return {
        "backend": device.backend.name,
        "device": device.path,
        "name": KNOWN_DEVICES.get(config.device_id),
        "driver": {
            "name": version.name,
            "version": f"{version.major}.{version.minor}.{version.patchlevel}",
            "desc": version.desc,
        },
        "pci_id": config.pci_id,
        "revision": config.revision,
        "kernel": platform.release(),
        "series": {
            "vm_restart": features.vm_restart,
            "watch_queue": features.watch_queue,
            "notification_pipes": features.notification_pipes,
        },
        "vram": {"total": sum(r.total_size for r in vram), "used": sum(r.used for r in vram)},
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
    except (OSError, ValueError) as exc:
        print(f"xeclient info: {exc}", file=sys.stderr)
        return 1
    try:
        sentence = no_device_sentence(backend, args.device)
        if sentence:
            print(sentence, file=sys.stderr)
            return 1
        try:
            with Device.open(args.device, backend=backend) as device:
                info = describe(device)
        except NoDeviceError as exc:
            print(f"{exc}.", file=sys.stderr)
            return 1
        except OSError as exc:
            print(open_error_sentence(exc, args.device), file=sys.stderr)
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
    name = f"{info['name']}, " if info["name"] else ""
    print(f"backend   {info['backend']}")
    print(f"device    {info['device']}  {name}PCI {info['pci_id']} rev {info['revision']}")
    print(
        f"driver    {info['driver']['name']} {info['driver']['version']} ({info['driver']['desc']}), kernel {info['kernel']}"
    )
    print(
        "series    VM_RESTART {}  WATCH_QUEUE {}  notification pipes {}".format(
            *("yes" if s[k] else "no" for k in ("vm_restart", "watch_queue", "notification_pipes"))
        )
    )
    if info["vram"]["total"]:
        print(f"vram      {_mib(info['vram']['used'])} used of {_mib(info['vram']['total'])}")
    else:
        print("vram      none (an integrated part: buffers live in system memory)")
    for r in info["memory"]:
        print(f"memory    {r['class']}{r['instance']}: {_mib(r['used'])} used of {_mib(r['total'])}")
    print(f"engines   {', '.join(info['engines'])}")
    return 0
