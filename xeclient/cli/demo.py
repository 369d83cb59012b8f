"""``xeclient demo``: the main job -- a compute job survives running out of VRAM, N times.

What it does (the same code on the fake and on hardware):

1. opens the device (``--backend auto``: a real Xe GPU if one opens, else the
   bundled fake driver) and creates a RESTARTABLE long-running VM with a job in
   flight (an exec queue on a compute engine running a self-looping batch) and a
   working set of VRAM buffers filling most of VRAM (``--fill``);
2. starts a :class:`~xeclient.recovery.VmSupervisor` on it;
3. per incident, a second client (a second DRM file on the same device) binds
   more VRAM than is free, so the kernel evicts one of the job's buffers; the
   job's rebind worker cannot re-validate it (it never evicts), posts VM_ERR
   (ENOSPC) and pauses the VM; the supervisor trims the working set by its
   policy and restarts the VM; the job runs again.  Then the pressure is
   released and the working set restored, so the next incident can happen;
4. prints each incident's timeline and a summary (``--json``: one JSON object).

Exit status 0 only when every incident recovered.

``--trigger``: ``pressure`` (the default on the fake) as above; ``inject`` arms
the ``rebind_enospc`` fault attribute (the fake's control surface, or debugfs on
a real kernel; see ``xeclient inject``) and makes the rebind worker run, so it
fails with -ENOSPC while VRAM is plentiful; ``auto`` (the default on hardware)
applies pressure and, when no VM_ERR comes (a large VRAM, a driver that moved
the buffer elsewhere), falls back to injection and says so.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import mmap
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ..backends import Backend
from ..device import Device
from ..errors import NoDeviceError
from ..uapi import ffi
from ..uapi.constants import EngineClass, VmCreateFlag
from . import add_backend_option

if TYPE_CHECKING:
    from ..bo import Bo
    from ..exec_queue import ExecQueue
    from ..faults import FaultInjector
    from ..recovery import Incident, VmSupervisor, WorkingSet
    from ..vm import Binding, Vm

log = logging.getLogger("xeclient.cli.demo")

MiB = 1 << 20
BATCH_ADDR = 0x100000
TRIGGER_ADDR = 0x200000
WS_BASE = 1 << 32
WATCH_ID = 1
#: the batch: MI_ARB_CHECK (a preemption point), then MI_BATCH_BUFFER_START (PPGTT) back to itself.
MI_ARB_CHECK = 0x05 << 23
MI_BATCH_BUFFER_START = (0x31 << 23) | (1 << 8) | 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="OOM recovery demo: VM_ERR -> trim -> VM_RESTART, N times",
        description="A restartable long-running compute job runs out of VRAM under pressure from a second client; "
        "the recovery supervisor trims its working set and restarts the VM, --incidents times.",
    )
    add_backend_option(p)
    add_demo_options(p)
    p.set_defaults(func=run)


def add_demo_options(p: argparse.ArgumentParser, *, with_fault_settings: bool = True) -> None:
    p.add_argument("--incidents", type=_positive, default=3, metavar="N", help="incidents to provoke (default 3)")
    p.add_argument("--policy", choices=("lru", "largest", "priority"), default="lru", help="trim policy (default lru)")
    p.add_argument(
        "--trigger",
        choices=("auto", "pressure", "inject"),
        default="auto",
        help="how to make the rebind worker fail: memory pressure from a second client, fault injection, "
        "or auto (pressure; injection when pressure alone does not do it)",
    )
    p.add_argument("--inject", dest="trigger", action="store_const", const="inject", help="same as --trigger inject")
    p.add_argument(
        "--fill",
        type=_fraction,
        default=0.75,
        metavar="F",
        help="fraction of VRAM the job's working set fills (default 0.75)",
    )
    p.add_argument(
        "--buffers", type=_positive, default=12, metavar="N", help="VRAM buffers in the working set (default 12)"
    )
    p.add_argument(
        "--max-attempts",
        type=_positive,
        default=4,
        metavar="N",
        help="restarts per incident before giving up (default 4)",
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for each incident (default 5)"
    )
    p.add_argument(
        "--fault-dir",
        metavar="DIR",
        default=os.environ.get("XE_FAULT_DIR") or None,
        help="debugfs fault-attr directory for injection on hardware (default: discovered; env XE_FAULT_DIR)",
    )
    if with_fault_settings:
        p.add_argument("--probability", type=int, default=100, help="injection: probability in percent (default 100)")
        p.add_argument(
            "--times", type=int, default=1, help="injection: failures per incident, -1 unlimited (default 1)"
        )
        p.add_argument("--interval", type=int, default=1, help="injection: fail every Nth call (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the timeline")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a fraction between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


# ======================================================================================
# the job
# ======================================================================================
class Job:
    """A restartable LR VM running a self-looping batch, with a VRAM working set."""

    def __init__(self, dev: Device, *, buffers: int, fill: float) -> None:
        from ..recovery import WorkingSet

        self.dev = dev
        self.vm: Vm = dev.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)
        self.ws: WorkingSet = WorkingSet(self.vm)
        self._pages: list[mmap.mmap] = []
        self.batch = self._bind_batch()
        #: a userptr page the job never reads: invalidating it queues the rebind worker on hardware
        self.trigger_page = self._userptr_page(TRIGGER_ADDR, b"")
        self._trigger_mem = self._pages[-1] if self.trigger_page is not None else None
        total = sum(r.total_size for r in dev.vram_regions())
        align = max(2 * MiB, dev.query_config().min_alignment)
        self.bo_size = max(align, int(total * fill / buffers) // align * align)
        self.bindings: list[Binding] = []
        for i in range(buffers):
            self._make(i)
        engine = _compute_engine(dev)
        self.queue: ExecQueue = dev.create_exec_queue(self.vm, engine)
        self.queue.exec(BATCH_ADDR)

    def _userptr_page(self, addr: int, content: bytes) -> Binding | None:
        page = mmap.mmap(-1, mmap.PAGESIZE)
        page[: len(content)] = content
        page[len(content) : len(content) + 1] = b"\0"  # fault it in
        uaddr = int(ffi.cast("uintptr_t", ffi.from_buffer(page)))
        try:
            binding = self.vm.bind_userptr(uaddr, addr, mmap.PAGESIZE)
        except OSError as exc:
            log.info("userptr bind at 0x%x failed (%s)", addr, exc)
            page.close()
            return None
        self._pages.append(page)
        return binding

    def _bind_batch(self) -> Binding:
        code = struct.pack("<4I", MI_ARB_CHECK, MI_BATCH_BUFFER_START, BATCH_ADDR & 0xFFFFFFFF, BATCH_ADDR >> 32)
        binding = self._userptr_page(BATCH_ADDR, code)
        if binding is not None:
            return binding
        bo = self.dev.create_bo(64 * 1024, placement="sysmem")  # content not written: the fake does not read it
        return self.vm.bind(bo, BATCH_ADDR)

    def _make(self, i: int) -> Binding:
        bo: Bo = self.dev.create_bo(self.bo_size, placement="vram")
        binding = self.vm.bind(bo, WS_BASE + i * self.bo_size)
        self.ws.mark(
            binding, droppable=True, priority=1 if i % 4 == 3 else 0, recreate=functools.partial(self._make, i)
        )
        if i >= len(self.bindings):
            self.bindings.append(binding)
        else:
            self.bindings[i] = binding
        return binding

    def state(self) -> str | None:
        """The job's state where the backend can tell (the fake: ``running``...); None on hardware."""
        device = getattr(self.dev.backend, "device", None)
        probe = getattr(device, "exec_queue_state", None)
        if probe is None:
            return None
        try:
            return str(probe(self.dev.fd, self.queue.id))
        except (ValueError, OSError):
            return None

    def kick(self) -> str:
        """Make the rebind worker run without memory pressure; says how."""
        evict = getattr(self.dev.backend, "evict", None)
        if callable(evict):
            evict(self.dev.fd, self.vm.id)
            return "evicted the job's buffers (fake control surface)"
        if self._trigger_mem is not None:
            self._trigger_mem.madvise(mmap.MADV_DONTNEED)  # userptr invalidation: preempt fences -> rebind worker
            return "invalidated a userptr page of the job (madvise DONTNEED)"
        return "nothing to kick the worker with"

    def close(self) -> None:
        try:
            self.vm.destroy()
        except OSError as exc:
            log.debug("destroying the job's VM: %s", exc)
        for page in self._pages:
            page.close()
        self._pages = []


