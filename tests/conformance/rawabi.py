"""The published UAPI, packed by hand: a program that knows nothing of xeclient's ffi.

Every struct is packed/unpacked with :mod:`struct` from the layouts of the spec
(section 2 for ``drm_version``/``drm_gem_close``, section 4 for the Xe structs,
little-endian x86_64), and every request code is the literal of spec section 3.
User memory that the kernel reads through embedded pointers (query ``data``,
``instances``, ``vector_of_binds``, ``syncs``) is a :class:`UserMem`: a bytearray
whose address is taken with :mod:`ctypes`.

Memory the *GPU* uses (batches, exec user fences) is a :class:`GpuPage`, bound as a userptr
at its own CPU address by :meth:`RawClient.bind_spin_batch` / :meth:`RawClient.bind_end_batch`
(the PAT candidates are the plugin's ``USERPTR_PAT_INDICES``, the only thing imported from
xeclient).  Conformance tests create their clients with ``check_jobs=True`` and call
:meth:`RawClient.close` at teardown, so no job runs at an unbound address and none outlives
its test.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
from typing import Any

import pytest

from xeclient.pytest_plugin import USERPTR_PAT_INDICES

# --- request codes (spec 2 and 3), literal ------------------------------------------------
DRM_IOCTL_VERSION = 0xC0406400
DRM_IOCTL_GEM_CLOSE = 0x40086409
DEVICE_QUERY = 0xC0286440
GEM_CREATE = 0xC0386441
GEM_MMAP_OFFSET = 0xC0286442
VM_CREATE = 0xC0206443
VM_DESTROY = 0x40186444
VM_BIND = 0x40886445
EXEC_QUEUE_CREATE = 0xC0306446
EXEC_QUEUE_DESTROY = 0x40186447
EXEC_QUEUE_GET_PROPERTY = 0xC0286448
EXEC = 0x40386449
WAIT_USER_FENCE = 0xC048644A
VM_GET_PROPERTY = 0xC038644F
VM_RESTART = 0x40186450
WATCH_QUEUE = 0x40106451

# --- constants (spec 4) ----------------------------------------------------------------
SCRATCH_PAGE, LR_MODE, FAULT_MODE, NO_VM_OVERCOMMIT, RESTARTABLE = 1, 2, 4, 8, 16
RENDER, COPY, VIDEO_DECODE, VIDEO_ENHANCE, COMPUTE, VM_BIND_CLASS = 0, 1, 2, 3, 4, 5
OP_MAP, OP_UNMAP, OP_MAP_USERPTR, OP_UNMAP_ALL, OP_PREFETCH = 0, 1, 2, 3, 4
F_READONLY, F_IMMEDIATE, F_NULL, F_DUMPABLE, F_CHECK_PXP, F_CPU_ADDR_MIRROR = 1, 2, 4, 8, 16, 32
SYNC_SYNCOBJ, SYNC_TIMELINE_SYNCOBJ, SYNC_USER_FENCE, SYNC_SIGNAL = 0, 1, 2, 1
WB, WC = 1, 2
DEFER_BACKING, SCANOUT, NEEDS_VISIBLE_VRAM = 1, 2, 4
Q_ENGINES, Q_MEM_REGIONS, Q_CONFIG, Q_GT_LIST, Q_HWCONFIG = 0, 1, 2, 3, 4
HAS_VRAM, HAS_LOW_LATENCY, HAS_CPU_ADDR_MIRROR = 1, 2, 4
#: a PAT index that is WB and coherent on the devices tested (Xe_LP table: 0)
PAT_WB = 0
#: a non-coherent PAT index (Xe_LP table: 1 = WC)
PAT_WC = 1
PAGE = 4096
#: an address that is never mapped in a user process (the kernel's half)
BAD_PTR = 0xFFFF_8000_0000_0000
#: the default EXEC batch address of :func:`xe_exec` (nothing is bound there unless a test binds it)
DEFAULT_BATCH_ADDR = 0x1A0000

# --- GPU commands (gen8+ MI_*), for batches that a real GPU can run ---------------------------
MI_NOOP = 0
MI_ARB_CHECK = 0x05 << 23
MI_BATCH_BUFFER_END = 0x0A << 23
MI_BATCH_BUFFER_START = (0x31 << 23) | (1 << 8) | 1  # PPGTT, 3 dwords: address low, high
#: offsets inside a :class:`GpuPage`: the batch, the CPU-written bind fences, the GPU-written exec fence
BATCH_OFFSET, BIND_FENCE_OFFSET, UNBIND_FENCE_OFFSET, EXEC_FENCE_OFFSET = 0, 0x100, 0x108, 0x800
#: PAT indices tried for a non-coherent entry (Xe_LP/MTL/PVC: 1; Xe2: 3)
NONCOHERENT_PAT_CANDIDATES = (1, 3, 2, 0)
#: how long a test waits for the GPU or the kernel's workers (a bind, a job, a user fence)
FENCE_TIMEOUT_S = 5.0


class UserMem:
    """A writable block of this process's memory and its address (what a C program would pass)."""

    def __init__(self, data: bytes | int) -> None:
        self.buf = bytearray(data)  # bytes are copied; an int is that many zero bytes
        self._c = (ctypes.c_char * max(1, len(self.buf))).from_buffer(self.buf) if self.buf else None
        self.addr = ctypes.addressof(self._c) if self._c is not None else 0

    def __bytes__(self) -> bytes:
        return bytes(self.buf)


