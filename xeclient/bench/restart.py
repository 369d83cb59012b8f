"""Figure 2: event-to-restart latency, VM_ERR ``timestamp_ns`` -> VM_RESTART issued by the agent.

On the fake: one LR|RESTARTABLE VM with a VRAM BO bound and a long-running job;
each incident arms ``rebind_enospc`` once and evicts the VM, so its rebind
worker fails with -ENOSPC and posts VM_ERR (stamped by the driver when posted);
the :class:`~xeclient.recovery.RecoveryAgent` (given a listener whose first
handler notes when the VM_ERR was delivered) trims and restarts, the worker
then succeeds and the incident closes as recovered.  Incidents run one after
the other.

Latencies come from the agent's incident records: ``Attempt.latency_ns`` is
restart issued - event timestamp; the trim (shortfall measurement and
releases, between the ``vm_err`` and ``trim``/``measure`` timeline steps) is
subtracted, as the figure excludes it.

On ``--backend kernel`` a VM_ERR needs a real eviction under memory pressure,
which the bench does not provoke on a user's device: the figure is skipped
there (``xeclient demo`` exercises that path).
"""

from __future__ import annotations

import time
from typing import Any

from ..uapi.constants import EngineClass, VmCreateFlag
from ._common import Context, Figure, Repeated, Row, Target, latency_stats

NAME = "restart"
TITLE = "2. Event-to-restart latency: VM_ERR timestamp -> VM_RESTART issued (trim excluded)"

LABELS: dict[str, tuple[str, str]] = {
    "p50_us": ("event -> restart, trim excluded, p50", "us"),
    "p99_us": ("event -> restart, trim excluded, p99", "us"),
    "max_us": ("event -> restart, trim excluded, max", "us"),
    "total_p50_us": ("event -> restart incl. trim, p50", "us"),
    "trim_p50_us": ("trim (measure + release), p50", "us"),
    "to_callback_p50_us": ("of which event -> listener callback, p50", "us"),
    "to_agent_p50_us": ("of which event -> agent thread handles it, p50", "us"),
    "incidents": ("incidents recovered", ""),
}
KEYS = tuple(LABELS)

WATCH_ID = 3


def _handled_ns(incident: Any) -> int | None:
    """Event timestamp -> the agent's thread took the VM_ERR (its first ``vm_err`` timeline step)."""
    for step in incident.timeline:
        if step.what == "vm_err":
            first = incident.attempts[0] if incident.attempts else None
            if first is not None and first.event_ns:
                return int(step.t_ns - first.event_ns)
    return None


def _trim_ns(incident: Any) -> int:
    """The first attempt's trim: from the ``vm_err`` step to its last ``measure``/``trim`` step."""
    start = None
    end = None
    for step in incident.timeline:
        if step.what == "vm_err" and start is None:
            start = step.t_ns
        elif step.what in ("measure", "trim") and start is not None:
            end = step.t_ns
        elif step.what == "restart":
            break
    return (end - start) if start is not None and end is not None else 0