def _compute_engine(dev: Device) -> EngineClass:
    classes = {e.engine_class for e in dev.query_engines()}
    return EngineClass.COMPUTE if EngineClass.COMPUTE in classes else EngineClass.RENDER


class Pressure:
    """A second client (DRM file on the same device) binding VRAM."""

    def __init__(self, dev: Device) -> None:
        self.dev = Device.open(dev.path, backend=dev.backend)
        self.vm = self.dev.create_vm()
        self.bound = 0
        self._next = 0x100000

    def apply(self, size: int) -> None:
        bo = self.dev.create_bo(size, placement="vram")
        self.vm.bind(bo, self._next)
        self._next += size
        self.bound += size

    def release(self) -> None:
        self.dev.close()  # the kernel frees its VM and BOs


# ======================================================================================
# running it
# ======================================================================================
@dataclass
class Shown:
    """What the demo observed around one incident (beyond the supervisor's record)."""

    number: int
    trigger: str = ""
    pressure_bytes: int = 0
    free_before: int = 0
    job_running_ns: int = 0
    job_state: str | None = None
    restored: int = 0
    note: str = ""
    incident: Incident | None = None


@dataclass
class DemoResult:
    backend: str
    device: str
    pci_id: str
    fallback_reason: str | None
    policy: str
    vram_total: int
    working_set: int
    shown: list[Shown] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and len(self.shown) > 0
            and all(s.incident is not None and s.incident.recovered for s in self.shown)
        )

    def as_dict(self) -> dict[str, Any]:
        incidents = [s.incident for s in self.shown if s.incident is not None]
        return {
            "backend": self.backend,
            "device": self.device,
            "pci_id": self.pci_id,
            "fallback_reason": self.fallback_reason,
            "policy": self.policy,
            "incidents": len(self.shown),
            "recovered": sum(1 for i in incidents if i.recovered),
            "fatal": sum(1 for i in incidents if i.fatal),
            "missing": sum(1 for s in self.shown if s.incident is None),
            "trimmed_bytes": sum(i.trimmed_bytes for i in incidents),
            "latency_us": self.stats.get("latency_us", {"p50": None, "p99": None, "max": None}),
            "attempts": sum(len(i.attempts) for i in incidents),
            "vram_total": self.vram_total,
            "working_set_bytes": self.working_set,
            "ok": self.ok,
            "error": self.error,
            "details": [
                {
                    "number": s.number,
                    "trigger": s.trigger,
                    "pressure_bytes": s.pressure_bytes,
                    "free_before": s.free_before,
                    "job_state": s.job_state,
                    "restored_bindings": s.restored,
                    "note": s.note,
                    "incident": s.incident.as_dict() if s.incident else None,
                }
                for s in self.shown
            ],
        }


