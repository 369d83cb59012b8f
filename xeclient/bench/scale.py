"""Figure 6: fake scale -- VM churn, a big DRM file's memory, one rebind-worker pass.

* VM_CREATE + VM_DESTROY per second through the typed layer (``Device.create_vm``
  / ``Vm.destroy``), the way a client makes them.
* One DRM file with 10,000 VMs and 100,000 bound 4 KiB system-memory BOs (10 per
  VM), made with raw seam ioctls (ffi structs allocated once) so that the RSS
  delta (psutil, after ``gc.collect()``) is the fake driver's model, not client
  bookkeeping.
* One rebind-worker pass over an LR VM with many VRAM BOs and a running job:
  ``backend.evict(fd, vm)`` (TTM evicts them; the worker is queued) then
  ``backend.settle()`` -- the time of the settle is the pass (re-validating every
  BO) plus the worker thread's wake-up.

On ``--backend kernel`` only the churn row is measured (on the device); the
others are properties of the fake and say so.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from ..uapi.constants import BindOp, CpuCaching, EngineClass, VmCreateFlag
from ._common import Context, Figure, Repeated, Row, Target

NAME = "scale"
TITLE = "6. Fake scale: VM churn, 10,000 VMs + 100,000 BOs, one rebind pass"

LABELS: dict[str, tuple[str, str]] = {
    "vm_churn_per_s": ("VM create+destroy (typed layer)", "/s"),
    "populate_s": ("populate the DRM file (VMs + BOs bound)", "s"),
    "rss_mb": ("RSS delta of the populated file", "MB"),
    "rss_per_bo_bytes": ("RSS delta per bound BO (incl. its VM share)", "B"),
    "rebind_pass_ms": ("one rebind-worker pass (evict + settle)", "ms"),
    "rebind_per_bo_us": ("rebind pass per BO", "us"),
}
KEYS = tuple(LABELS)

BO_SIZE = 4096
#: populate stops after this long (whole VMs) and projects the memory linearly
POPULATE_BUDGET_S = 30.0
#: making the rebind VM's BOs stops after this long
REBIND_BUDGET_S = 12.0
VA_BASE = 0x100000
VA_STRIDE = 0x10000


def _rss() -> int:
    import psutil

    gc.collect()
    return int(psutil.Process().memory_info().rss)


def vm_churn(backend_name: str, pairs: int) -> float:
    """VM create+destroy pairs per second through ``Device``."""
    from ..device import Device

    with Device.open(backend=backend_name) as dev:
        for _ in range(20):
            dev.create_vm().destroy()
        t0 = time.perf_counter()
        for _ in range(pairs):
            dev.create_vm().destroy()
        return pairs / (time.perf_counter() - t0)


class _Binder:
    """Raw seam ioctls with ffi structs allocated once: VM_CREATE, and GEM_CREATE + VM_BIND of 4 KiB BOs."""

    def __init__(self, backend: Any, fd: int, placement: int, cpu_caching: int) -> None:
        from ..uapi import ffi
        from ..uapi.requests import DRM_IOCTL_XE_GEM_CREATE, DRM_IOCTL_XE_VM_BIND, DRM_IOCTL_XE_VM_CREATE

        self.fd = fd
        self.ioctl = backend.ioctl
        self.placement = placement
        self.cpu_caching = cpu_caching
        self.requests = (DRM_IOCTL_XE_VM_CREATE, DRM_IOCTL_XE_GEM_CREATE, DRM_IOCTL_XE_VM_BIND)
        self.vm_args = ffi.new("struct drm_xe_vm_create *")
        self.bo_args = ffi.new("struct drm_xe_gem_create *")
        self.bind_args = ffi.new("struct drm_xe_vm_bind *")
        self.bufs = (ffi.buffer(self.vm_args), ffi.buffer(self.bo_args), ffi.buffer(self.bind_args))
        self.bind_args.num_binds = 1
        self.bind_args.bind.range = BO_SIZE
        self.bind_args.bind.op = BindOp.MAP

    def vm(self, flags: int = 0) -> int:
        self.vm_args.flags = flags
        self.vm_args.vm_id = 0
        self.ioctl(self.fd, self.requests[0], self.bufs[0])
        return int(self.vm_args.vm_id)

    def bind_new_bo(self, vm_id: int, addr: int) -> None:
        bo, bind = self.bo_args, self.bind_args
        bo.size = BO_SIZE
        bo.placement = self.placement
        bo.flags = 0
        bo.vm_id = 0
        bo.handle = 0
        bo.cpu_caching = self.cpu_caching
        self.ioctl(self.fd, self.requests[1], self.bufs[1])
        bind.vm_id = vm_id
        bind.bind.obj = bo.handle
        bind.bind.addr = addr
        self.ioctl(self.fd, self.requests[2], self.bufs[2])


def populate(n_vms: int, bos_per_vm: int, budget_s: float) -> dict[str, float]:
    """A fresh fake with one DRM file holding ``n_vms`` VMs and ``n_vms * bos_per_vm`` bound BOs.

    Stops early (whole VMs) once ``budget_s`` seconds have gone by, so a slow fake
    cannot blow the bench's time budget; ``vms``/``bos`` say how far it got.
    """
    from ..backends.fake import FakeBackend
    from ..device import Device

    backend = FakeBackend()
    try:
        with Device.open(backend=backend) as dev:
            binder = _Binder(backend, dev.fd, dev.sysmem_mask(), CpuCaching.WB)
            before = _rss()
            t0 = time.perf_counter()
            deadline = t0 + budget_s
            made = 0
            for _ in range(n_vms):
                if time.perf_counter() > deadline:
                    break
                made += 1
                vm_id = binder.vm()
                for j in range(bos_per_vm):
                    binder.bind_new_bo(vm_id, VA_BASE + j * VA_STRIDE)
            elapsed = time.perf_counter() - t0
            after = _rss()
            return {"populate_s": elapsed, "rss_bytes": float(after - before), "vms": made, "bos": made * bos_per_vm}
    finally:
        backend.shutdown()


def rebind_pass(n_bos: int, repeats: int, budget_s: float) -> tuple[list[float], int]:
    """Seconds of each of ``repeats`` evict+settle cycles over one LR VM with up to ``n_bos`` VRAM BOs.

    The BOs are made with raw seam ioctls until ``n_bos`` or ``budget_s``; returns (times, BOs).
    """
    from ..backends.fake import FakeBackend
    from ..device import Device

    vram = max(256 << 20, 2 * n_bos * BO_SIZE)
    backend = FakeBackend(vram=vram)
    times: list[float] = []
    try:
        with Device.open(backend=backend) as dev:
            vm = dev.create_vm(VmCreateFlag.LR_MODE)
            binder = _Binder(backend, dev.fd, dev.placement_mask("vram"), CpuCaching.WC)
            deadline = time.perf_counter() + budget_s
            made = 0
            while made < n_bos and time.perf_counter() < deadline:
                binder.bind_new_bo(vm.id, VA_BASE + made * VA_STRIDE)
                made += 1
            queue = dev.create_exec_queue(vm, EngineClass.COMPUTE)
            queue.exec(address=VA_BASE)
            fake_vm: Any = backend.device.lookup_vm(dev.fd, vm.id)
            for _ in range(repeats):
                runs = fake_vm.rebind_runs
                backend.evict(dev.fd, vm.id)
                t0 = time.perf_counter()
                if not backend.settle(60):
                    raise RuntimeError("the rebind worker did not settle in 60 s")
                times.append(time.perf_counter() - t0)
                if fake_vm.rebind_runs != runs + 1 or fake_vm.state != "active":
                    raise RuntimeError(
                        f"unexpected worker outcome: runs {runs}->{fake_vm.rebind_runs}, state {fake_vm.state}"
                    )
            queue.destroy()
    finally:
        backend.shutdown()
    return times, made


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    n_vms = ctx.scale(10_000, 200)
    bos_per_vm = 10
    pairs = ctx.scale(3_000, 200)
    n_rebind = ctx.scale(10_000, 500)
    fig.params = {"vms": n_vms, "bos": n_vms * bos_per_vm, "churn_pairs": pairs, "rebind_bos": n_rebind}

    if ctx.backend == "kernel":
        from ..backends.kernel import KernelBackend

        reason = KernelBackend().probe()
        if reason is None:
            rep = Repeated([vm_churn("kernel", pairs) for _ in range(ctx.repeats)])
            fig.add(Row("vm_churn_per_s", LABELS["vm_churn_per_s"][0], rep.median, "/s", spread=rep.spread))
        else:
            fig.notes.append(f"kernel: VM churn skipped: {reason}")
        fig.skip(KEYS, LABELS, "a property of the fake backend: run with --backend fake")
        return fig

    rep = Repeated([vm_churn("fake", pairs) for _ in range(ctx.repeats)])
    fig.add(Row("vm_churn_per_s", LABELS["vm_churn_per_s"][0], rep.median, "/s", spread=rep.spread))

    budget = 5.0 if ctx.quick else POPULATE_BUDGET_S
    pop = populate(n_vms, bos_per_vm, budget)  # once: it is the big one
    made_vms, made_bos = int(pop["vms"]), int(pop["bos"])
    per_bo = pop["rss_bytes"] / max(1, made_bos)
    full = made_vms >= 10_000
    fig.add(
        Row(
            "populate_s",
            LABELS["populate_s"][0],
            pop["populate_s"],
            "s",
            note=f"{made_vms} VMs / {made_bos} BOs made"
            + (
                ""
                if made_vms >= n_vms
                else f": stopped by the {budget:.0f} s budget ({made_bos / pop['populate_s']:.0f} BOs/s on average)"
            ),
        )
    )
    fig.add(
        Row(
            "rss_mb",
            LABELS["rss_mb"][0],
            pop["rss_bytes"] / 1e6 if full else per_bo * 100_000 / 1e6,
            "MB",
            target=Target("<= 500 MB", max=500.0),
            note=(
                f"measured with 10,000 VMs / {made_bos} BOs"
                if full
                else f"projected linearly from {made_vms} VMs / {made_bos} BOs to 10,000 / 100,000"
            ),
        )
    )
    fig.add(Row("rss_per_bo_bytes", LABELS["rss_per_bo_bytes"][0], per_bo, "B"))

    passes, made = rebind_pass(n_rebind, max(3, ctx.repeats) if not ctx.quick else 1, REBIND_BUDGET_S)
    prep = Repeated([t * 1000 for t in passes])
    fig.add(
        Row(
            "rebind_pass_ms",
            LABELS["rebind_pass_ms"][0],
            prep.median,
            "ms",
            spread=prep.spread,
            note=f"{made} VRAM BOs of 4 KiB in one LR VM with a running job"
            + ("" if made >= n_rebind else f" (of {n_rebind}: stopped by the {REBIND_BUDGET_S:.0f} s budget)"),
        )
    )
    fig.add(Row("rebind_per_bo_us", LABELS["rebind_per_bo_us"][0], (prep.median or 0) * 1000 / max(1, made), "us"))
    fig.notes.append(f"pid {os.getpid()}: RSS measured in this process after gc.collect()")
    return fig