def readonly_page() -> tuple[int, Any]:
    """The address of a mapped, read-only page of zeros (copy_from_user works, copy_to_user faults)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, PAGE, mmap.PROT_READ, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value)
    return int(addr), libc


class GpuPage:
    """Page-aligned anonymous process memory (an ``mmap``) that the GPU may use through a userptr bind.

    Unlike :class:`UserMem` it is page aligned (VM_BIND wants 4 KiB alignment) and it is
    unmapped only by :meth:`close`, which :meth:`RawClient.close` calls after the queues
    that use it were destroyed and the binding removed.
    """

    def __init__(self, size: int = PAGE) -> None:
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.size = size
        view = (ctypes.c_char * size).from_buffer(self.map)
        self.addr = ctypes.addressof(view)
        del view  # no export left, so close() can unmap

    def u64(self, offset: int) -> int:
        return int(struct.unpack_from("<Q", self.map, offset)[0])

    def close(self) -> None:
        if not self.map.closed:
            self.map.close()


def spin_batch(gpu_addr: int) -> bytes:
    """A batch that never ends (MI_ARB_CHECK, then jump back to itself): preemptible, for LR queues."""
    return struct.pack("<IIII", MI_ARB_CHECK, MI_BATCH_BUFFER_START, gpu_addr & 0xFFFFFFFF, gpu_addr >> 32)


def end_batch() -> bytes:
    """A batch that ends at once: for dma-fence (non-LR) queues, whose jobs must complete."""
    return struct.pack("<II", MI_BATCH_BUFFER_END, MI_NOOP)


def wait_user_fence(
    addr: int, value: int, op: int = 0, mask: int = 0xFFFFFFFFFFFFFFFF, timeout: int = 0, exec_queue_id: int = 0
) -> bytearray:
    """struct drm_xe_wait_user_fence (72 B): ext@0 addr@8 op@16 flags@18 pad@20 value@24 mask@32 timeout@40 queue@48 pad2@52 reserved@56."""
    return bytearray(struct.pack("<QQHHIQQqII16x", 0, addr, op, 0, 0, value, mask, timeout, exec_queue_id, 0))


#: (backend, devid) -> (coherent PAT index for userptrs, non-coherent PAT index or None)
_PAT_CACHE: dict[tuple[int, int], tuple[Any, int | None, int | None]] = {}


def call(backend: Any, fd: int, request: int, arg: Any) -> int:
    """The ioctl's errno (0 on success) instead of an exception."""
    try:
        backend.ioctl(fd, request, arg)
    except OSError as exc:
        assert exc.errno is not None
        return exc.errno
    return 0


