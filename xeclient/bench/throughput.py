"""Figure 3: burst throughput, and where loss starts with a slow callback.

* ``parse_records`` alone on 4,080-byte reads (170 VM_ERR records each).
* Listener drain rate: the notification queue (512 notes) is filled before the
  listener starts, then the time from ``start()`` to the last callback gives
  records/s parsed and dispatched (thread start-up included: conservative);
  no loss is possible and none is accepted.
* End to end with the producer on the same interpreter: a producer thread
  posts as fast as it can, never more than 480 records ahead of the callbacks
  (so nothing is lost), for N records.  On the fake the post itself is Python
  on the same GIL; on a kernel it is the kernel's.
* Loss point: a 512-note queue, a slow callback (a 50 us pure-Python spin,
  holding the GIL), and bursts of B records posted back to back.  For each B:
  posted, delivered, lost (= posted - delivered), Loss events.  Records carry
  sequence numbers, so every run of dropped records is located: the listener
  must deliver exactly one Loss per run, in order between the last record
  before the drop and the first after it ("exact").
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._common import Context, Figure, Repeated, Row, Target, vm_err_record
from ._sources import BENCH_WATCH_ID, StreamUnavailable, open_stream

NAME = "throughput"
TITLE = "3. Burst throughput and loss (512-note queue)"

LABELS: dict[str, tuple[str, str]] = {
    "parse_per_s": ("parse_records alone (170 records per read)", "rec/s"),
    "drain_per_s": ("Listener: read+parse+dispatch, pre-filled queue", "rec/s"),
    "drain_cold_per_s": ("same, from start() (thread start-up included)", "rec/s"),
    "e2e_per_s": ("end to end incl. the producer's post, no loss", "rec/s"),
    "loss_burst": ("slow callback: smallest burst with loss", "rec"),
    "loss_exact": ("Loss events == runs of dropped records, in place", "runs ok"),
}
KEYS = tuple(LABELS)

NR_NOTES = 512
SLOW_CALLBACK_S = 50e-6
BURSTS = (128, 256, 384, 512, 640, 768, 1024, 1536, 2048, 4096, 8192)


def parse_rate(iterations: int) -> float:
    from ..events import parse_records

    buf = b"".join(vm_err_record(i, 123456789 + i, BENCH_WATCH_ID) for i in range(170))
    parse_records(buf)
    t0 = time.perf_counter()
    for _ in range(iterations):
        parse_records(buf)
    return 170 * iterations / (time.perf_counter() - t0)


def drain_time(backend: str, n: int) -> tuple[float, int]:
    """Fill the queue with ``n`` records, start a listener, and time ``start()`` -> the n-th callback.

    Returns (seconds, Loss events).
    """
    from ..listener import Listener

    with open_stream(backend, nr_notes=NR_NOTES) as stream:
        for i in range(n):
            stream.post(i)
        got = [0]
        last = [0.0]
        done = threading.Event()

        def on_event(_ev: Any) -> None:
            got[0] += 1
            if got[0] >= n:
                last[0] = time.perf_counter()
                done.set()

        listener = Listener(stream.watch, on_event)
        t0 = time.perf_counter()
        listener.start()
        done.wait(10)
        listener.destroy()
        lost = listener.stats().dropped
    return (last[0] - t0 if last[0] else float("nan")), lost


def drain_rates(backend: str, repeats: int) -> dict[str, Any]:
    """Records/s read, parsed and dispatched from a pre-filled 512-note queue.

    Start-up (two threads, the first wake-up) is taken out by subtraction: the
    same run with 1 record gives it, so ``rate = 511 / (median T512 - median T1)``.
    ``cold`` is 512 / median T512, start-up included.
    """
    full: list[float] = []
    one: list[float] = []
    lost = 0
    for _ in range(repeats):
        t1, l1 = drain_time(backend, 1)
        tn, ln = drain_time(backend, NR_NOTES)
        one.append(t1)
        full.append(tn)
        lost += l1 + ln
    m_full = Repeated(full).median or float("nan")
    m_one = Repeated(one).median or float("nan")
    pairs = [(NR_NOTES - 1) / (f - o) for f, o in zip(full, one, strict=True) if f > o]
    return {
        "rate": (NR_NOTES - 1) / (m_full - m_one) if m_full > m_one else float("nan"),
        "spread": Repeated(pairs).spread,
        "cold": NR_NOTES / m_full,
        "cold_spread": Repeated([NR_NOTES / f for f in full]).spread,
        "startup_ms": m_one * 1000,
        "lost": lost,
    }


def e2e_rate(backend: str, count: int) -> dict[str, float]:
    """A flow-controlled producer thread posting ``count`` records as fast as it can."""
    from ..listener import Listener

    with open_stream(backend, nr_notes=NR_NOTES) as stream:
        got = [0]
        done = threading.Event()
        cond = threading.Condition()

        def on_event(_ev: Any) -> None:
            got[0] += 1
            if got[0] >= count:
                done.set()
            if got[0] % 64 == 0:
                with cond:
                    cond.notify()

        posted = [0]

        def caught_up() -> bool:
            return posted[0] - got[0] <= NR_NOTES // 2

        def produce() -> None:
            post = stream.post
            for i in range(count):
                if i - got[0] > NR_NOTES - 32:
                    posted[0] = i
                    with cond:
                        cond.wait_for(caught_up, timeout=1)
                post(i)

        with Listener(stream.watch, on_event) as listener:
            t0 = time.perf_counter()
            producer = threading.Thread(target=produce, name="bench-burst-producer", daemon=True)
            producer.start()
            done.wait(60)
            elapsed = time.perf_counter() - t0
            producer.join(5)
            stats = listener.stats()
    return {"rate": got[0] / elapsed, "lost": float(stats.dropped), "delivered": float(got[0])}


def loss_run(backend: str, burst: int) -> dict[str, Any]:
    """One burst of ``burst`` records into a 512-note queue, a slow callback; account for every record."""
    from ..events import Loss, VmError
    from ..listener import Listener

    with open_stream(backend, nr_notes=NR_NOTES) as stream:
        order: list[int] = []  # seq of each VmError, -1 for a Loss, -2 for a key notification
        idle = threading.Event()

        def on_event(ev: Any) -> None:
            end = time.perf_counter() + SLOW_CALLBACK_S
            while time.perf_counter() < end:  # a slow pure-Python handler: it holds the GIL
                pass
            if isinstance(ev, VmError):
                order.append(ev.vm_id)
            elif isinstance(ev, Loss):
                order.append(-1)
            else:
                order.append(-2)
            idle.set()

        with Listener(stream.watch, on_event) as listener:
            time.sleep(0.02)
            for i in range(burst):
                stream.post(i)
            # quiet: wait until nothing new has arrived for 100 ms (and the listener's backlog is empty)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                idle.clear()
                if not idle.wait(0.1) and listener.stats().backlog == 0:
                    break
            stats = listener.stats()
    delivered = [s for s in order if s >= 0 or s == -2]
    losses = order.count(-1)
    stamped = stream.stamped
    lost = burst - len(delivered)
    # key notifications carry no sequence number: for them only "a Loss iff something was lost"
    exact = _loss_in_place(order, burst) if stamped else (losses > 0) == (lost > 0)
    return {
        "burst": burst,
        "posted": burst,
        "delivered": len(delivered),
        "lost": lost,
        "loss_events": losses,
        "listener_dropped": stats.dropped,
        "exact": exact and stats.dropped == losses,
    }


def _loss_in_place(order: list[int], posted: int) -> bool:
    """Exactly one Loss between the two records around each run of dropped records, none elsewhere."""
    prev = -1  # seq of the previous record delivered
    pending_loss = 0
    for item in order:
        if item == -1:
            pending_loss += 1
            continue
        gap = item != prev + 1
        if item <= prev or pending_loss != (1 if gap else 0):
            return False
        prev, pending_loss = item, 0
    trailing_gap = prev != posted - 1
    return pending_loss == (1 if trailing_gap else 0)


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    repeats = ctx.repeats if ctx.quick else max(ctx.repeats, 15)
    e2e_count = ctx.scale(20_000, 1_000)
    fig.params = {
        "nr_notes": NR_NOTES,
        "drain_repeats": repeats,
        "e2e_records": e2e_count,
        "slow_callback_us": SLOW_CALLBACK_S * 1e6,
    }

    p = Repeated([parse_rate(ctx.scale(2000, 200)) for _ in range(ctx.repeats)])
    fig.add(Row("parse_per_s", LABELS["parse_per_s"][0], p.median, "rec/s", spread=p.spread))
    try:
        dr = drain_rates(ctx.backend, repeats)
        fig.add(
            Row(
                "drain_per_s",
                LABELS["drain_per_s"][0],
                dr["rate"],
                "rec/s",
                spread=dr["spread"],
                target=Target(">= 200,000 rec/s", min=200_000.0),
                note=f"{repeats} runs of {NR_NOTES} and of 1 record; start-up ({dr['startup_ms']:.2f} ms, the 1-record run) "
                f"subtracted; {dr['lost']} Loss events" + (" (loss!)" if dr["lost"] else ""),
            )
        )
        fig.add(Row("drain_cold_per_s", LABELS["drain_cold_per_s"][0], dr["cold"], "rec/s", spread=dr["cold_spread"]))
        e = [e2e_rate(ctx.backend, e2e_count) for _ in range(ctx.repeats)]
        er = Repeated([r["rate"] for r in e])
        fig.add(
            Row(
                "e2e_per_s",
                LABELS["e2e_per_s"][0],
                er.median,
                "rec/s",
                spread=er.spread,
                note=f"{sum(int(r['lost']) for r in e)} Loss events",
            )
        )
        runs = []
        first_lossy: int | None = None
        for burst in BURSTS:
            r = loss_run(ctx.backend, burst)
            runs.append(r)
            if r["lost"] and first_lossy is None:
                first_lossy = burst
            if first_lossy is not None and (ctx.quick or burst >= 2 * first_lossy):
                break
        fig.add(
            Row(
                "loss_burst",
                LABELS["loss_burst"][0],
                float(first_lossy) if first_lossy is not None else None,
                "rec",
                note=None if first_lossy is not None else f"no loss up to {runs[-1]['burst']} records",
            )
        )
        ok = sum(1 for r in runs if r["exact"])
        fig.add(
            Row(
                "loss_exact",
                LABELS["loss_exact"][0],
                float(ok),
                f"of {len(runs)}",
                target=Target(f"all {len(runs)} runs", min=float(len(runs))),
            )
        )
        fig.notes.append(
            "bursts (posted/delivered/lost/Loss events): "
            + "; ".join(f"{r['burst']}: {r['posted']}/{r['delivered']}/{r['lost']}/{r['loss_events']}" for r in runs)
        )
        fig.params["bursts"] = [r["burst"] for r in runs]
    except (ImportError, StreamUnavailable) as exc:
        fig.skip(KEYS, LABELS, f"listener rows skipped: {exc}")
    return fig
