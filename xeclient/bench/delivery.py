"""Figure 1: delivery latency, record ``timestamp_ns`` -> user callback entered.

A producer thread posts records at a steady rate (2 kHz), each stamped with
``time.monotonic_ns()`` (CLOCK_MONOTONIC) just before it is posted; the
callback subtracts that stamp from ``time.monotonic_ns()`` on entry.  Four
readers of the same stream (same bytes, same rate, same producer code):

* the **C floor**: the records written into a real OS pipe, read by
  ``xeclient/bench/csrc/floor_reader.c`` (poll + read) in its own process;
* a **plain Python poll+read reader** thread on a real pipe (second reference);
* the **Listener** with the main thread idle (blocked in ``Event.wait``);
* the **Listener** with the main thread busy in pure Python (holding the GIL).

Each run is repeated; rows show the median over repeats and the spread.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from ._common import (
    BusyMainThread,
    Context,
    Figure,
    Repeated,
    Row,
    Target,
    collect,
    latency_stats,
    paced,
    vm_err_record,
)
from ._ctools import CToolUnavailable, build
from ._sources import BENCH_WATCH_ID, StreamUnavailable, open_stream

NAME = "delivery"
TITLE = "1. Delivery latency: record timestamp -> callback entered"
RATE_HZ = 2000.0

LABELS: dict[str, tuple[str, str]] = {
    "floor_p50_us": ("C floor (poll+read, real pipe) p50", "us"),
    "floor_p99_us": ("C floor p99", "us"),
    "floor_max_us": ("C floor max", "us"),
    "pyref_p50_us": ("Python poll+read, real pipe, idle main p50", "us"),
    "pyref_p99_us": ("Python poll+read, real pipe, idle main p99", "us"),
    "pyref_max_us": ("Python poll+read, real pipe, idle main max", "us"),
    "pyref_busy_p50_us": ("Python poll+read, real pipe, busy main p50", "us"),
    "pyref_busy_p99_us": ("Python poll+read, real pipe, busy main p99", "us"),
    "pyfake_p50_us": ("Python poll+read, fake notif. pipe, idle p50", "us"),
    "pyfake_p99_us": ("Python poll+read, fake notif. pipe, idle p99", "us"),
    "pyfake_busy_p50_us": ("Python poll+read, fake notif. pipe, busy p50", "us"),
    "pyfake_busy_p99_us": ("Python poll+read, fake notif. pipe, busy p99", "us"),
    "idle_p50_us": ("Listener, idle main thread p50", "us"),
    "idle_p99_us": ("Listener, idle main thread p99", "us"),
    "idle_max_us": ("Listener, idle main thread max", "us"),
    "busy_p50_us": ("Listener, busy main thread p50", "us"),
    "busy_p99_us": ("Listener, busy main thread p99", "us"),
    "busy_max_us": ("Listener, busy main thread max", "us"),
}
KEYS = tuple(LABELS)


# --- the floor: C reader on a real pipe --------------------------------------------------------------
def floor_run(binary: str, count: int, rate: float) -> dict[str, float]:
    """One run of the C floor: a producer thread writes ``count`` stamped records into a pipe."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            [binary, str(rfd), str(count)], pass_fds=(rfd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except OSError:
        os.close(rfd)
        os.close(wfd)
        raise
    os.close(rfd)
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"floor_reader did not start: {ready or proc.stderr.read().strip()}")
        _produce_and_wait(
            count, rate, lambda i: os.write(wfd, vm_err_record(i, time.monotonic_ns(), BENCH_WATCH_ID)), None
        )
    finally:
        os.close(wfd)
    out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"floor_reader exited {proc.returncode}: {err.strip()}")
    samples = [int(line) for line in out.split()]
    return latency_stats(samples)


# --- the Python reference: poll + read in a thread ----------------------------------------------------------
def _stamp_parser(samples: list[int]) -> Any:
    """A feed(data, now) that appends now - timestamp_ns for every whole 24-byte record (carrying splits)."""
    unpack = struct.Struct("<Q").unpack_from
    carry = b""

    def feed(data: bytes, now: int) -> None:
        nonlocal carry
        data = carry + data if carry else data
        off = 0
        end = len(data)
        while end - off >= 8:
            length = data[off + 4] & 0x7F
            if length < 8 or end - off < length:
                break
            if length >= 24:
                samples.append(now - unpack(data, off + 16)[0])
            off += length
        carry = data[off:]

    return feed


def _switch_interval_like_listener() -> float:
    try:
        from ..listener import DEFAULT_SWITCH_INTERVAL

        return float(DEFAULT_SWITCH_INTERVAL)
    except ImportError:
        return sys.getswitchinterval()


