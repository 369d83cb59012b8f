"""The fake Xe device: presets, DRM files, DEVICE_QUERY and the control surface.

Models ``xe_device.c`` (``xe_file_open``, ``xe_file_close``/``xe_file_destroy``,
the ioctl table lives in :mod:`.drm_ioctl`) and ``xe_query.c`` (``xe_query_ioctl``).

Presets (``XeDevice.create(backend, preset, vram, **options)``; any
:class:`Preset` field can be overridden through ``options``):

==========  ==========================================================================
``bmg``     default; discrete Xe2-like: sysmem + one VRAM region (256 MiB default), USM,
            RENDER/COPY/COMPUTE engines; no 64K-page requirement, no scratch workaround.
``dg2``     discrete Xe_HPG-like: no USM (FAULT_MODE is -EINVAL), needs 64K VRAM pages,
            and Wa_22014953428: VM_CREATE ORs SCRATCH_PAGE into the flags it copies back.
``mtl``     integrated: sysmem only (placement mask 0x1), no USM, RENDER/COPY/COMPUTE.
==========  ==========================================================================

Aliases: ``discrete`` = ``bmg``, ``integrated`` = ``mtl``.  ``bmg`` sets
``needs_scratch=False`` so that SCRATCH_PAGE|FAULT_MODE is refused (spec 5.1 row 6);
pass ``needs_scratch=True`` to model an Xe2 part that allows it.

Every preset uses the Xe_LP PAT table: 4 entries, index 0 is WB and 1-way coherent,
1-3 (WC/WT/UC) are not coherent.

Lock discipline: one device lock (an RLock, the fake's ``vm->lock`` for every VM and
its xarrays) is taken by the ioctl dispatcher around each handler, by the rebind
worker and by the control surface.  Posting an event to a notification pipe happens
under it (device lock -> pipe lock); nothing in the pipe code takes the device lock,
so a listener thread blocked on a pipe can never deadlock with an ioctl.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ...uapi import ffi
from ...uapi.constants import (
    ConfigFlag,
    EngineClass,
    MemClass,
    QueryType,
)
from ..base import IoctlArg
from . import usercopy
from .drm_ioctl import drm_ioctl
from .fault_inject import FaultRegistry
from .workqueue import Workqueue

if TYPE_CHECKING:
    from .backend import FakeBackend
    from .xe_bo import XeBo
    from .xe_exec_queue import XeExecQueue
    from .xe_vm import XeVM

log = logging.getLogger("xeclient.backends.fake.xe_device")

PAGE_SIZE = 4096
SZ_64K = 65536
MiB = 1 << 20
GiB = 1 << 30

#: XE_COH_* of a PAT entry: 0 = hardware reserved, 1 = none, 2 = at least 1-way.
XE_COH_RESERVED, XE_COH_NONE, XE_COH_AT_LEAST_1WAY = 0, 1, 2
XELP_PAT_COH = (XE_COH_AT_LEAST_1WAY, XE_COH_NONE, XE_COH_NONE, XE_COH_NONE)


@dataclass(frozen=True)
class Preset:
    """The static facts of one device model."""

    name: str
    devid: int
    revid: int
    vram: int  #: bytes; 0 = integrated (no VRAM region)
    sysmem: int = 8 * GiB  #: TT manager size reported for region 0
    has_usm: bool = False
    needs_scratch: bool = False
    has_gpusvm: bool = True
    need64k: bool = False
    wa_22014953428: bool = False  #: VM_CREATE ORs SCRATCH_PAGE into the user's flags
    va_bits: int = 48
    #: hardware engines (class, instance) of GT 0
    engines: tuple[tuple[int, int], ...] = (
        (EngineClass.RENDER, 0),
        (EngineClass.COPY, 0),
        (EngineClass.COMPUTE, 0),
    )
    pat_coh: tuple[int, ...] = XELP_PAT_COH
    reference_clock: int = 19_200_000
    graphics_ver: tuple[int, int] = (20, 1)
    #: False models an xe driver that predates the VM-error/restart series: its
    #: ioctl table ends at VM_GET_PROPERTY (0x0f), so 0x10/0x11 are -EINVAL from
    #: drm_ioctl, and VM_CREATE knows no RESTARTABLE flag (spec 3, 6.2).
    series: bool = True


PRESETS: dict[str, Preset] = {
    "bmg": Preset("bmg", devid=0xE20B, revid=0, vram=256 * MiB, has_usm=True, graphics_ver=(20, 1)),
    "dg2": Preset(
        "dg2", devid=0x56A0, revid=8, vram=256 * MiB, need64k=True, wa_22014953428=True, graphics_ver=(12, 55)
    ),
    "mtl": Preset("mtl", devid=0x7D55, revid=0, vram=0, graphics_ver=(12, 70)),
}
PRESET_ALIASES = {"discrete": "bmg", "integrated": "mtl"}
DEFAULT_PRESET = "bmg"


def resolve_preset(name: str | None, vram: int | None, options: dict[str, Any]) -> Preset:
    key = (name or os.environ.get("XE_FAKE_PRESET") or DEFAULT_PRESET).strip().lower()
    key = PRESET_ALIASES.get(key, key)
    if key not in PRESETS:
        raise ValueError(f"unknown fake preset {name!r}: choose one of {', '.join([*PRESETS, *PRESET_ALIASES])}")
    preset = PRESETS[key]
    known = {f.name for f in fields(Preset)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown fake device option(s): {', '.join(sorted(unknown))}")
    if vram is not None:
        if preset.vram == 0 and vram:
            raise ValueError(f"preset {preset.name!r} is integrated and has no VRAM")
        if vram < 0 or vram % PAGE_SIZE:
            raise ValueError("vram must be a non-negative multiple of 4096")
        options = {**options, "vram": vram}
    return replace(preset, **options) if options else preset


_V = TypeVar("_V")


class XArray(dict[int, _V]):
    """An id table that allocates like ``xa_alloc`` with ``XA_FLAGS_ALLOC1``: the lowest free id >= 1.

    Lookups, iteration, ``del``/``pop``/``clear`` are the dict's.  :meth:`alloc` does not scan
    from 1: every id removed goes on a min-heap (an entry whose id is in use again is dropped when
    it reaches the top), and ``_next`` is the lowest id from which no id has ever been handed out
    (it only moves past ids in use), so every free id below it is on the heap.  The answer is the
    smaller of the heap's lowest free entry and ``_next``: O(log n) instead of O(n) per id.
    """

    __slots__ = ("_freed", "_next")

    def __init__(self) -> None:
        super().__init__()
        self._freed: list[int] = []
        self._next = 1

    def alloc(self) -> int:
        """The lowest id >= 1 not in the table (the caller stores it)."""
        freed = self._freed
        while freed and freed[0] in self:
            heapq.heappop(freed)
        i = self._next
        while i in self:
            i += 1
        self._next = i
        if freed and freed[0] < i:
            return freed[0]
        return i

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        heapq.heappush(self._freed, key)

    def pop(self, key: int, *default: Any) -> Any:
        if key in self:
            heapq.heappush(self._freed, key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[int, _V]:
        item = super().popitem()
        heapq.heappush(self._freed, item[0])
        return item

    def clear(self) -> None:
        super().clear()
        self._freed.clear()
        self._next = 1


def xa_alloc(table: dict[int, Any]) -> int:
    """The lowest free id >= 1 (``xa_alloc`` with ``XA_FLAGS_ALLOC1``; idr_alloc(1, 0) alike)."""
    if isinstance(table, XArray):
        return table.alloc()
    i = 1
    while i in table:
        i += 1
    return i


class XeFile:
    """``struct xe_file``: one open DRM file with its VM, exec-queue and BO tables."""

    def __init__(self, device: XeDevice, fd: int) -> None:
        from .watch_queue import WatchList

        self.device = device
        self.backend = device.backend
        self.fd = fd
        self.vms: XArray[XeVM] = XArray()
        self.exec_queues: XArray[XeExecQueue] = XArray()
        self.bos: XArray[XeBo] = XArray()  #: GEM handle table (drm_file.object_idr)
        self.watch_list = WatchList()
        self.closed = False

    def __repr__(self) -> str:
        return f"<XeFile fd={self.fd} vms={sorted(self.vms)} queues={sorted(self.exec_queues)} bos={sorted(self.bos)}>"

    # --- file_operations --------------------------------------------------------
    def ioctl(self, request: int, arg: IoctlArg) -> int:
        return drm_ioctl(self, request, arg)

    def read(self, n: int) -> bytes | int:
        # drm_read(): this fake has no DRM events (no vblank/flip on a render node);
        # an empty event list answers EAGAIN (O_NONBLOCK) -- we never block here.
        return -errno.EAGAIN

    def write(self, data: bytes) -> int:
        return -errno.EINVAL  # drm_fops has no .write: the VFS answers EINVAL

    def release(self) -> None:
        with self.device.lock:
            xe_file_close(self)
        xe_file_destroy(self)


def xe_file_open(device: XeDevice, fd: int) -> XeFile:
    """``xe_file_open()`` (spec 4): empty xarrays allocating from 1, ``init_watch_list``."""
    return XeFile(device, fd)


def xe_file_close(xef: XeFile) -> None:
    """``xe_file_close()``: kill and drop every exec queue, close every VM, drop GEM handles.

    Caller holds the device lock.
    """
    from .xe_bo import xe_bo_put
    from .xe_exec_queue import xe_exec_queue_kill
    from .xe_vm import xe_vm_close_and_put

    if xef.closed:
        return
    xef.closed = True
    for q in list(xef.exec_queues.values()):
        xe_exec_queue_kill(q)
    xef.exec_queues.clear()
    for vm in list(xef.vms.values()):
        xe_vm_close_and_put(vm)
    xef.vms.clear()
    for bo in list(xef.bos.values()):
        xe_bo_put(bo)
    xef.bos.clear()
    xef.device.files.discard(xef)


def xe_file_destroy(xef: XeFile) -> None:
    """``xe_file_destroy()`` (series 4/4): every watch on the file gets an 8-byte REMOVAL.

    Called without the device lock (it only touches the watch list and pipes).
    """
    from . import watch_queue

    watch_queue.remove_watch_from_object(xef.watch_list, None, 0, True)


@dataclass
class MemRegion:
    mem_class: int
    instance: int
    min_page_size: int
    total_size: int
    used: int = 0
    #: resident BOs in LRU order (oldest first); only VRAM tracks it.  The keys of an
    #: insertion-ordered dict: O(1) removal and move-to-end (the values are unused)
    lru: dict[XeBo, None] = field(default_factory=dict)


class XeDevice:
    """One fake Xe device: its preset, memory regions, workqueue and fault attributes."""

    node_path = "/dev/dri/renderD128"

    def __init__(self, backend: FakeBackend, preset: Preset) -> None:
        self.backend = backend
        self.info = preset
        self.lock = threading.RLock()
        self.files: set[XeFile] = set()
        self.faults = FaultRegistry()
        self.wq = Workqueue(f"xe-fake-wq-{id(self):x}")
        self.regions: list[MemRegion] = [MemRegion(MemClass.SYSMEM, 0, PAGE_SIZE, preset.sysmem)]
        if preset.vram:
            self.regions.append(MemRegion(MemClass.VRAM, 1, SZ_64K if preset.need64k else PAGE_SIZE, preset.vram))
        self.mem_region_mask = (1 << len(self.regions)) - 1
        self.mmap_pages = 0  #: drm_vma_offset_manager: fake mmap offsets handed out so far
        #: Python exceptions caught by the dispatcher's safety net (tests assert it stays 0)
        self.bugs = 0
        #: control attributes: a wedged device answers -ECANCELED, an unplugged one -ENODEV (spec 2)
        self.wedged = False
        self.unplugged = False
        self._shut_down = False

    @classmethod
    def create(
        cls, backend: FakeBackend, preset: str | None = None, vram: int | None = None, **options: Any
    ) -> XeDevice:
        return cls(backend, resolve_preset(preset, vram, options))

    def __repr__(self) -> str:
        vram = f" vram={self.info.vram >> 20} MiB" if self.info.vram else ""
        return f"<XeDevice {self.info.name} {self.node_path}{vram}>"

    # --- facts used by the ioctls -----------------------------------------------------
    @property
    def has_vram(self) -> bool:
        return len(self.regions) > 1

    @property
    def vram_mask(self) -> int:
        return self.mem_region_mask & ~1

    @property
    def vm_size(self) -> int:
        return 1 << self.info.va_bits

    def hw_engine(self, engine_class: int, instance: int, gt_id: int) -> bool:
        return gt_id == 0 and (engine_class, instance) in self.info.engines

    def max_exec_queue_priority(self) -> int:
        """``xe_exec_queue_device_get_max_priority``: HIGH with CAP_SYS_NICE (root here), else NORMAL."""
        return 2 if os.geteuid() == 0 else 1

    # --- DRM files ----------------------------------------------------------------------
    def drm_open(self, fd: int) -> XeFile:
        with self.lock:
            xef = xe_file_open(self, fd)
            self.files.add(xef)
            return xef

    # --- control surface ----------------------------------------------------------------
    def lookup_vm(self, fd: int, vm_id: int) -> XeVM:
        xef = self.backend.lookup(fd)
        if not isinstance(xef, XeFile) or xef.device is not self:
            raise ValueError(f"fd {fd} is not a DRM file of this fake device")
        vm = xef.vms.get(vm_id)
        if vm is None:
            raise ValueError(f"no VM {vm_id} on fd {fd}")
        return vm

    def evict(self, fd: int, vm_id: int) -> None:
        """Evict as TTM would evict one of the VM's BOs (issue item 8).

        Every resident BO bound in the VM loses its backing, and in preempt-fence mode
        the VM's preempt fences signal and its rebind worker is queued -- also when it
        has no BO bound at all.
        """
        from .xe_bo import ttm_bo_evict
        from .xe_vm import xe_vm_preempt_fences_signal

        with self.lock:
            vm = self.lookup_vm(fd, vm_id)
            for bo in vm.bound_bos():
                if bo.resident_vram:
                    ttm_bo_evict(bo, notify=False)
            xe_vm_preempt_fences_signal(vm)

    def vm_state(self, fd: int, vm_id: int) -> str:
        """``"active"``, ``"suspended"`` (preempted, rebind pending), ``"deactivated"`` or ``"banned"``."""
        with self.lock:
            return self.lookup_vm(fd, vm_id).state

    def exec_queue_state(self, fd: int, exec_queue_id: int) -> str:
        """``"idle"``, ``"running"``, ``"suspended"`` or ``"killed"``."""
        xef = self.backend.lookup(fd)
        if not isinstance(xef, XeFile):
            raise ValueError(f"fd {fd} is not a DRM file of this fake device")
        with self.lock:
            q = xef.exec_queues.get(exec_queue_id)
            if q is None:
                raise ValueError(f"no exec queue {exec_queue_id} on fd {fd}")
            return q.state

    def vram_used(self) -> int:
        with self.lock:
            return self.regions[1].used if self.has_vram else 0

    def settle(self, timeout: float = 5.0) -> bool:
        return self.wq.settle(timeout)

    def shutdown(self) -> None:
        self._shut_down = True
        self.wq.shutdown()


# ======================================================================================
# DEVICE_QUERY (xe_query.c)
# ======================================================================================

#: (query size -> bytes) writers return (size, payload-or-errno); size 0 protocol in xe_query_ioctl.
NUM_QUERIES = 11


def _query_config(xe: XeDevice) -> bytes:
    info = xe.info
    flags = ConfigFlag.HAS_LOW_LATENCY
    if xe.has_vram:
        flags |= ConfigFlag.HAS_VRAM
    if info.has_usm and info.has_gpusvm:
        flags |= ConfigFlag.HAS_CPU_ADDR_MIRROR
    values = [
        info.devid | info.revid << 16,
        int(flags),
        SZ_64K if info.need64k else PAGE_SIZE,
        info.va_bits,
        xe.max_exec_queue_priority(),
    ]
    return struct.pack("<II5Q", len(values), 0, *values)


def _query_engines(xe: XeDevice) -> bytes:
    out = struct.pack("<II", len(xe.info.engines), 0)
    for cls, inst in xe.info.engines:
        out += struct.pack("<HHHH3Q", cls, inst, 0, 0, 0, 0, 0)
    return out


def _query_mem_regions(xe: XeDevice) -> bytes:
    out = struct.pack("<II", len(xe.regions), 0)
    for r in xe.regions:
        vis, vis_used = (r.total_size, r.used) if r.mem_class == MemClass.VRAM else (0, 0)
        out += struct.pack(
            "<HHIQQQQ6Q", r.mem_class, r.instance, r.min_page_size, r.total_size, r.used, vis, vis_used, *([0] * 6)
        )
    return out


def _query_gt_list(xe: XeDevice) -> bytes:
    near, far = (xe.vram_mask, 1) if xe.has_vram else (1, 0)
    major, minor = xe.info.graphics_ver
    gt = struct.pack(
        "<HHH3HIQQHHHH7Q", 0, 0, 0, 0, 0, 0, xe.info.reference_clock, near, far, major, minor, 0, 0, *([0] * 7)
    )
    return struct.pack("<II", 1, 0) + gt


def _query_gt_topology(xe: XeDevice) -> bytes:
    # DSS_GEOMETRY and DSS_COMPUTE masks (8 bytes, 4 DSS), EU_PER_DSS (1 byte: 8 EUs)
    out = b""
    for topo, mask in ((1, b"\x0f" + b"\x00" * 7), (2, b"\x0f" + b"\x00" * 7), (4, b"\xff")):
        out += struct.pack("<HHI", 0, topo, len(mask)) + mask
    return out


CLOCKIDS = {
    0: time.CLOCK_REALTIME,
    1: time.CLOCK_MONOTONIC,
    4: time.CLOCK_MONOTONIC_RAW,
    7: time.CLOCK_BOOTTIME,
    11: getattr(time, "CLOCK_TAI", time.CLOCK_REALTIME),
}


def xe_query_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_query_ioctl()`` (spec 5.6): extensions/reserved, query < 11, size-0 protocol, copy-out.

    Answered: ENGINES, MEM_REGIONS (live ``used``; a copy fault is -ENOSPC, the
    kernel's quirk), CONFIG (48 bytes), GT_LIST (one GT), HWCONFIG (no GuC blob:
    size 0), GT_TOPOLOGY, ENGINE_CYCLES and UC_FW_VERSION (input validated).
    PXP_STATUS, OA_UNITS and EU_STALL answer -ENODEV, as the kernel does on a
    device without PXP / OA / EU-stall support.
    """
    xe = xef.device
    if args.extensions or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    q = int(args.query)
    if q >= NUM_QUERIES:
        return -errno.EINVAL
    if q == _Q_ENGINE_CYCLES:
        return _query_engine_cycles(xe, args)
    if q == _Q_UC_FW_VERSION:
        return _query_uc_fw_version(xe, args)
    if q in _Q_NODEV:
        return -errno.ENODEV
    payload = _QUERY_BUILDERS[q](xe)
    size = args.size
    if size == 0:
        args.size = len(payload)
        return 0
    if size != len(payload):
        return -errno.EINVAL
    try:
        usercopy.copy_to_user(args.data, payload)
    except usercopy.EFault:
        return -errno.ENOSPC if q == _Q_MEM_REGIONS else -errno.EFAULT
    return 0


