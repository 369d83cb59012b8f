"""Figure 5: binding overhead, per ioctl through the seam, and ``import xeclient``.

* FIONREAD (0x541B) with a 4-byte buffer on the read end of a plain pipe,
  through ``KernelBackend.ioctl`` (the seam's kernel path, no device needed),
  against the same ioctl in a C loop (``xeclient/bench/csrc/ioctl_loop.c``): the
  difference is what the binding adds per call.
* On the fake: the same FIONREAD through ``FakeBackend.ioctl`` (it forwards
  descriptors it does not own to the OS), and VM_CREATE + VM_DESTROY through
  the seam (the fake driver's own cost; no C counterpart exists).
* ``import xeclient`` in a fresh interpreter, ``-X importtime``, best of N.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..backends import Backend
from ._common import Context, Figure, Repeated, Row, Target
from ._ctools import CToolUnavailable, build

NAME = "binding"
TITLE = "5. Binding overhead: per-ioctl cost through the seam; import time"
FIONREAD = 0x541B

LABELS: dict[str, tuple[str, str]] = {
    "c_fionread_ns": ("FIONREAD in a C loop", "ns"),
    "kernel_fionread_ns": ("FIONREAD via KernelBackend.ioctl", "ns"),
    "fake_fionread_ns": ("FIONREAD via FakeBackend.ioctl (OS passthrough)", "ns"),
    "vm_create_destroy_us": ("VM_CREATE+VM_DESTROY via the seam (pair)", "us"),
    "import_ms": ("import xeclient (-X importtime, best)", "ms"),
}
KEYS = tuple(LABELS)

ROOT = Path(__file__).resolve().parents[2]
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


def seam_fionread_ns(backend: Backend, iterations: int) -> float:
    """ns per ``backend.ioctl(rfd, FIONREAD, bytearray(4))`` on a plain pipe."""
    rfd, wfd = os.pipe()
    buf = bytearray(4)
    ioctl = backend.ioctl
    try:
        for _ in range(1000):
            ioctl(rfd, FIONREAD, buf)
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            ioctl(rfd, FIONREAD, buf)
        return (time.perf_counter_ns() - t0) / iterations
    finally:
        os.close(rfd)
        os.close(wfd)


def c_fionread_ns(binary: str, iterations: int, repeats: int) -> tuple[float, float]:
    out = subprocess.run(
        [binary, str(iterations), str(repeats)], capture_output=True, text=True, timeout=60, check=True
    )
    best, median = (float(x) for x in out.stdout.split())
    return best, median


def vm_create_destroy_us(backend: Backend, iterations: int) -> float:
    """us per VM_CREATE + VM_DESTROY pair through the seam, ffi buffers allocated once."""
    from ..uapi import ffi
    from ..uapi.requests import DRM_IOCTL_XE_VM_CREATE, DRM_IOCTL_XE_VM_DESTROY

    fd = backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC)
    create = ffi.new("struct drm_xe_vm_create *")
    destroy = ffi.new("struct drm_xe_vm_destroy *")
    cbuf, dbuf = ffi.buffer(create), ffi.buffer(destroy)
    ioctl = backend.ioctl

    def pairs(n: int) -> None:
        for _ in range(n):
            create.flags = 0
            create.vm_id = 0
            ioctl(fd, DRM_IOCTL_XE_VM_CREATE, cbuf)
            destroy.vm_id = create.vm_id
            ioctl(fd, DRM_IOCTL_XE_VM_DESTROY, dbuf)

    try:
        pairs(20)  # warm: the fake builds its ioctl tables on first use
        t0 = time.perf_counter_ns()
        pairs(iterations)
        return (time.perf_counter_ns() - t0) / iterations / 1000.0
    finally:
        backend.close(fd)


def parse_importtime(stderr: str, top: str = "xeclient") -> tuple[int, dict[str, int]]:
    """From ``python -X importtime`` output: ``top``'s cumulative us and its subtree's self us.

    Children are printed before their parent, so ``top``'s subtree is every line
    since the previous top-level import.
    """
    subtree: dict[str, int] = {}
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        name, indent = m.group(4), len(m.group(3))
        subtree[name] = int(m.group(1))
        if indent == 0:
            if name == top:
                return int(m.group(2)), subtree
            subtree = {}
    raise RuntimeError(f"no top-level {top} line in the -X importtime output")


def import_time_us(script: str = "import xeclient") -> tuple[int, dict[str, int], str]:
    """Run ``script`` under ``-X importtime`` in a fresh interpreter: (cumulative us, self us, stdout)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as users run it
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cumulative, self_us = parse_importtime(done.stderr)
    return cumulative, self_us, done.stdout


