"""What every figure shares: result rows, targets, statistics, pacing, host facts.

A figure module exposes ``TITLE``, ``KEYS`` (the row keys it always produces,
also when a part is skipped) and ``run(ctx) -> Figure``.  Rows carry the
measured value, its spread over the repeats (the noise), the reference it is
compared with (the C floor, ...), the ratio, and the target with a verdict.
"""

from __future__ import annotations

import math
import os
import statistics
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- the VM_ERR record the delivery figures stream (cdefs/xe_drm_events.h, spec 1.2) ---------------
WATCH_TYPE_DRM_XE_NOTIFY = 2
DRM_XE_WATCH_EVENT_VM_ERR = 0
VM_ERR_SIZE = 24
_VM_ERR_HEAD = struct.Struct("<II")
_VM_ERR_BODY = struct.Struct("<IiQ")
_VM_ERR = struct.Struct("<IIIiQ")
ENOSPC = 28


def vm_err_payload(vm_id: int, timestamp_ns: int, error_code: int = -ENOSPC) -> bytes:
    """The 16 bytes after the header: vm_id, error_code (negative errno), timestamp_ns."""
    return _VM_ERR_BODY.pack(vm_id & 0xFFFFFFFF, error_code, timestamp_ns)


def vm_err_record(vm_id: int, timestamp_ns: int, watch_id: int = 0, error_code: int = -ENOSPC) -> bytes:
    """A whole 24-byte VM_ERR record, as the kernel posts it (info = 24 | watch_id << 8)."""
    head = WATCH_TYPE_DRM_XE_NOTIFY | (DRM_XE_WATCH_EVENT_VM_ERR << 24)
    info = VM_ERR_SIZE | ((watch_id & 0xFF) << 8)
    return _VM_ERR.pack(head, info, vm_id & 0xFFFFFFFF, error_code, timestamp_ns)


# --- results -------------------------------------------------------------------------------------
@dataclass
class Target:
    """A target on a row: every bound that is set must hold.

    ``max``/``min`` bound the value, ``max_ratio`` bounds value / floor and
    ``max_above`` bounds value - floor.  A bound that needs the floor is not
    judged without one (SKIP when nothing else is set).
    """

    text: str
    max: float | None = None
    min: float | None = None
    max_ratio: float | None = None
    max_above: float | None = None

    def judge(self, value: float | None, floor: float | None) -> str:
        if value is None:
            return "SKIP"
        checks: list[bool] = []
        if self.max is not None:
            checks.append(value <= self.max)
        if self.min is not None:
            checks.append(value >= self.min)
        if floor:
            if self.max_ratio is not None:
                checks.append(value / floor <= self.max_ratio)
            if self.max_above is not None:
                checks.append(value - floor <= self.max_above)
        if not checks:
            return "SKIP"
        return "PASS" if all(checks) else "MISS"


@dataclass
class Row:
    """One measured number."""

    key: str
    label: str
    value: float | None
    unit: str
    spread: tuple[float, float] | None = None  #: min and max over the repeats (the noise)
    floor: float | None = None  #: the reference it is compared with (same unit)
    floor_label: str | None = None
    ratio_kind: str = "x"  #: how the ratio column reads: "x" (value / floor) or "+" (value - floor)
    target: Target | None = None
    note: str | None = None
    ratio: float | None = None
    status: str = "info"  #: PASS, MISS, SKIP, or info (no target)

    def finish(self) -> Row:
        if self.value is not None and self.floor:
            self.ratio = self.value - self.floor if self.ratio_kind == "+" else self.value / self.floor
        if self.target is not None:
            self.status = self.target.judge(self.value, self.floor)
        elif self.value is None:
            self.status = "SKIP"
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": _round(self.value),
            "unit": self.unit,
            "spread": [_round(self.spread[0]), _round(self.spread[1])] if self.spread else None,
            "floor": _round(self.floor),
            "floor_label": self.floor_label,
            "ratio": _round(self.ratio),
            "ratio_kind": self.ratio_kind if self.ratio is not None else None,
            "target": self.target.text if self.target else None,
            "status": self.status,
            "note": self.note,
        }


@dataclass
class Figure:
    """One figure: rows keyed by ``Row.key`` (ordered), notes, and how long it took."""

    name: str
    title: str
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(self, row: Row) -> Row:
        self.rows[row.key] = row.finish()
        return row

    def skip(self, keys: Sequence[str], labels: dict[str, tuple[str, str]], reason: str) -> None:
        """Fill every key of ``keys`` not yet present with a SKIP row saying ``reason``."""
        for key in keys:
            if key not in self.rows:
                label, unit = labels.get(key, (key, ""))
                self.add(Row(key, label, None, unit, note=reason))

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "params": self.params,
            "rows": {k: r.to_json() for k, r in self.rows.items()},
            "notes": self.notes,
            "error": self.error,
        }


def _round(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.4g}") if abs(v) < 1e6 else round(v)


# --- statistics ------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p99/max in microseconds, and the count."""
    s = sorted(samples_ns)
    return {
        "p50": percentile(s, 50) / 1000.0,
        "p99": percentile(s, 99) / 1000.0,
        "max": (s[-1] / 1000.0) if s else math.nan,
        "n": float(len(s)),
    }


@dataclass
class Repeated:
    """A statistic measured once per repeat: its median and its spread (the noise)."""

    values: list[float]

    @property
    def median(self) -> float | None:
        vals = [v for v in self.values if math.isfinite(v)]
        return statistics.median(vals) if vals else None

    @property
    def spread(self) -> tuple[float, float] | None:
        vals = [v for v in self.values if math.isfinite(v)]
        return (min(vals), max(vals)) if len(vals) > 1 else None


def collect(runs: Sequence[dict[str, float]], key: str) -> Repeated:
    return Repeated([r[key] for r in runs if key in r])


# --- pacing ------------------------------------------------------------------------------------------
def paced(count: int, rate_hz: float, emit: Callable[[int], None], stop: threading.Event | None = None) -> float:
    """Call ``emit(i)`` ``count`` times at ``rate_hz`` on an absolute schedule; return the achieved rate.

    A producer that falls more than one period behind re-bases its schedule
    instead of catching up in a burst: the stream stays steady.
    """
    period = 1e9 / rate_hz
    start = time.monotonic_ns()
    next_at = float(start)
    for i in range(count):
        if stop is not None and stop.is_set():
            count = i
            break
        now = time.monotonic_ns()
        wait = next_at - now
        if wait > 0:
            time.sleep(wait / 1e9)
        elif -wait > period:
            next_at = float(now)
        emit(i)
        next_at += period
    elapsed = time.monotonic_ns() - start
    return count / (elapsed / 1e9) if elapsed > 0 else math.nan


class BusyMainThread:
    """Keep the calling thread busy in pure Python (holding the GIL but for forced switches)."""

    def __init__(self) -> None:
        self.loops = 0

    def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        x = 0
        while not done() and time.monotonic() < deadline:
            for i in range(2000):  # a pure-Python loop, no I/O and no sleep: it holds the GIL
                x += i * i
            self.loops += 1


# --- the context a figure runs in -----------------------------------------------------------------------
@dataclass
class Context:
    backend: str  #: "fake" or "kernel"
    quick: bool
    repeats: int
    cache_dir: str
    log: Callable[[str], None] = lambda _msg: None

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def thread_ctx_switches(tid: int) -> int | None:
    """Voluntary + involuntary context switches of one thread of this process (Linux)."""
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            text = f.read()
    except OSError:
        return None
    total = 0
    for line in text.splitlines():
        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
            total += int(line.split()[1])
    return total


def thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()
