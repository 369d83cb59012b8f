"""Figure 4: idle cost -- wake-ups of a listener with nothing to read, and ``stop()`` latency.

Wake-ups are context switches (voluntary + involuntary) of the listener's own
threads, read from ``/proc/self/task/<tid>/status`` before and after a quiet
window (the threads are the ones that appeared when it started); the process'
total (psutil ``num_ctx_switches``) is shown beside it, which also counts the
bench's own sleeping main thread and the fake's worker.

``stop()`` is timed on a running listener blocked in ``poll()``; it returns
once both threads have exited.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._common import Context, Figure, Repeated, Row, Target, thread_ctx_switches, thread_ids
from ._sources import StreamUnavailable, open_stream

NAME = "idle"
TITLE = "4. Idle cost: wake-ups of an idle listener, stop() latency"

LABELS: dict[str, tuple[str, str]] = {
    "listener_wakeups_per_s": ("idle listener threads: wake-ups", "/s"),
    "process_wakeups_per_s": ("whole process during the window (info)", "/s"),
    "stop_ms": ("stop() of a blocked listener, median", "ms"),
    "stop_max_ms": ("stop(), max", "ms"),
}
KEYS = tuple(LABELS)


def idle_window(backend: str, seconds: float) -> dict[str, float]:
    import psutil

    from ..listener import Listener

    with open_stream(backend) as stream:
        before = thread_ids()
        listener = Listener(stream.watch, lambda _ev: None)
        listener.start()
        try:
            time.sleep(0.2)  # let both threads reach their blocking calls
            tids = sorted(thread_ids() - before)
            proc = psutil.Process()
            c0 = {t: thread_ctx_switches(t) for t in tids}
            p0 = sum(proc.num_ctx_switches())
            t0 = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - t0
            c1 = {t: thread_ctx_switches(t) for t in tids}
            p1 = sum(proc.num_ctx_switches())
        finally:
            listener.destroy()
    per_thread = sum((c1[t] or 0) - (c0[t] or 0) for t in tids if c0[t] is not None and c1[t] is not None)
    return {"listener": per_thread / elapsed, "process": (p1 - p0) / elapsed, "threads": float(len(tids))}


def stop_latencies(backend: str, count: int) -> list[float]:
    from ..listener import Listener

    out: list[float] = []
    with open_stream(backend) as stream:
        for _ in range(count):
            listener: Any = Listener(stream.watch, lambda _ev: None)
            listener.start()
            time.sleep(0.02)
            t0 = time.perf_counter()
            listener.stop()
            out.append((time.perf_counter() - t0) * 1000.0)
            alive = [t.name for t in threading.enumerate() if t.name.startswith(listener.name)]
            if alive:
                raise RuntimeError(f"stop() returned with threads alive: {alive}")
    return out


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    seconds = 2.5 if not ctx.quick else 0.4
    stops = ctx.scale(30, 5)
    fig.params = {"window_s": seconds, "repeats": ctx.repeats, "stops": stops}
    try:
        windows = [idle_window(ctx.backend, seconds) for _ in range(ctx.repeats)]
        lw = Repeated([w["listener"] for w in windows])
        pw = Repeated([w["process"] for w in windows])
        fig.add(
            Row(
                "listener_wakeups_per_s",
                LABELS["listener_wakeups_per_s"][0],
                lw.median,
                "/s",
                spread=lw.spread,
                target=Target("0 /s", max=0.0),
                note=f"{int(windows[0]['threads'])} listener threads, {seconds:.1f} s windows",
            )
        )
        fig.add(Row("process_wakeups_per_s", LABELS["process_wakeups_per_s"][0], pw.median, "/s", spread=pw.spread))
        lat = stop_latencies(ctx.backend, stops)
        rep = Repeated(lat)
        fig.add(
            Row(
                "stop_ms",
                LABELS["stop_ms"][0],
                rep.median,
                "ms",
                spread=rep.spread,
                target=Target("<= 5 ms", max=5.0),
                note=f"{stops} stops",
            )
        )
        fig.add(Row("stop_max_ms", LABELS["stop_max_ms"][0], max(lat), "ms"))
    except (ImportError, StreamUnavailable) as exc:
        fig.skip(KEYS, LABELS, f"skipped: {exc}")
    return fig
