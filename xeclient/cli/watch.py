"""``xeclient watch``: print the device's notification events live, one per line.

Subscribes a notification pipe to the device (``--watch-id``) and prints each
event as it arrives -- text, or JSON Lines with ``--json`` -- until Ctrl-C
(exit 0), ``--count`` events, ``--duration`` seconds, or the device going away.
A one-line summary (events per type) goes to stderr at the end, so stdout stays
a clean log.

The fake backend has no workload of its own, so nothing would ever happen:
``--demo-events N`` (fake only) makes it produce N VM_ERR events -- a busy
restartable VM, the ``rebind_enospc`` fault armed once, an eviction; after each
event the VM is restarted -- ``--demo-interval`` seconds apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backends import Backend
from ..device import Device
from ..errors import NoDeviceError
from ..events import Event, VmError
from ..listener import Listener, ListenerStats
from ..uapi.constants import EngineClass, VmCreateFlag
from . import add_backend_option
from .info import select_backend


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "watch",
        help="print the device's notification events live",
        description="Subscribe to the device's notification events and print them live until Ctrl-C.",
    )
    add_backend_option(p)
    p.add_argument("--json", action="store_true", help="JSON Lines: one object per event")
    p.add_argument(
        "--watch-id", type=_watch_id, default=0, metavar="ID", help="watch_id to subscribe with, 0-255 (default 0)"
    )
    p.add_argument("--count", type=int, default=None, metavar="N", help="exit after N events")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="exit after S seconds")
    p.add_argument(
        "--demo-events",
        type=int,
        default=0,
        metavar="N",
        help="fake backend only: make the fake driver produce N VM_ERR events (fault injection + eviction)",
    )
    p.add_argument(
        "--demo-interval", type=float, default=0.2, metavar="S", help="seconds between demo events (default 0.2)"
    )
    p.set_defaults(func=run)


def _watch_id(text: str) -> int:
    value = int(text, 0)
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"watch_id {value} is out of range 0-255")
    return value


def format_event(event: Event, as_json: bool) -> str:
    if as_json:
        data = event.as_dict()
        if isinstance(event, VmError):
            data["errno_name"] = event.errno_name
        return json.dumps(data)
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    return f"{stamp} {event}"


def summary(stats: ListenerStats, elapsed: float, reason: str) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.by_type.items())) or "none"
    return (
        f"xeclient watch: {stats.received} event(s) in {elapsed:.1f} s ({kinds}); {stats.dropped} loss run(s); {reason}"
    )


class Demo:
    """Makes the fake driver post VM_ERR events: arm ``rebind_enospc`` once, evict, restart."""

    def __init__(self, backend: Backend, device: Device, count: int, interval: float) -> None:
        self.backend = backend
        self.device = device
        self.count = count
        self.interval = interval
        self.quit = threading.Event()
        self.seen = threading.Semaphore(0)
        self.error: BaseException | None = None
        placement = "vram" if device.vram_regions() else "sysmem"
        classes = {e.engine_class for e in device.query_engines()}
        engine = EngineClass.COMPUTE if EngineClass.COMPUTE in classes else EngineClass.RENDER
        self.vm = device.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)
        self.vm.bind(device.create_bo(4 << 20, placement), addr=0x100000)
        device.create_exec_queue(self.vm, engine).exec(address=0x100000)
        self.thread = threading.Thread(target=self._run, name="xeclient-watch-demo", daemon=True)

    def on_event(self, event: Event) -> None:
        if isinstance(event, VmError) and event.vm_id == self.vm.id:
            self.seen.release()

    def _run(self) -> None:
        control: Any = self.backend
        try:
            for _ in range(self.count):
                if self.quit.wait(self.interval):
                    return
                control.inject("rebind_enospc", probability=100, times=1)
                control.evict(self.device.fd, self.vm.id)
                if not self.seen.acquire(timeout=5):
                    raise TimeoutError("the fake posted no VM_ERR within 5 s")
                if self.quit.is_set():
                    return
                self.vm.restart()
        except BaseException as exc:  # reported by run()
            self.error = exc

    def stop(self) -> None:
        self.quit.set()
        self.seen.release()  # a wait for an event that will not come
        if self.thread.ident is not None:
            self.thread.join()


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if args.demo_events < 0 or (args.count is not None and args.count < 1):
        print("xeclient watch: --demo-events and --count must be positive", file=err)
        return 2
    try:
        backend, fallback_reason = select_backend(args.backend, args.device)
    except OSError as exc:
        print(f"xeclient watch: {exc}", file=err)
        return 1
    if args.demo_events and backend.name != "fake":
        print("xeclient watch: --demo-events needs the fake backend (--backend fake)", file=err)
        _shutdown(backend)
        return 2
    if fallback_reason:
        print(f"No Xe device found ({fallback_reason}); watching the bundled fake driver instead.", file=err)
    try:
        device = Device.open(args.device, backend=backend)
    except (NoDeviceError, OSError) as exc:
        print(f"xeclient watch: {exc}", file=err)
        _shutdown(backend)
        return 1
    try:
        return _watch(args, backend, device)
    finally:
        device.close()
        _shutdown(backend)


def _watch(args: argparse.Namespace, backend: Backend, device: Device) -> int:
    err = sys.stderr
    listener = Listener(device, watch_id=args.watch_id, name="xeclient-watch")
    closed_stdout = threading.Event()
    printed = 0

    def show(event: Event) -> None:
        nonlocal printed
        try:
            print(format_event(event, args.json), flush=True)
        except BrokenPipeError:  # `xeclient watch | head`: stop quietly
            closed_stdout.set()
            listener.stop()
            return
        printed += 1
        if args.count is not None and printed >= args.count:
            listener.stop()

    demo: Demo | None = None
    reason = "interrupted"
    start = time.monotonic()
    try:
        if args.demo_events:
            demo = Demo(backend, device, args.demo_events, args.demo_interval)
            listener.add_handler(demo.on_event, VmError)  # before show(), whose stop() ends dispatch
        listener.add_handler(show)
        listener.start()
        print(
            f"watching {device.path} ({backend.name}) with watch_id {args.watch_id}"
            + (f", {args.demo_events} demo event(s) coming" if demo else "")
            + "; Ctrl-C to stop",
            file=err,
            flush=True,
        )
        if demo is not None:
            demo.thread.start()
        ended = listener.join(timeout=args.duration)
        reason = _reason(listener, ended, closed_stdout, args)
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        _quiet(listener.stop)
        if demo is not None:
            _quiet(demo.stop)
        _quiet(listener.destroy)
    elapsed = time.monotonic() - start
    if demo is not None and demo.error is not None:
        print(f"xeclient watch: demo failed: {demo.error}", file=err)
    if not closed_stdout.is_set():
        print(summary(listener.stats(), elapsed, reason), file=err, flush=True)
    return 1 if demo is not None and demo.error is not None else 0


def _reason(listener: Listener, ended: bool, closed_stdout: threading.Event, args: argparse.Namespace) -> str:
    if closed_stdout.is_set():
        return "output closed"
    if not ended:
        return f"{args.duration:g} s elapsed"
    if listener.ended_reason == "removed":
        return "the device went away (watch removed)"
    if listener.ended_reason == "stopped" and args.count is not None:
        return f"{args.count} event(s) shown"
    return f"ended ({listener.ended_reason})"


def _quiet(func: Callable[[], object]) -> None:
    """Teardown that a second Ctrl-C must not turn into a traceback."""
    try:
        func()
    except KeyboardInterrupt:
        func()


def _shutdown(backend: Backend) -> None:
    shutdown = getattr(backend, "shutdown", None)
    if shutdown is not None:
        shutdown()