def _reference_run(count: int, rate: float, busy: bool, fd: int, drain: Any, emit: Any) -> dict[str, float]:
    """A plain reader thread (poll on ``fd``, then ``drain()`` -> bytes) fed by the paced producer.

    Busy runs use the switch interval a running Listener applies, so the
    reference and the listener face the same GIL hand-off rules.
    """
    samples: list[int] = []
    feed = _stamp_parser(samples)
    finished = threading.Event()

    def reader() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while len(samples) < count and not finished.is_set():
                if not poller.poll(200):
                    continue
                data = drain()
                now = time.monotonic_ns()
                if data:
                    feed(data, now)
        finally:
            finished.set()

    saved = sys.getswitchinterval()
    if busy:
        sys.setswitchinterval(_switch_interval_like_listener())
    thread = threading.Thread(target=reader, name="bench-reference-reader", daemon=True)
    thread.start()
    try:
        _produce_and_wait(count, rate, emit, finished, busy=busy)
        finished.wait(5)
    finally:
        finished.set()
        thread.join(5)
        sys.setswitchinterval(saved)
    return latency_stats(samples)


def pyref_run(count: int, rate: float, busy: bool = False) -> dict[str, float]:
    """A plain Python reader thread (poll + os.read) on a real OS pipe."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def drain() -> bytes:
        try:
            return os.read(rfd, 4096)
        except BlockingIOError:
            return b""

    try:
        return _reference_run(
            count,
            rate,
            busy,
            rfd,
            drain,
            lambda i: os.write(wfd, vm_err_record(i, time.monotonic_ns(), BENCH_WATCH_ID)),
        )
    finally:
        os.close(wfd)
        os.close(rfd)


def pyref_fake_run(count: int, rate: float, busy: bool = False) -> dict[str, float]:
    """The same plain reader thread on the fake's notification pipe (fake post + fake read, one thread hop)."""
    with open_stream("fake", nr_notes=512) as stream:
        return _reference_run(count, rate, busy, stream.watch.read_fd, stream.watch.drain, stream.post)


# --- the listener -------------------------------------------------------------------------------------------
def listener_run(
    backend: str, count: int, rate: float, busy: bool, listener_options: dict[str, Any]
) -> dict[str, float]:
    from ..events import VmError
    from ..listener import Listener

    samples: list[int] = []
    done = threading.Event()
    extra = {"loss": 0, "other": 0}

    with open_stream(backend, nr_notes=512) as stream:
        stamped = stream.stamped

        def on_event(event: Any) -> None:
            now = time.monotonic_ns()
            if isinstance(event, VmError):
                samples.append(now - event.timestamp_ns)
            elif stamped:
                name = type(event).__name__
                extra["loss" if name == "Loss" else "other"] += 1
                return
            else:  # kernel key notifications: matched with the post times in order
                name = type(event).__name__
                if name == "Loss":
                    extra["loss"] += 1
                    return
                stamp = stream.next_stamp()
                if stamp is not None:
                    samples.append(now - stamp)
            if len(samples) >= count:
                done.set()

        listener = Listener(stream.watch, on_event, watch_id=BENCH_WATCH_ID, **listener_options)
        with listener:
            _start(listener)
            achieved = _produce_and_wait(count, rate, stream.post, done, busy=busy)
            done.wait(10)
    stats = latency_stats(samples)
    stats["rate"] = achieved
    stats["loss"] = float(extra["loss"])
    return stats


def _start(listener: Any) -> None:
    start = getattr(listener, "start", None)
    if start is not None and not getattr(listener, "running", False):
        try:
            start()
        except RuntimeError:  # already started by __enter__
            pass


def _produce_and_wait(count: int, rate: float, emit: Any, done: threading.Event | None, *, busy: bool = False) -> float:
    """Run the paced producer in its own thread while this (main) thread idles or spins."""
    result: list[float] = []
    producer = threading.Thread(
        target=lambda: result.append(paced(count, rate, emit)), name="bench-producer", daemon=True
    )
    producer.start()
    if busy:
        BusyMainThread().run_until(lambda: not producer.is_alive() and (done is None or done.is_set()), timeout=60)
    producer.join(60)
    return result[0] if result else float("nan")