# plain ints and one table, built once: an IntEnum attribute or constructor costs more than a query
_Q_ENGINE_CYCLES = int(QueryType.ENGINE_CYCLES)
_Q_UC_FW_VERSION = int(QueryType.UC_FW_VERSION)
_Q_MEM_REGIONS = int(QueryType.MEM_REGIONS)
_Q_NODEV = frozenset({int(QueryType.PXP_STATUS), int(QueryType.OA_UNITS), int(QueryType.EU_STALL)})
_QUERY_BUILDERS: dict[int, Callable[[XeDevice], bytes]] = {
    int(QueryType.ENGINES): _query_engines,
    int(QueryType.MEM_REGIONS): _query_mem_regions,
    int(QueryType.CONFIG): _query_config,
    int(QueryType.GT_LIST): _query_gt_list,
    int(QueryType.HWCONFIG): lambda xe: b"",
    int(QueryType.GT_TOPOLOGY): _query_gt_topology,
}


def _query_with_input(args: Any, size: int, answer: Callable[[bytes], bytes | int]) -> int:
    """A query whose ``data`` is read first (ENGINE_CYCLES, UC_FW_VERSION): size 0
    reports ``size``; another size is -EINVAL; the input is copied in, ``answer``
    validates it (``-errno``) or returns the reply, which is copied back out."""
    if args.size == 0:
        args.size = size
        return 0
    if args.size != size:
        return -errno.EINVAL
    try:
        out = answer(usercopy.copy_from_user(args.data, size))
        if isinstance(out, int):
            return out
        usercopy.copy_to_user(args.data, out)
    except usercopy.EFault:
        return -errno.EFAULT
    return 0