def _open(name: str) -> Backend:
    if name == "kernel":
        from ..backends.kernel import KernelBackend

        return KernelBackend()
    from ..backends.fake import FakeBackend

    return FakeBackend()


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    iterations = ctx.scale(200_000, 20_000)
    pairs = ctx.scale(5_000, 300)
    imports = ctx.scale(7, 1)
    repeats = max(ctx.repeats, 3) if not ctx.quick else 1
    fig.params = {"ioctl_iterations": iterations, "repeats": repeats, "vm_pairs": pairs, "import_runs": imports}

    c_median: float | None = None
    try:
        binary = build("ioctl_loop", ctx.cache_dir)
        c_runs = [c_fionread_ns(binary, iterations, 3) for _ in range(repeats)]
        c_rep = Repeated([m for _b, m in c_runs])
        c_median = c_rep.median
        fig.add(Row("c_fionread_ns", LABELS["c_fionread_ns"][0], c_median, "ns", spread=c_rep.spread))
    except CToolUnavailable as exc:
        fig.skip(("c_fionread_ns",), LABELS, f"C loop skipped: {exc}")

    from ..backends.kernel import KernelBackend

    kernel = KernelBackend()
    k_rep = Repeated([seam_fionread_ns(kernel, iterations) for _ in range(repeats)])
    fig.add(
        Row(
            "kernel_fionread_ns",
            LABELS["kernel_fionread_ns"][0],
            k_rep.median,
            "ns",
            spread=k_rep.spread,
            floor=c_median,
            floor_label="C loop",
            ratio_kind="+",
            target=Target("<= C + 1500 ns", max_above=1500.0),
        )
    )

    backend: Any = _open(ctx.backend)
    try:
        if ctx.backend == "fake":
            f_rep = Repeated([seam_fionread_ns(backend, iterations) for _ in range(repeats)])
            fig.add(
                Row(
                    "fake_fionread_ns",
                    LABELS["fake_fionread_ns"][0],
                    f_rep.median,
                    "ns",
                    spread=f_rep.spread,
                    floor=c_median,
                    floor_label="C loop",
                    ratio_kind="+",
                    note="info: the fake forwards descriptors it does not own to the OS (the target is the kernel row's)",
                )
            )
        if backend.render_nodes():
            try:
                v_rep = Repeated([vm_create_destroy_us(backend, pairs) for _ in range(repeats)])
                fig.add(
                    Row(
                        "vm_create_destroy_us",
                        LABELS["vm_create_destroy_us"][0],
                        v_rep.median,
                        "us",
                        spread=v_rep.spread,
                    )
                )
            except OSError as exc:
                fig.skip(("vm_create_destroy_us",), LABELS, f"VM_CREATE+DESTROY skipped: {exc}")
        else:
            fig.skip(("vm_create_destroy_us",), LABELS, "VM_CREATE+DESTROY skipped: no xe render node")
        if ctx.backend != "fake":
            fig.skip(("fake_fionread_ns",), LABELS, "fake only")
    finally:
        shutdown = getattr(backend, "shutdown", None)
        if shutdown is not None:
            shutdown()

    runs = [import_time_us()[:2] for _ in range(imports)]
    best_us, best_self = min(runs, key=lambda r: r[0])
    heaviest = sorted(best_self.items(), key=lambda kv: -kv[1])[:5]
    all_ms = Repeated([r[0] / 1000.0 for r in runs])
    fig.add(
        Row(
            "import_ms",
            LABELS["import_ms"][0],
            best_us / 1000.0,
            "ms",
            spread=all_ms.spread,
            target=Target("<= 50 ms", max=50.0),
            note="heaviest (self): " + ", ".join(f"{n} {us / 1000:.1f}" for n, us in heaviest),
        )
    )
    fig.skip(KEYS, LABELS, "not measured (see notes)")
    return fig