# --- the figure --------------------------------------------------------------------------------------------------
def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    count = ctx.scale(2000, 200)
    fig.params = {"events_per_run": count, "rate_hz": RATE_HZ, "repeats": ctx.repeats, "backend": ctx.backend}

    # The C floor.
    floor_runs: list[dict[str, float]] = []
    try:
        binary = build("floor_reader", ctx.cache_dir)
        for _ in range(ctx.repeats):
            floor_runs.append(floor_run(binary, count, RATE_HZ))
    except CToolUnavailable as exc:
        fig.skip(("floor_p50_us", "floor_p99_us", "floor_max_us"), LABELS, f"C floor skipped: {exc}")
    floor = {k: collect(floor_runs, k) for k in ("p50", "p99", "max")} if floor_runs else {}
    for k in ("p50", "p99", "max"):
        key = f"floor_{k}_us"
        if floor:
            fig.add(Row(key, LABELS[key][0], floor[k].median, "us", spread=floor[k].spread))

    # The plain Python reader, on a real pipe and (fake) on the fake's notification pipe, idle and busy.
    refs: list[tuple[str, Any]] = [("pyref", pyref_run)]
    if ctx.backend == "fake":
        refs.append(("pyfake", pyref_fake_run))
    else:
        fig.skip([k for k in KEYS if k.startswith("pyfake")], LABELS, "fake only")
    medians: dict[str, float | None] = {}
    for prefix, runner in refs:
        for busy in (False, True):
            runs = [runner(count, RATE_HZ, busy) for _ in range(ctx.repeats)]
            for k in ("p50", "p99", "max"):
                key = f"{prefix}{'_busy' if busy else ''}_{k}_us"
                if key not in LABELS:
                    continue
                medians[key] = _latency_row(fig, key, runs, k, floor)

    # The listener, idle then busy main thread.
    options = listener_options()
    if options:
        fig.notes.append(f"Listener options: {options}")
    for mode in ("idle", "busy"):
        try:
            runs = [listener_run(ctx.backend, count, RATE_HZ, mode == "busy", options) for _ in range(ctx.repeats)]
        except (ImportError, StreamUnavailable) as exc:
            fig.skip([k for k in KEYS if k.startswith(mode)], LABELS, f"Listener ({mode}) skipped: {exc}")
            continue
        rates = collect(runs, "rate")
        losses = sum(int(r.get("loss", 0)) for r in runs)
        fig.notes.append(
            f"Listener {mode}: producer rate {rates.median or 0:.0f}/s, {losses} Loss events over {len(runs)} runs"
        )
        _listener_rows(fig, mode, runs, floor)
    _decompose(fig, medians)
    if ctx.backend == "kernel":
        fig.notes.append("kernel: the stream is KEY_NOTIFY records of a user key (VM_ERR needs a real eviction)")
    fig.notes.append(
        "fake: the post (WatchSource.post, Python) runs on the producer thread inside the measured interval; "
        "on a kernel it is the kernel's work"
    )
    fig.skip(KEYS, LABELS, "not measured (see notes)")
    return fig


def _decompose(fig: Figure, refs: dict[str, float | None]) -> None:
    """A note: what the fake's pipe adds over a real one, and what the listener adds over a plain reader."""
    rows = fig.rows
    for mode, suffix in (("idle", ""), ("busy", "_busy")):
        real = refs.get(f"pyref{suffix}_p50_us")
        fake = refs.get(f"pyfake{suffix}_p50_us")
        listener = rows[f"{mode}_p50_us"].value if f"{mode}_p50_us" in rows else None
        if real is None or fake is None or listener is None:
            continue
        fig.notes.append(
            f"p50 {mode}: real pipe, plain reader {real:.0f} us; the fake's post+read add {fake - real:+.0f} us; "
            f"the Listener adds {listener - fake:+.0f} us over a plain reader of the same fake pipe"
        )


def listener_options() -> dict[str, Any]:
    """Nothing: the listener's defaults are what is measured."""
    return {}


def _med(floor: dict[str, Repeated], k: str) -> float | None:
    return floor[k].median if floor else None


def _listener_rows(fig: Figure, mode: str, runs: list[dict[str, float]], floor: dict[str, Repeated]) -> None:
    targets = {
        ("idle", "p50"): Target("<= 3x floor and <= 50 us", max=50.0, max_ratio=3.0),
        ("idle", "p99"): Target("<= 150 us", max=150.0),
        ("busy", "p99"): Target("<= 1 ms", max=1000.0),
    }
    for k in ("p50", "p99", "max"):
        _latency_row(fig, f"{mode}_{k}_us", runs, k, floor, targets.get((mode, k)))


def _latency_row(
    fig: Figure,
    key: str,
    runs: list[dict[str, float]],
    k: str,
    floor: dict[str, Repeated],
    target: Target | None = None,
) -> float | None:
    """One latency row (median and spread of ``k`` over ``runs``) beside the C floor's ``k``."""
    rep = collect(runs, k)
    fig.add(
        Row(
            key,
            LABELS[key][0],
            rep.median,
            "us",
            spread=rep.spread,
            floor=_med(floor, k),
            floor_label="C floor",
            target=target,
        )
    )
    return rep.median