class Printer:
    def __init__(self, out: TextIO | None, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, text: str = "") -> None:
        if not self.quiet and self.out is not None:
            print(text, file=self.out, flush=True)


def run_demo(
    dev: Device,
    *,
    incidents: int = 3,
    policy: str = "lru",
    trigger: str = "auto",
    fill: float = 0.75,
    buffers: int = 12,
    max_attempts: int = 4,
    timeout: float = 5.0,
    fault_dir: str | None = None,
    fault: tuple[int, int, int] = (100, 1, 1),
    fallback_reason: str | None = None,
    out: TextIO | None = None,
    quiet: bool = False,
) -> DemoResult:
    """Run the demo on an open device; returns what happened (printing the timeline to ``out``)."""
    from ..recovery import VmSupervisor, make_policy

    say = Printer(out, quiet)
    if trigger == "auto":
        trigger = "pressure" if callable(getattr(dev.backend, "evict", None)) else "auto"
    config = dev.query_config()
    vram = dev.vram_regions()
    result = DemoResult(
        dev.backend.name, dev.path, config.pci_id, fallback_reason, policy, sum(r.total_size for r in vram), 0
    )
    if not vram:
        result.error = f"{dev.path} has no VRAM (an integrated part): the demo needs a discrete Xe GPU or the fake"
        return result
    features = dev.features()
    if not features.series:
        result.error = f"the xe driver behind {dev.path} lacks the VM-error/restart series (DRM_IOCTL_XE_VM_RESTART, DRM_IOCTL_XE_WATCH_QUEUE)"
        return result
    job = Job(dev, buffers=buffers, fill=fill)
    result.working_set = job.ws.vram_bytes
    say(f"device    {dev.path} ({dev.backend.name} backend), PCI {config.pci_id}, VRAM {_mib(result.vram_total)}")
    say(
        f"job       vm {job.vm.id} LR|RESTARTABLE, exec queue {job.queue.id} on {job.queue.engine_class.name.lower()}, "
        f"working set {len(job.bindings)} x {_mib(job.bo_size)} = {_mib(result.working_set)} of VRAM"
        + (f", job {job.state()}" if job.state() else "")
    )
    say(f"policy    {policy}; up to {max_attempts} restart(s) per incident; trigger: {trigger}")
    injector: FaultInjector | None = None
    supervisor = VmSupervisor(dev, policy=make_policy(policy), watch_id=WATCH_ID, max_attempts=max_attempts)
    supervisor.manage(job.vm, job.ws)
    try:
        with supervisor:
            for n in range(1, incidents + 1):
                shown = Shown(n)
                result.shown.append(shown)
                say()
                pressure: Pressure | None = None
                try:
                    if trigger in ("pressure", "auto"):
                        pressure = Pressure(dev)
                        shown.free_before = dev.vram_free()
                        need = shown.free_before + job.bo_size
                        shown.trigger = "pressure"
                        say(
                            f"incident {n}/{incidents}: client 2 binds {_mib(need)} of VRAM "
                            f"({_mib(shown.free_before)} free) -> the kernel evicts one of the job's buffers"
                        )
                        try:
                            pressure.apply(need)
                            shown.pressure_bytes = need
                        except OSError as exc:
                            shown.note = f"the pressure bind failed: {exc}"
                            say(f"  {shown.note}")
                        got = _wait_incident(
                            supervisor, job, shown, n, timeout if trigger == "pressure" else min(timeout, 2.0)
                        )
                    else:
                        got = False
                    if not got and trigger in ("inject", "auto"):
                        if trigger == "auto":
                            say("  no VM_ERR from pressure alone: falling back to fault injection (rebind_enospc)")
                        if injector is None:
                            from ..faults import fault_injector

                            injector = fault_injector(dev, fault_dir=fault_dir)
                        probability, times, interval = fault
                        injector.arm(probability=probability, times=times, interval=interval)
                        shown.trigger = "inject" if trigger == "inject" else "pressure+inject"
                        how = job.kick()
                        say(
                            f"incident {n}/{incidents}: armed {injector.name} at {injector.where} "
                            f"(probability {probability}, times {times}); {how}"
                        )
                        got = _wait_incident(supervisor, job, shown, n, timeout)
                    if not got:
                        shown.note = shown.note or f"no incident within {timeout:.1f} s"
                        say(f"  {shown.note}")
                        break
                    _print_incident(say, shown)
                finally:
                    if injector is not None:
                        try:
                            injector.disarm()
                        except OSError as exc:
                            log.warning("disarming %s: %s", injector, exc)
                    if pressure is not None:
                        pressure.release()
                if shown.incident is not None and shown.incident.fatal:
                    break
                shown.restored = job.ws.restore()
                say(
                    ("  pressure released; " if pressure is not None else "  ")
                    + f"working set restored ({shown.restored} binding(s) re-created, {_mib(job.ws.vram_bytes)} of VRAM)"
                )
        result.stats = supervisor.stats()
    except OSError as exc:
        result.error = str(exc)
        result.stats = supervisor.stats()
    finally:
        job.close()
    return result