def _query_engine_cycles(xe: XeDevice, args: Any) -> int:
    def answer(raw: bytes) -> bytes | int:
        cls, inst, gt_id, _pad, clockid = struct.unpack_from("<HHHHi", raw)
        if not xe.hw_engine(cls, inst, gt_id):
            return -errno.EINVAL
        if clockid not in CLOCKIDS:
            return -errno.EINVAL
        before = time.clock_gettime_ns(CLOCKIDS[clockid])
        cycles = time.monotonic_ns() * xe.info.reference_clock // 1_000_000_000
        after = time.clock_gettime_ns(CLOCKIDS[clockid])
        return raw[:12] + struct.pack("<IQQQ", 36, cycles & ((1 << 36) - 1), before, after - before)

    return _query_with_input(args, 40, answer)


#: GuC submission interface 1.14, HuC 8.4.3 (branch, major, minor, patch)
_UC_FW_VERSIONS = {0: (0, 1, 14, 0), 1: (0, 8, 4, 3)}


def _query_uc_fw_version(xe: XeDevice, args: Any) -> int:
    def answer(raw: bytes) -> bytes | int:
        uc_type, pad, _b, _ma, _mi, _pa, pad2, reserved = struct.unpack("<HHIIIIIQ", raw)
        if pad or pad2 or reserved or uc_type not in _UC_FW_VERSIONS:
            return -errno.EINVAL
        return struct.pack("<HHIIIIIQ", uc_type, 0, *_UC_FW_VERSIONS[uc_type], 0, 0)

    return _query_with_input(args, 32, answer)


def cdata_struct(name: str, buf: bytearray) -> Any:
    """A typed view of ``buf`` as ``struct name *`` (the kernel's ``void *data``)."""
    return ffi.cast(f"{name} *", ffi.from_buffer(buf))