def u16(b: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<H", b, off)[0])


def u32(b: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", b, off)[0])


def s32(b: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<i", b, off)[0])


def u64(b: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<Q", b, off)[0])


# --- DRM core (spec 2) -------------------------------------------------------------------
def drm_version(
    name_len: int = 0, name: int = 0, date_len: int = 0, date: int = 0, desc_len: int = 0, desc: int = 0
) -> bytearray:
    """struct drm_version (64 B): major@0 minor@4 patch@8 name_len@16 name@24 date_len@32 date@40 desc_len@48 desc@56."""
    return bytearray(struct.pack("<iii4xQQQQQQ", 0, 0, 0, name_len, name, date_len, date, desc_len, desc))


def gem_close(handle: int, pad: int = 0) -> bytearray:
    return bytearray(struct.pack("<II", handle, pad))


# --- Xe (spec 4) ---------------------------------------------------------------------------
def device_query(
    query: int, size: int = 0, data: int = 0, extensions: int = 0, reserved: tuple[int, int] = (0, 0)
) -> bytearray:
    """struct drm_xe_device_query (40 B): extensions@0 query@8 size@12 data@16 reserved[2]@24."""
    return bytearray(struct.pack("<QIIQQQ", extensions, query, size, data, *reserved))


def gem_create(
    size: int,
    placement: int,
    cpu_caching: int,
    flags: int = 0,
    vm_id: int = 0,
    handle: int = 0,
    extensions: int = 0,
    pad: tuple[int, int, int] = (0, 0, 0),
    reserved: tuple[int, int] = (0, 0),
) -> bytearray:
    """struct drm_xe_gem_create (56 B): ext@0 size@8 placement@16 flags@20 vm_id@24 handle@28 cpu_caching@32 pad[3]@34 reserved@40."""
    return bytearray(
        struct.pack("<QQIIIIH3HQQ", extensions, size, placement, flags, vm_id, handle, cpu_caching, *pad, *reserved)
    )


def vm_create(flags: int = 0, extensions: int = 0, vm_id: int = 0, reserved: tuple[int, int] = (0, 0)) -> bytearray:
    """struct drm_xe_vm_create (32 B): extensions@0 flags@8 vm_id@12 reserved[2]@16."""
    return bytearray(struct.pack("<QIIQQ", extensions, flags, vm_id, *reserved))


def vm_destroy(vm_id: int, pad: int = 0, reserved: tuple[int, int] = (0, 0)) -> bytearray:
    return bytearray(struct.pack("<IIQQ", vm_id, pad, *reserved))


def vm_bind_op(
    op: int = OP_MAP,
    obj: int = 0,
    obj_offset: int = 0,
    range: int = 0,
    addr: int = 0,
    flags: int = 0,
    pat_index: int = PAT_WB,
    prefetch: int = 0,
    extensions: int = 0,
    pad: int = 0,
    pad2: int = 0,
) -> bytes:
    """struct drm_xe_vm_bind_op (80 B): ext@0 obj@8 pat@12 pad@14 obj_offset@16 range@24 addr@32 op@40 flags@44 prefetch@48 pad2@52 reserved[3]@56."""
    return struct.pack(
        "<QIHHQQQIIII24x", extensions, obj, pat_index, pad, obj_offset, range, addr, op, flags, prefetch, pad2
    )


def vm_bind(
    vm_id: int,
    ops: bytes | None = None,
    num_binds: int | None = None,
    vector: int = 0,
    exec_queue_id: int = 0,
    num_syncs: int = 0,
    syncs: int = 0,
    extensions: int = 0,
    pad: int = 0,
    pad2: int = 0,
    reserved: tuple[int, int] = (0, 0),
) -> bytearray:
    """struct drm_xe_vm_bind (136 B): ext@0 vm_id@8 exec_queue_id@12 pad@16 num_binds@20 bind/vector@24 pad2@104 num_syncs@108 syncs@112 reserved@120."""
    if num_binds is None:
        num_binds = 1 if ops is not None else 0
    union = ops if ops is not None else struct.pack("<Q72x", vector)
    assert len(union) == 80
    return bytearray(
        struct.pack("<QIIII", extensions, vm_id, exec_queue_id, pad, num_binds)
        + union
        + struct.pack("<IIQQQ", pad2, num_syncs, syncs, *reserved)
    )


def eci(engine_class: int, instance: int = 0, gt_id: int = 0) -> bytes:
    return struct.pack("<HHHH", engine_class, instance, gt_id, 0)


def exec_queue_create(
    vm_id: int,
    instances: int,
    width: int = 1,
    num_placements: int = 1,
    flags: int = 0,
    extensions: int = 0,
    reserved: tuple[int, int] = (0, 0),
) -> bytearray:
    """struct drm_xe_exec_queue_create (48 B): ext@0 width@8 num_placements@10 vm_id@12 flags@16 id@20 instances@24 reserved@32."""
    return bytearray(
        struct.pack("<QHHIIIQQQ", extensions, width, num_placements, vm_id, flags, 0, instances, *reserved)
    )


def exec_queue_destroy(exec_queue_id: int, pad: int = 0, reserved: tuple[int, int] = (0, 0)) -> bytearray:
    return bytearray(struct.pack("<IIQQ", exec_queue_id, pad, *reserved))


def xe_exec(
    exec_queue_id: int,
    address: int = 0x1A0000,
    num_batch_buffer: int = 1,
    num_syncs: int = 0,
    syncs: int = 0,
    extensions: int = 0,
    pad: tuple[int, int, int] = (0, 0, 0),
    reserved: tuple[int, int] = (0, 0),
) -> bytearray:
    """struct drm_xe_exec (56 B): ext@0 queue@8 num_syncs@12 syncs@16 address@24 num_bb@32 pad[3]@34 reserved@40."""
    return bytearray(
        struct.pack(
            "<QIIQQH3HQQ", extensions, exec_queue_id, num_syncs, syncs, address, num_batch_buffer, *pad, *reserved
        )
    )


def sync(
    type: int, flags: int = SYNC_SIGNAL, addr: int = 0, timeline_value: int = 0, reserved: tuple[int, int] = (0, 0)
) -> bytes:
    """struct drm_xe_sync (48 B): ext@0 type@8 flags@12 handle/addr@16 timeline_value@24 reserved@32."""
    return struct.pack("<QIIQQQQ", 0, type, flags, addr, timeline_value, *reserved)


def vm_restart(vm_id: int, pad: int = 0, timestamp_ns: int = 0, reserved: int = 0) -> bytearray:
    """struct drm_xe_vm_restart (24 B): vm_id@0 pad@4 timestamp_ns@8 reserved@16."""
    return bytearray(struct.pack("<IIQQ", vm_id, pad, timestamp_ns, reserved))


def watch_queue(fd: int, watch_id: int = 0, flags: int = 0, pad: int = 0) -> bytearray:
    return bytearray(struct.pack("<IIII", fd, watch_id, flags, pad))


# --- small clients used by the tests ---------------------------------------------------
class NotificationPipe:
    """Both ends of one notification pipe (``pipe2(O_NOTIFICATION_PIPE | flags)`` through the
    seam); ends the test closes itself are not closed again by :meth:`close_all`."""

    def __init__(self, backend: Any, flags: int) -> None:
        self.backend = backend
        self.r, self.w = backend.pipe2(0x80 | flags)  # O_NOTIFICATION_PIPE
        self.open = {self.r, self.w}

    def close(self, fd: int) -> None:
        self.open.discard(fd)
        self.backend.close(fd)

    def close_all(self) -> None:
        for fd in sorted(self.open):
            self.close(fd)


class RawClient:
    """A DRM file driven with raw bytes only."""

    def __init__(self, backend: Any, fd: int, node: str | None = None, *, check_jobs: bool = False) -> None:
        self.b = backend
        self.fd = fd
        #: the render node of ``fd``: with it, binds default to the device's coherent PAT index,
        #: probed on a DRM file of its own (without it: ``PAT_WB``, the Xe_LP index)
        self.node = node
        #: refuse (AssertionError) a job at an address where this client bound no batch
        #: (conformance tests: it would page-fault on hardware; the fake-only tests may)
        self.check_jobs = check_jobs
        #: (vm_id, page) of every batch page bound by bind_spin_batch/bind_end_batch
        self._pages: list[tuple[int, GpuPage]] = []
        #: GPU addresses where a batch was bound: the only addresses exec() may submit a job at
        self._batches: set[int] = set()
        #: exec queues that got a job: destroyed by close() (an LR job never ends by itself)
        self._jobs: set[int] = set()

    def close(self) -> None:
        """End of test: destroy every queue that got a job, unbind the batch pages, unmap them.

        On hardware this leaves the GPU idle and the batch memory unreferenced before the
        DRM file is closed; errors are ignored (the test may have destroyed things itself).
        """
        for q in sorted(self._jobs):
            self.destroy_queue(q)
        self._jobs.clear()
        for vm_id, page in self._pages:
            self._bind_sync(vm_id, page, UNBIND_FENCE_OFFSET, op=OP_UNMAP, addr=page.addr, range=page.size)
            page.close()
        self._pages.clear()
        self._batches.clear()

    def call(self, request: int, arg: Any) -> int:
        return call(self.b, self.fd, request, arg)

    def query(self, query: int) -> bytes:
        q = device_query(query)
        assert self.call(DEVICE_QUERY, q) == 0
        mem = UserMem(u32(q, 12))
        q = device_query(query, size=len(mem.buf), data=mem.addr)
        assert self.call(DEVICE_QUERY, q) == 0
        return bytes(mem.buf)

    def config(self) -> list[int]:
        data = self.query(Q_CONFIG)
        return [u64(data, 8 + 8 * i) for i in range(u32(data, 0))]

    def vram_mask(self) -> int:
        data = self.query(Q_MEM_REGIONS)
        mask = 0
        for i in range(u32(data, 0)):
            if u16(data, 8 + 88 * i) == 1:
                mask |= 1 << u16(data, 8 + 88 * i + 2)
        return mask

    def mem_regions(self) -> list[dict[str, int]]:
        data = self.query(Q_MEM_REGIONS)
        out = []
        for i in range(u32(data, 0)):
            o = 8 + 88 * i
            out.append(
                {
                    "mem_class": u16(data, o),
                    "instance": u16(data, o + 2),
                    "min_page_size": u32(data, o + 4),
                    "total_size": u64(data, o + 8),
                    "used": u64(data, o + 16),
                }
            )
        return out

    def vm(self, flags: int = 0) -> int:
        a = vm_create(flags)
        err = self.call(VM_CREATE, a)
        assert err == 0, errno.errorcode[err]
        return u32(a, 12)

    def bo(self, size: int = 64 * 1024, placement: int = 1, cpu_caching: int = WB, vm_id: int = 0) -> int:
        a = gem_create(size, placement, cpu_caching, vm_id=vm_id)
        err = self.call(GEM_CREATE, a)
        assert err == 0, errno.errorcode[err]
        return u32(a, 28)

    def bind(self, vm_id: int, obj: int, addr: int, size: int, op: int = OP_MAP, **kw: Any) -> int:
        """One VM_BIND op; ``pat_index`` defaults to the device's coherent entry (:meth:`coherent_pat`)
        when the client knows its node, else to ``PAT_WB``."""
        if "pat_index" not in kw:
            kw["pat_index"] = self.coherent_pat() if self.node is not None else PAT_WB
        return self.call(VM_BIND, vm_bind(vm_id, vm_bind_op(op=op, obj=obj, addr=addr, range=size, **kw)))

    def wait_fence(self, addr: int, value: int, timeout_s: float = FENCE_TIMEOUT_S) -> int:
        """WAIT_USER_FENCE until the u64 at CPU address ``addr`` equals ``value``: 0, or the errno (ETIME)."""
        return self.call(WAIT_USER_FENCE, wait_user_fence(addr, value, timeout=int(timeout_s * 1e9)))

    # --- PAT indices: the tables differ per platform (Xe_LP: 0 is WB coherent; MTL and Xe2: it is not) ---
    def _pats(self) -> tuple[int | None, int | None]:
        key = (id(self.b), self.config()[0])
        cached = _PAT_CACHE.get(key)
        if cached is None or cached[0] is not self.b:
            if self.node is None:
                probe = self
                cached = (self.b, probe._probe_coherent_pat(), probe._probe_noncoherent_pat())
            else:  # on a DRM file of its own, so the test's ids and handles still start at 1
                fd = self.b.open(self.node, os.O_RDWR | os.O_CLOEXEC)
                try:
                    probe = RawClient(self.b, fd)
                    cached = (self.b, probe._probe_coherent_pat(), probe._probe_noncoherent_pat())
                finally:
                    self.b.close(fd)
            _PAT_CACHE[key] = cached
        return cached[1], cached[2]

    def coherent_pat(self) -> int:
        """The first of the plugin's ``USERPTR_PAT_INDICES`` that the driver takes for a userptr (cached).

        Coherent, so also right for WB-cached BOs.  Falls back to ``PAT_WB`` when none is
        accepted (the tests that bind then fail and say so).
        """
        pat = self._pats()[0]
        return PAT_WB if pat is None else pat

    def noncoherent_pat(self) -> int | None:
        """A valid PAT index without coherency, found through the BO rule (a WB BO refuses it, a WC
        BO takes it), or None.  Cached."""
        return self._pats()[1]

    def _probe_coherent_pat(self) -> int | None:
        vm, page = self.vm(), GpuPage()
        try:
            for pat in USERPTR_PAT_INDICES:
                err = self.bind(vm, 0, page.addr, PAGE, op=OP_MAP_USERPTR, obj_offset=page.addr, pat_index=pat)
                if err == 0:
                    return pat
                assert err == errno.EINVAL, f"userptr bind with PAT {pat}: {errno.errorcode.get(err, err)}"
            return None
        finally:
            assert self.call(VM_DESTROY, vm_destroy(vm)) == 0  # removes the userptr before the unmap
            page.close()

    def _probe_noncoherent_pat(self) -> int | None:
        vm = self.vm()
        wb, wc = self.bo(PAGE, cpu_caching=WB), self.bo(PAGE, cpu_caching=WC)
        try:
            for pat in NONCOHERENT_PAT_CANDIDATES:
                refused = self.bind(vm, wb, 0x100000, PAGE, pat_index=pat) == errno.EINVAL
                taken = self.bind(vm, wc, 0x200000, PAGE, pat_index=pat) == 0
                self.bind(vm, 0, 0x100000, 0x200000, op=OP_UNMAP, pat_index=0)
                if refused and taken:
                    return pat
            return None
        finally:
            assert self.call(VM_DESTROY, vm_destroy(vm)) == 0
            for h in (wb, wc):
                assert self.call(DRM_IOCTL_GEM_CLOSE, gem_close(h)) == 0

    # --- batches a real GPU can run ------------------------------------------------------------
    def _bind_sync(self, vm_id: int, page: GpuPage, fence_offset: int, **op: Any) -> int:
        """VM_BIND one op with a user fence in ``page`` and wait for it (binds complete asynchronously)."""
        fence = page.addr + fence_offset
        syncs = UserMem(sync(SYNC_USER_FENCE, addr=fence, timeline_value=1))
        struct.pack_into("<Q", page.map, fence_offset, 0)
        err = self.call(VM_BIND, vm_bind(vm_id, vm_bind_op(**op), num_syncs=1, syncs=syncs.addr))
        if err == 0:
            err = self.wait_fence(fence, 1)
        return err

    def _bind_batch(self, vm_id: int, spin: bool) -> int:
        page = GpuPage()
        addr = page.addr  # GPU address == CPU address: a user fence there is the same u64 for both
        if addr + page.size > 1 << self.config()[3]:
            page.close()
            pytest.skip(f"the page at 0x{addr:x} is outside this device's {self.config()[3]}-bit VM")
        batch = spin_batch(addr + BATCH_OFFSET) if spin else end_batch()  # the spin jumps to its GPU address
        page.map[BATCH_OFFSET : BATCH_OFFSET + len(batch)] = batch
        last = errno.EINVAL
        for pat in dict.fromkeys((self.coherent_pat(), *USERPTR_PAT_INDICES)):
            last = self._bind_sync(
                vm_id,
                page,
                BIND_FENCE_OFFSET,
                op=OP_MAP_USERPTR,
                obj_offset=page.addr,
                addr=addr,
                range=page.size,
                pat_index=pat,
            )
            if last != errno.EINVAL:
                break
        if last != 0:
            page.close()
            raise AssertionError(f"binding a batch page as a userptr: {errno.errorcode.get(last, last)}")
        self._pages.append((vm_id, page))
        self._batches.add(addr + BATCH_OFFSET)
        return addr + BATCH_OFFSET

    def bind_spin_batch(self, vm_id: int) -> int:
        """Bind (userptr) a page holding a preemptible endless batch; its GPU address.

        For LR queues: the job runs until its queue is destroyed, which :meth:`close` does
        for every queue that got a job.  The page's ``EXEC_FENCE_OFFSET`` u64 is free.
        """
        return self._bind_batch(vm_id, spin=True)

    def bind_end_batch(self, vm_id: int) -> int:
        """Bind (userptr) a page holding ``MI_BATCH_BUFFER_END``; its GPU address.

        For dma-fence (non-LR) queues, whose jobs must complete.  ``addr + EXEC_FENCE_OFFSET -
        BATCH_OFFSET`` is a u64 in the same page, at the same address for the GPU and the CPU:
        an exec user fence there (a GPU address) can be waited for with :meth:`wait_fence`.
        """
        return self._bind_batch(vm_id, spin=False)

    def peek(self, addr: int) -> int:
        """The u64 at ``addr`` in one of this client's batch pages."""
        for _vm, page in self._pages:
            if page.addr <= addr < page.addr + page.size:
                return page.u64(addr - page.addr)
        raise ValueError(f"0x{addr:x} is in none of this client's batch pages")

    def queue(self, vm_id: int, engine_class: int = COMPUTE, instance: int = 0, gt_id: int = 0) -> int:
        inst = UserMem(eci(engine_class, instance, gt_id))
        a = exec_queue_create(vm_id, inst.addr)
        err = self.call(EXEC_QUEUE_CREATE, a)
        assert err == 0, errno.errorcode[err]
        return u32(a, 20)

    def exec(self, exec_queue_id: int, **kw: Any) -> int:
        """EXEC; with ``check_jobs``, a job (num_batch_buffer >= 1) must be at a batch this client bound.

        A job at an address where nothing is bound page-faults on hardware and resets the
        engine: the fake runs it happily, so this check is what catches such a test in CI.
        """
        err = self.call(EXEC, xe_exec(exec_queue_id, **kw))
        if err == 0 and kw.get("num_batch_buffer", 1):
            self._jobs.add(exec_queue_id)
            address = kw.get("address", DEFAULT_BATCH_ADDR)
            assert not self.check_jobs or address in self._batches, (
                f"EXEC submitted a job at 0x{address:x}, where no batch is bound: use bind_spin_batch/bind_end_batch"
            )
        return err

    def destroy_queue(self, exec_queue_id: int) -> int:
        err = self.call(EXEC_QUEUE_DESTROY, exec_queue_destroy(exec_queue_id))
        if err == 0:
            self._jobs.discard(exec_queue_id)
        return err

    def restart(self, vm_id: int, **kw: Any) -> int:
        return self.call(VM_RESTART, vm_restart(vm_id, **kw))

    def engines(self) -> list[tuple[int, int, int]]:
        """(class, instance, gt_id) of every engine the device reports."""
        data = self.query(Q_ENGINES)
        return [(u16(data, 8 + 32 * i), u16(data, 10 + 32 * i), u16(data, 12 + 32 * i)) for i in range(u32(data, 0))]

    def gt_ids(self) -> list[int]:
        """gt_id of every GT in the GT list (drm_xe_gt: 96 bytes, gt_id@4)."""
        data = self.query(Q_GT_LIST)
        return [u16(data, 8 + 96 * i + 4) for i in range(u32(data, 0))]

    def exec_engine(self) -> tuple[int, int, int]:
        """(class, instance, gt_id) of an engine that runs batches: the first COMPUTE one, else the
        first RENDER one (not every part has a compute engine, PVC has no render engine)."""
        engines = self.engines()
        for wanted in (COMPUTE, RENDER):
            for engine in engines:
                if engine[0] == wanted:
                    return engine
        pytest.skip("the device has neither a compute nor a render engine")
