"""``VmSupervisor`` (alias ``RecoveryAgent``): VM_ERR -> trim -> VM_RESTART, with a record of it.

A supervisor looks after the VMs of **one DRM file** (one :class:`Device`).  It
listens through a :class:`~xeclient.listener.Listener` -- its own, subscribed
with ``watch_id`` (default 0), or one it is given, whose subscription to the
device gives the watch_id -- and for each ``VmError`` it decides:

========================================  ==========================================
the event                                 what it does
========================================  ==========================================
``watch_id`` is not the supervisor's      ignored: another DRM file's event (VM ids
                                          are per file, so they may coincide)
a VM id the device does not know          ignored (logged)
ENOSPC/ENOMEM on a RESTARTABLE VM         trim the VM's working set by the policy,
                                          then ``vm.restart(timestamp_ns=...)``
any other errno, or a non-restartable VM  fatal at once: the kernel has banned the
                                          VM (spec 6.1); no restart is tried
========================================  ==========================================

After a restart the incident waits ``confirm_window`` seconds: a new VM_ERR of
the same VM in that time means the rebind worker failed again, and the
supervisor tries again after an exponential backoff (``backoff_initial``
doubling up to ``backoff_max``), trimming more each time (see
:func:`~.policies.measure_shortfall`).  After ``max_attempts`` restarts it gives
up: fatal.  No VM_ERR in the window: recovered.  ``EALREADY`` from the restart
means the VM is already running again (an exec resumed it): success.
``ENOENT``/``EINVAL`` mean the VM is gone or not restartable: fatal.

A LOSS record means events may have been dropped, so the supervisor "sweeps":
it restarts every restartable VM it looks after that has no open incident
(EALREADY, the usual answer, means there was nothing to do; 0 means a VM_ERR
was lost and the VM was paused: that becomes an incident of its own).

Each incident is an :class:`Incident` (VM, errno, attempts, bytes trimmed,
latency from the event's CLOCK_MONOTONIC timestamp to the restart ioctl,
outcome, and a timeline of every step); ``on_recovered(incident)`` and
``on_fatal(incident)`` are called when one closes.

Threading: a first VM_ERR is decided at once on the listener's dispatcher
thread (``inline=True``, the default): the restart is issued without a thread
hand-off, which under the GIL costs tens of microseconds (more with a busy
main thread).  Everything that waits -- backoffs before a retry, the quiet
window that confirms a recovery, LOSS sweeps -- runs on the supervisor thread
in due-time order, so a backoff of one VM never delays another and never
blocks the listener.  One decision lock serialises the two threads, so every
decision still sees a consistent state.  ``inline=False`` queues every event
to the supervisor thread instead.  Public methods are thread-safe.
"""

from __future__ import annotations

import errno
import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import IoctlError
from ..events import Event, Loss, Removal, VmError
from .policies import LeastRecentlyUsed, Policy, Shortfall, measure_shortfall
from .working_set import WorkingSet

if TYPE_CHECKING:
    from ..device import Device
    from ..listener import Listener
    from ..vm import Vm

log = logging.getLogger("xeclient.recovery")

RECOVERABLE_ERRNOS = frozenset({errno.ENOSPC, errno.ENOMEM})

OPEN, RECOVERED, FATAL = "open", "recovered", "fatal"


def _errno_name(err: int) -> str:
    return errno.errorcode.get(err, f"E{err}") if err else "none"


@dataclass
class Step:
    """One entry of an incident's timeline (``t_ns``: CLOCK_MONOTONIC)."""

    t_ns: int
    what: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"t_ns": self.t_ns, "what": self.what, "detail": self.detail}