def _wait_incident(supervisor: VmSupervisor, job: Job, shown: Shown, n: int, timeout: float) -> bool:
    """Wait for incident ``n`` to close; meanwhile note when the job runs again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        incidents = supervisor.incidents
        if len(incidents) >= n:
            incident = incidents[n - 1]
            restarted = any(a.restart_ns for a in incident.attempts)
            if restarted and not shown.job_running_ns:
                state = job.state()
                if state == "running":
                    shown.job_running_ns = time.monotonic_ns()
            if not incident.is_open:
                shown.incident = incident
                shown.job_state = job.state()
                if shown.job_state == "running" and not shown.job_running_ns:
                    shown.job_running_ns = time.monotonic_ns()
                return True
        time.sleep(0.0005)
    if len(supervisor.incidents) >= n:
        shown.incident = supervisor.incidents[n - 1]
        shown.note = f"incident still open after {timeout:.1f} s"
        return True
    return False


def _print_incident(say: Printer, shown: Shown) -> None:
    incident = shown.incident
    if incident is None:
        return
    first_event = incident.attempts[0].event_ns if incident.attempts else 0
    t0 = first_event or incident.opened_ns
    if first_event:
        say(
            f"  {_rel(0):>10}  {'VM_ERR':<11} vm {incident.vm_id} {_errno(incident.errno)}: the rebind worker failed; "
            + ("VM paused" if incident.restartable else "VM banned by the kernel")
        )
    for step in incident.timeline:
        label = {
            "vm_err": "VM_ERR",
            "measure": "measure",
            "trim": "trim",
            "backoff": "backoff",
            "restart": "VM_RESTART",
            "recovered": "RECOVERED",
            "fatal": "FATAL",
            "release_failed": "release failed",
            "duplicate": "duplicate",
            "loss": "LOSS",
        }.get(step.what, step.what)
        detail = step.detail
        if step.what == "vm_err" and incident.timeline.index(step) == 0:
            label = "received"
            detail = (
                "by the supervisor (listener -> supervisor thread)"
                if first_event
                else f"vm {incident.vm_id} {_errno(incident.errno)}"
            )
        if step.what == "trim":
            released = [a for at in incident.attempts for a, _ in at.released]
            if released and len(released) <= 4:
                detail += ": " + ", ".join(f"0x{a:x}" for a in released)
        say(f"  {_rel(step.t_ns - t0):>10}  {label:<11} {detail}")
        if step.what == "restart" and shown.job_running_ns and step is _last_restart(incident):
            say(f"  {_rel(shown.job_running_ns - t0):>10}  {'JOB':<11} running again (exec queue state: running)")
    if shown.job_state is None and incident.recovered:
        say(f"  {'':>10}  {'JOB':<11} no VM_ERR since the restart: the rebind worker re-validated the VM")


def _errno(err: int) -> str:
    return errno.errorcode.get(err, f"E{err}") if err else "(no errno)"


def _last_restart(incident: Incident) -> Any:
    restarts = [s for s in incident.timeline if s.what == "restart"]
    return restarts[-1] if restarts else None


def _rel(ns: int) -> str:
    if ns < 0:
        return f"-{_rel(-ns)[1:]}" if ns > -1000 else f"-{abs(ns) / 1000:.0f} us"
    if ns < 1_000_000:
        return f"+{ns / 1000:.0f} us"
    return f"+{ns / 1e6:.1f} ms"


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n % MiB == 0 or n >= 100 * MiB else f"{n / MiB:.1f} MiB"


def format_summary(result: DemoResult) -> list[str]:
    d = result.as_dict()
    lat = d["latency_us"]

    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    rows = [
        ("incidents", str(d["incidents"])),
        ("recovered", str(d["recovered"])),
        ("fatal", str(d["fatal"])),
        ("restart attempts", str(d["attempts"])),
        ("bytes trimmed", f"{d['trimmed_bytes']:,} ({_mib(d['trimmed_bytes'])})"),
        ("latency p50 (us)", us(lat["p50"])),
        ("latency p99 (us)", us(lat["p99"])),
        ("latency max (us)", us(lat["max"])),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["", "summary (latency: VM_ERR timestamp -> VM_RESTART issued, CLOCK_MONOTONIC)", "-" * (width + 24)]
    lines += [f"{k:<{width}}  {v:>20}" for k, v in rows]
    lines.append("-" * (width + 24))
    return lines


def run(args: argparse.Namespace) -> int:
    from .info import select_backend

    try:
        backend, fallback_reason = select_backend(args.backend, args.device)
    except (OSError, ValueError) as exc:
        print(f"xeclient demo: {exc}", file=sys.stderr)
        return 1
    return run_with_backend(args, backend, fallback_reason)


def run_with_backend(args: argparse.Namespace, backend: Backend, fallback_reason: str | None = None) -> int:
    """The demo on ``backend`` (shut down afterwards); ``xeclient inject --then-demo`` comes here too."""
    out = sys.stdout
    try:
        from .info import no_device_sentence

        sentence = no_device_sentence(backend, args.device)
        if sentence:
            print(sentence, file=sys.stderr)
            return 1
        if fallback_reason and not args.json:
            print(f"No Xe device found ({fallback_reason}); running on the bundled fake driver.")
        t_start = time.monotonic()
        try:
            with Device.open(args.device, backend=backend) as dev:
                result = run_demo(
                    dev,
                    incidents=args.incidents,
                    policy=args.policy,
                    trigger=args.trigger,
                    fill=args.fill,
                    buffers=args.buffers,
                    max_attempts=args.max_attempts,
                    timeout=args.timeout,
                    fault_dir=args.fault_dir,
                    fault=(getattr(args, "probability", 100), getattr(args, "times", 1), getattr(args, "interval", 1)),
                    fallback_reason=fallback_reason,
                    out=out,
                    quiet=args.json,
                )
        except NoDeviceError as exc:
            print(f"{exc}.", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"xeclient demo: {exc}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - t_start
    finally:
        shutdown = getattr(backend, "shutdown", None)
        if shutdown is not None:
            shutdown()
    if args.json:
        data = result.as_dict()
        data["elapsed_s"] = round(elapsed, 3)
        print(json.dumps(data))
    else:
        for line in format_summary(result):
            print(line)
        verdict = "every incident recovered" if result.ok else "NOT every incident recovered"
        print(f"{verdict} ({elapsed:.2f} s)")
    if result.error:
        print(f"xeclient demo: {result.error}", file=sys.stderr)
    return 0 if result.ok else 1


__all__ = [
    "DemoResult",
    "Job",
    "Pressure",
    "add_demo_options",
    "format_summary",
    "register",
    "run",
    "run_demo",
    "run_with_backend",
]