def incidents_run(count: int) -> dict[str, Any]:
    """Run ``count`` incidents one after the other; latencies in ns."""
    from ..backends.fake import FakeBackend
    from ..device import Device
    from ..events import VmError
    from ..listener import Listener
    from ..recovery import RecoveryAgent

    backend = FakeBackend()
    excl: list[int] = []
    total: list[int] = []
    trims: list[int] = []
    handled: list[int] = []
    callbacks: dict[int, int] = {}  # event timestamp -> when a listener handler saw it
    outcomes: dict[str, int] = {}
    try:
        with Device.open(backend=backend) as dev:
            vm = dev.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)
            bo = dev.create_bo(1 << 20, placement="vram")
            vm.bind(bo, addr=0x100000)
            queue = dev.create_exec_queue(vm, EngineClass.COMPUTE)
            queue.exec(address=0x100000)
            # The agent gets a listener made here so that a timing handler can go first, before the
            # agent's own (a handler after it would be delayed by the agent's thread taking the GIL).
            listener = Listener(dev, watch_id=WATCH_ID)
            listener.add_handler(lambda ev: callbacks.setdefault(ev.timestamp_ns, time.monotonic_ns()), VmError)
            agent = RecoveryAgent(
                dev, watch_id=WATCH_ID, listener=listener, confirm_window=0.002, backoff_initial=0.001
            )
            agent.manage(vm)
            with listener, agent:
                time.sleep(0.05)  # let the listener reach its poll
                for i in range(count):
                    backend.inject("rebind_enospc", probability=100, times=1)
                    backend.evict(dev.fd, vm.id)
                    if not agent.wait_closed(i + 1, timeout=10):
                        raise RuntimeError(f"incident {i + 1} did not close in 10 s: {agent.stats()}")
                    backend.settle(5)
                incidents = list(agent.incidents)
            queue.destroy()
    finally:
        backend.shutdown()
    for inc in incidents:
        outcomes[inc.outcome] = outcomes.get(inc.outcome, 0) + 1
        lat = inc.latency_ns
        if lat is None:
            continue
        trim = _trim_ns(inc)
        total.append(lat)
        trims.append(trim)
        excl.append(lat - trim)
        h = _handled_ns(inc)
        if h is not None:
            handled.append(h)
    to_callback = [
        callbacks[i.attempts[0].event_ns] - i.attempts[0].event_ns
        for i in incidents
        if i.attempts and i.attempts[0].event_ns in callbacks
    ]
    return {
        "excl": excl,
        "total": total,
        "trim": trims,
        "handled": handled,
        "callback": to_callback,
        "outcomes": outcomes,
    }


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    count = ctx.scale(300, 20)
    fig.params = {"incidents_per_run": count, "repeats": ctx.repeats}
    if ctx.backend == "kernel":
        fig.skip(
            KEYS, LABELS, "kernel: a VM_ERR needs a real eviction; the bench does not provoke one (see xeclient demo)"
        )
        return fig
    try:
        runs = [incidents_run(count) for _ in range(ctx.repeats)]
    except ImportError as exc:
        fig.skip(KEYS, LABELS, f"recovery agent not available: {exc}")
        return fig
    stats_excl = [latency_stats(r["excl"]) for r in runs]
    stats_total = [latency_stats(r["total"]) for r in runs]
    stats_trim = [latency_stats(r["trim"]) for r in runs]
    stats_handled = [latency_stats(r["handled"]) for r in runs]
    stats_callback = [latency_stats(r["callback"]) for r in runs]

    def rep(stats: list[dict[str, float]], k: str) -> Repeated:
        return Repeated([s[k] for s in stats])

    fig.add(
        Row(
            "p50_us",
            LABELS["p50_us"][0],
            rep(stats_excl, "p50").median,
            "us",
            spread=rep(stats_excl, "p50").spread,
            target=Target("<= 100 us", max=100.0),
        )
    )
    fig.add(
        Row("p99_us", LABELS["p99_us"][0], rep(stats_excl, "p99").median, "us", spread=rep(stats_excl, "p99").spread)
    )
    fig.add(
        Row("max_us", LABELS["max_us"][0], rep(stats_excl, "max").median, "us", spread=rep(stats_excl, "max").spread)
    )
    fig.add(
        Row(
            "total_p50_us",
            LABELS["total_p50_us"][0],
            rep(stats_total, "p50").median,
            "us",
            spread=rep(stats_total, "p50").spread,
        )
    )
    fig.add(
        Row(
            "trim_p50_us",
            LABELS["trim_p50_us"][0],
            rep(stats_trim, "p50").median,
            "us",
            spread=rep(stats_trim, "p50").spread,
        )
    )
    fig.add(
        Row(
            "to_callback_p50_us",
            LABELS["to_callback_p50_us"][0],
            rep(stats_callback, "p50").median,
            "us",
            spread=rep(stats_callback, "p50").spread,
        )
    )
    fig.add(
        Row(
            "to_agent_p50_us",
            LABELS["to_agent_p50_us"][0],
            rep(stats_handled, "p50").median,
            "us",
            spread=rep(stats_handled, "p50").spread,
        )
    )
    recovered = [r["outcomes"].get("recovered", 0) for r in runs]
    fig.add(
        Row(
            "incidents",
            LABELS["incidents"][0],
            float(min(recovered)),
            "",
            note=f"per run: {', '.join(str(r['outcomes']) for r in runs)}",
        )
    )
    fig.notes.append(
        "fake: VM_ERR posted by the fake rebind worker (stamped at post); the agent is given a Listener whose first handler notes the delivery time"
    )
    return fig