@dataclass
class Attempt:
    """One trim-and-restart of an incident."""

    number: int
    event_ns: int  #: the VM_ERR's timestamp (0: it had none)
    errno: int
    shortfall: Shortfall | None = None
    released: list[tuple[int, int]] = field(default_factory=list)  #: (addr, reclaim bytes)
    trimmed_bytes: int = 0
    restart_ns: int = 0  #: when VM_RESTART was issued
    result: str = ""  #: "queued", "already running", or the error

    @property
    def latency_ns(self) -> int | None:
        """Event timestamp -> restart issued; None without a timestamp or a restart."""
        if not self.event_ns or not self.restart_ns:
            return None
        return self.restart_ns - self.event_ns

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "event_ns": self.event_ns,
            "errno": _errno_name(self.errno),
            "shortfall_bytes": self.shortfall.bytes if self.shortfall else 0,
            "free_vram": self.shortfall.free if self.shortfall else None,
            "released": [{"addr": hex(a), "bytes": n} for a, n in self.released],
            "trimmed_bytes": self.trimmed_bytes,
            "restart_ns": self.restart_ns,
            "latency_ns": self.latency_ns,
            "result": self.result,
        }


@dataclass
class Incident:
    """A VM's failure from its first VM_ERR until recovered or fatal."""

    id: int
    vm_id: int
    errno: int  #: of the first VM_ERR (0: found by a sweep after a LOSS)
    device: str
    watch_id: int
    opened_ns: int
    restartable: bool
    attempts: list[Attempt] = field(default_factory=list)
    timeline: list[Step] = field(default_factory=list)
    outcome: str = OPEN
    reason: str = ""
    closed_ns: int = 0

    @property
    def trimmed_bytes(self) -> int:
        return sum(a.trimmed_bytes for a in self.attempts)

    @property
    def restarts(self) -> int:
        return sum(1 for a in self.attempts if a.restart_ns)

    @property
    def latency_ns(self) -> int | None:
        """First VM_ERR's timestamp -> first restart issued (what the kernel logs, spec 6.2 row 7)."""
        for attempt in self.attempts:
            if attempt.restart_ns:
                return attempt.latency_ns
        return None

    @property
    def recovered(self) -> bool:
        return self.outcome == RECOVERED

    @property
    def fatal(self) -> bool:
        return self.outcome == FATAL

    @property
    def is_open(self) -> bool:
        return self.outcome == OPEN

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "vm_id": self.vm_id,
            "errno": _errno_name(self.errno),
            "device": self.device,
            "watch_id": self.watch_id,
            "restartable": self.restartable,
            "outcome": self.outcome,
            "reason": self.reason,
            "attempts": [a.as_dict() for a in self.attempts],
            "trimmed_bytes": self.trimmed_bytes,
            "latency_ns": self.latency_ns,
            "opened_ns": self.opened_ns,
            "closed_ns": self.closed_ns,
            "timeline": [s.as_dict() for s in self.timeline],
        }

    def __str__(self) -> str:
        lat = self.latency_ns
        latency = f", latency {lat / 1000:.0f} us" if lat is not None else ""
        return (
            f"incident {self.id}: vm {self.vm_id} {_errno_name(self.errno)} -> {self.outcome}"
            f" after {len(self.attempts)} attempt(s), trimmed {self.trimmed_bytes >> 20} MiB{latency}"
            + (f" ({self.reason})" if self.reason else "")
        )


IncidentHook = Callable[[Incident], None]


class VmSupervisor:
    """Recovers the paused VMs of one DRM file (see the module docstring).

    ``policy``: a trim policy (default :class:`LeastRecentlyUsed`).  ``watch_id``
    / ``listener``: see :func:`_resolve_watch_id`; without a listener the
    supervisor makes, starts and destroys its own.  ``max_attempts``: restarts
    per incident before it is fatal.  ``backoff_initial``/``backoff_max``
    (seconds): the wait before retry k is ``min(max, initial * 2**(k-2))``.
    ``confirm_window`` (seconds): quiet time after a restart that makes an
    incident recovered.  ``adopt``: look after any VM of the device that fails,
    not only those given to :meth:`manage` (a working set is made for it: with
    nothing marked droppable, it is restarted without trimming).
    ``on_recovered``/``on_fatal``: hooks called with the closed :class:`Incident`
    on the supervisor thread.  Use as a context manager, or start()/stop().
    """

    def __init__(
        self,
        device: Device,
        *,
        policy: Policy | None = None,
        watch_id: int | None = None,
        listener: Listener | None = None,
        max_attempts: int = 4,
        backoff_initial: float = 0.005,
        backoff_max: float = 0.5,
        confirm_window: float = 0.1,
        adopt: bool = True,
        on_recovered: IncidentHook | None = None,
        on_fatal: IncidentHook | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        inline: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.device = device
        self.policy: Policy = policy or LeastRecentlyUsed()
        self.watch_id = _resolve_watch_id(device, listener, watch_id)
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.confirm_window = confirm_window
        self.adopt = adopt
        self.inline = inline
        self._decide = threading.RLock()  #: held by whichever thread is making a decision
        self._hooks_recovered: list[IncidentHook] = [on_recovered] if on_recovered else []
        self._hooks_fatal: list[IncidentHook] = [on_fatal] if on_fatal else []
        self._clock = clock
        self._listener = listener
        self._owns_listener = listener is None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._tasks: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._vms: dict[int, Vm] = {}
        self._working_sets: dict[int, WorkingSet] = {}
        self._open: dict[int, Incident] = {}
        self._generation: dict[int, int] = {}  #: per VM: bumps on each restart (stale confirm timers)
        self.incidents: list[Incident] = []
        self.ignored: dict[str, int] = {"other_watch": 0, "unknown_vm": 0, "closed": 0}
        self.sweeps = 0
        self._handler = self.handle  # one bound method, so remove_handler finds it

    # --- what it looks after ---------------------------------------------------------------
    def manage(self, vm: Vm, working_set: WorkingSet | None = None) -> WorkingSet:
        """Look after ``vm`` (a VM of this device); returns its working set (created if needed)."""
        if vm.device is not self.device:
            raise ValueError(f"{vm!r} belongs to {vm.device!r}, not to {self.device!r}: one supervisor per DRM file")
        with self._lock:
            ws = working_set or self._working_sets.get(vm.id) or WorkingSet(vm)
            self._vms[vm.id] = vm
            self._working_sets[vm.id] = ws
            return ws

    def working_set(self, vm: Vm | int) -> WorkingSet:
        vm_id = vm if isinstance(vm, int) else vm.id
        with self._lock:
            return self._working_sets[vm_id]

    def on_recovered(self, hook: IncidentHook) -> IncidentHook:
        """Register ``hook(incident)`` for recovered incidents (usable as a decorator)."""
        self._hooks_recovered.append(hook)
        return hook

    def on_fatal(self, hook: IncidentHook) -> IncidentHook:
        """Register ``hook(incident)`` for fatal incidents (usable as a decorator)."""
        self._hooks_fatal.append(hook)
        return hook

    # --- lifetime ----------------------------------------------------------------------------
    def start(self) -> VmSupervisor:
        """Start the supervisor thread and (unless one was given) its own listener."""
        with self._lock:
            if self._thread is not None:
                return self
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"xe-supervisor-{self.device.path}", daemon=True)
            self._thread.start()
        if self._listener is None:
            from ..listener import Listener

            self._listener = Listener(
                self.device,
                watch_id=self.watch_id,
                on_error=self._listener_error,
                name=f"xe-supervisor-{self.watch_id}",
            )
        self._listener.add_handler(self._handler)
        if self._owns_listener:
            self._listener.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop its listener (if it owns it) and the supervisor thread; idempotent.

        Open incidents stay open (their record says so)."""
        if self._listener is not None:
            if self._owns_listener:
                self._listener.destroy()  # stop, join, close its watch
            self._listener.remove_handler(self._handler)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    close = stop

    def __enter__(self) -> VmSupervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def listener(self) -> Listener | None:
        return self._listener

    def _listener_error(self, exc: BaseException, event: Event) -> None:
        log.error("handling %s failed: %s", event, exc, exc_info=exc)

    # --- input -------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        """Take one event (the listener calls this; tests may too).

        A VM_ERR is decided here at once when ``inline`` (trim, then VM_RESTART);
        nothing here ever sleeps: waits are scheduled on the supervisor thread.
        """
        if isinstance(event, VmError):
            if event.watch_id != self.watch_id:
                with self._lock:
                    self.ignored["other_watch"] += 1
                log.debug("ignored %s: watch %d is not ours (%d)", event, event.watch_id, self.watch_id)
                return
            if self.inline and self._thread is not None:
                with self._decide:
                    try:
                        self._on_vm_error(event)
                    except Exception:  # a bug must not reach the listener's error hook as ours
                        log.exception("handling %s failed", event)
            else:
                self._schedule(0.0, lambda: self._on_vm_error(event))
        elif isinstance(event, Loss):
            self._schedule(0.0, self._sweep)
        elif isinstance(event, Removal) and event.watch_id == self.watch_id:
            log.info("watch %d removed: %s is gone", event.watch_id, self.device.path)

    # --- the supervisor thread -------------------------------------------------------------
    def _schedule(self, delay: float, task: Callable[[], None]) -> None:
        due = self._clock() + int(delay * 1e9)
        with self._cond:
            heapq.heappush(self._tasks, (due, next(self._seq), task))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._tasks:
                        wait = (self._tasks[0][0] - self._clock()) / 1e9
                        if wait <= 0:
                            _, _, task = heapq.heappop(self._tasks)
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
            try:
                with self._decide:
                    task()
            except Exception:  # a bug must not kill the supervisor
                log.exception("supervisor task failed")
            with self._cond:
                self._cond.notify_all()

    # --- decisions -----------------------------------------------------------------------------
    def _lookup(self, vm_id: int) -> Vm | None:
        with self._lock:
            vm = self._vms.get(vm_id)
            if vm is None and self.adopt:
                vm = self.device.vms.get(vm_id)
                if vm is not None:
                    self.manage(vm)
            return vm

    def _on_vm_error(self, event: VmError) -> None:
        now = self._clock()
        vm = self._lookup(event.vm_id)
        if vm is None:
            with self._lock:
                self.ignored["unknown_vm"] += 1
            log.warning("%s: not a VM this supervisor looks after on %s; ignored", event, self.device.path)
            return
        with self._lock:
            incident = self._open.get(vm.id)
            if incident is None:
                incident = Incident(
                    id=len(self.incidents) + 1,
                    vm_id=vm.id,
                    errno=event.errno,
                    device=self.device.path,
                    watch_id=event.watch_id,
                    opened_ns=now,
                    restartable=vm.restartable,
                )
                self.incidents.append(incident)
                self._open[vm.id] = incident
                self._step(incident, "vm_err", f"{event.errno_name} (event t={event.timestamp_ns})", now)
                first = True
            else:
                self._step(incident, "vm_err", f"{event.errno_name} again after attempt {len(incident.attempts)}", now)
                first = False
                if incident.attempts and not incident.attempts[-1].restart_ns:
                    # already waiting to retry (a duplicate record): nothing new to do
                    self._step(incident, "duplicate", "a retry is already scheduled", now)
                    return
        if not event.is_oom:
            self._close(incident, FATAL, f"{event.errno_name} is not recoverable: the kernel banned the VM")
            return
        if not vm.restartable:
            self._close(incident, FATAL, "the VM is not RESTARTABLE: the kernel banned it")
            return
        if first:
            self._attempt(incident, vm, event)
            return
        number = len(incident.attempts) + 1
        if number > self.max_attempts:
            self._close(incident, FATAL, f"still failing after {self.max_attempts} restart attempt(s)")
            return
        delay = min(self.backoff_max, self.backoff_initial * (1 << (number - 2)))
        with self._lock:
            incident.attempts.append(Attempt(number=number, event_ns=event.timestamp_ns, errno=event.errno))
            self._generation[vm.id] = self._generation.get(vm.id, 0) + 1
            self._step(incident, "backoff", f"attempt {number} in {delay * 1e3:.1f} ms")
        self._schedule(delay, lambda: self._attempt(incident, vm, event, reuse=True))

    def _attempt(self, incident: Incident, vm: Vm, event: VmError, *, reuse: bool = False) -> None:
        with self._lock:
            if not incident.is_open:
                return
            if reuse:
                attempt = incident.attempts[-1]
            else:
                attempt = Attempt(number=len(incident.attempts) + 1, event_ns=event.timestamp_ns, errno=event.errno)
                incident.attempts.append(attempt)
            ws = self._working_sets[vm.id]
        already = incident.trimmed_bytes
        try:
            shortfall = measure_shortfall(ws, attempt=attempt.number, already_trimmed=already)
        except (OSError, ValueError) as exc:
            self._close(incident, FATAL, f"cannot read free VRAM: {exc}")
            return
        attempt.shortfall = shortfall
        self._step(incident, "measure", str(shortfall))
        if shortfall.bytes:
            picked = self.policy.select(ws, shortfall.bytes)
            for binding in picked:
                try:
                    entry = ws.entry(binding)
                    got = ws.release(entry)
                except (KeyError, OSError, ValueError) as exc:
                    self._step(incident, "release_failed", f"0x{binding.addr:x}: {exc}")
                    continue
                attempt.released.append((binding.addr, got))
                attempt.trimmed_bytes += got
            self._step(
                incident,
                "trim",
                f"{self.policy.name}: released {len(attempt.released)} binding(s), {attempt.trimmed_bytes >> 20} MiB"
                + (" (nothing droppable)" if not picked else ""),
            )
        with self._lock:
            self._generation[vm.id] = generation = self._generation.get(vm.id, 0) + 1
        attempt.restart_ns = self._clock()
        try:
            vm.restart(timestamp_ns=event.timestamp_ns)
        except ValueError as exc:  # the device was closed under us
            attempt.result = "device closed"
            self._close(incident, FATAL, f"cannot restart: {exc}")
            return
        except IoctlError as exc:
            if exc.errno == errno.EALREADY:
                attempt.result = "already running"
                self._step(incident, "restart", "EALREADY: the VM is already running")
            else:
                attempt.result = _errno_name(exc.errno or 0)
                self._step(incident, "restart", f"failed: {exc}")
                self._close(
                    incident, FATAL, f"VM_RESTART failed with {attempt.result}: the VM is gone or not restartable"
                )
                return
        else:
            attempt.result = "queued"
            lat = attempt.latency_ns
            self._step(
                incident, "restart", "rebind worker queued" + (f", {lat / 1000:.0f} us after the event" if lat else "")
            )
        self._schedule(self.confirm_window, lambda: self._confirm(incident, vm.id, generation))

    def _confirm(self, incident: Incident, vm_id: int, generation: int) -> None:
        with self._lock:
            if not incident.is_open or self._generation.get(vm_id) != generation:
                return
        self._close(incident, RECOVERED, f"no VM_ERR for {self.confirm_window * 1e3:.0f} ms after the restart")

    def _sweep(self) -> None:
        """After a LOSS: restart every restartable VM without an open incident."""
        with self._lock:
            self.sweeps += 1
            vms = [
                vm for vm_id, vm in self._vms.items() if vm.restartable and not vm.destroyed and vm_id not in self._open
            ]
            if self.adopt:
                vms += [vm for vm_id, vm in self.device.vms.items() if vm_id not in self._vms and vm.restartable]
        for vm in vms:
            now = self._clock()
            try:
                vm.restart()
            except IoctlError as exc:
                if exc.errno != errno.EALREADY:
                    log.warning("sweep after LOSS: restart of vm %d: %s", vm.id, exc)
                continue
            except ValueError:  # device closed
                continue
            if vm.id not in self._vms:
                self.manage(vm)
            with self._lock:
                incident = Incident(
                    id=len(self.incidents) + 1,
                    vm_id=vm.id,
                    errno=0,
                    device=self.device.path,
                    watch_id=self.watch_id,
                    opened_ns=now,
                    restartable=True,
                )
                self.incidents.append(incident)
                self._open[vm.id] = incident
                attempt = Attempt(number=1, event_ns=0, errno=0, restart_ns=now, result="queued")
                incident.attempts.append(attempt)
                self._generation[vm.id] = generation = self._generation.get(vm.id, 0) + 1
                self._step(incident, "loss", "records were lost; the VM was found paused", now)
                self._step(incident, "restart", "rebind worker queued", now)
            self._schedule(self.confirm_window, functools.partial(self._confirm, incident, vm.id, generation))

    # --- bookkeeping ---------------------------------------------------------------------------
    def _step(self, incident: Incident, what: str, detail: str = "", t_ns: int | None = None) -> None:
        with self._lock:
            incident.timeline.append(Step(self._clock() if t_ns is None else t_ns, what, detail))
        log.debug("incident %d vm %d: %s %s", incident.id, incident.vm_id, what, detail)

    def _close(self, incident: Incident, outcome: str, reason: str) -> None:
        with self._cond:
            if not incident.is_open:
                return
            incident.outcome = outcome
            incident.reason = reason
            incident.closed_ns = self._clock()
            incident.timeline.append(Step(incident.closed_ns, outcome, reason))
            if self._open.get(incident.vm_id) is incident:
                del self._open[incident.vm_id]
            self._cond.notify_all()
        (log.info if outcome == RECOVERED else log.warning)("%s", incident)
        for hook in list(self._hooks_recovered if outcome == RECOVERED else self._hooks_fatal):
            try:
                hook(incident)
            except Exception:
                log.exception("%s hook failed", outcome)

    # --- results ---------------------------------------------------------------------------------
    def open_incidents(self) -> list[Incident]:
        with self._lock:
            return list(self._open.values())

    def closed_incidents(self) -> list[Incident]:
        with self._lock:
            return [i for i in self.incidents if not i.is_open]

    def wait_closed(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` incidents are closed and none is open; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([i for i in self.incidents if not i.is_open]) < count or self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no incident is open and no task is due soon; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._open or self._tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def stats(self) -> dict[str, Any]:
        """Counts and latency percentiles (us) over closed incidents."""
        with self._lock:
            closed = [i for i in self.incidents if not i.is_open]
            latencies = [i.latency_ns for i in closed if i.latency_ns is not None]
            return {
                "incidents": len(closed),
                "open": len(self._open),
                "recovered": sum(1 for i in closed if i.recovered),
                "fatal": sum(1 for i in closed if i.fatal),
                "attempts": sum(len(i.attempts) for i in closed),
                "trimmed_bytes": sum(i.trimmed_bytes for i in closed),
                "latency_us": latency_summary(latencies),
                "ignored": dict(self.ignored),
                "sweeps": self.sweeps,
            }

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"<VmSupervisor {self.device.path} watch={self.watch_id} {len(self._vms)} VMs {state}>"


def _resolve_watch_id(device: Device, listener: Listener | None, watch_id: int | None) -> int:
    """The watch_id this supervisor's events carry: given, or read off the listener's subscription.

    A listener on a shared :class:`~xeclient.watch.Watch` must have ``device``
    among its subscriptions; a ``watch_id`` that disagrees with it would make
    the supervisor ignore every event, so it is refused.
    """
    if listener is None:
        return 0 if watch_id is None else watch_id
    if listener.device is not None:
        if listener.device is not device:
            raise ValueError(f"{listener!r} listens to {listener.device!r}, not to {device!r}")
        if watch_id is not None and watch_id != listener.watch_id:
            raise ValueError(f"watch_id {watch_id} differs from the listener's ({listener.watch_id})")
        return listener.watch_id
    subscribed = [wid for d, wid in (listener.watch.subscriptions if listener.watch is not None else []) if d is device]
    if not subscribed:
        raise ValueError(
            f"{listener!r}: its pipe is not subscribed to {device!r}; subscribe it first (Watch.subscribe)"
        )
    if watch_id is not None and watch_id != subscribed[0]:
        raise ValueError(f"watch_id {watch_id} differs from the pipe's subscription to {device.path} ({subscribed[0]})")
    return subscribed[0]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def latency_summary(latencies_ns: list[int]) -> dict[str, float | None]:
    """``{"p50", "p99", "max"}`` in microseconds (None when there is no sample)."""
    if not latencies_ns:
        return {"p50": None, "p99": None, "max": None}
    us = sorted(n / 1000 for n in latencies_ns)
    return {"p50": round(percentile(us, 50), 1), "p99": round(percentile(us, 99), 1), "max": round(us[-1], 1)}


#: The name the issue and the README use.
RecoveryAgent = VmSupervisor
