"""The published UAPI, packed by hand: a program that knows nothing of xeclient's ffi.

Every struct is packed/unpacked with :mod:`struct` from the layouts of the spec
(section 2 for ``drm_version``/``drm_gem_close``, section 4 for the Xe structs,
little-endian x86_64), and every request code is the literal of spec section 3.
User memory that the kernel reads through embedded pointers (query ``data``,
``instances``, ``vector_of_binds``, ``syncs``) is a :class:`UserMem`: a bytearray
whose address is taken with :mod:`ctypes`.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import struct
from typing import Any

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
class RawClient:
    """A DRM file driven with raw bytes only."""

    def __init__(self, backend: Any, fd: int) -> None:
        self.b = backend
        self.fd = fd

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
        return self.call(VM_BIND, vm_bind(vm_id, vm_bind_op(op=op, obj=obj, addr=addr, range=size, **kw)))

    def queue(self, vm_id: int, engine_class: int = COMPUTE, instance: int = 0) -> int:
        inst = UserMem(eci(engine_class, instance))
        a = exec_queue_create(vm_id, inst.addr)
        err = self.call(EXEC_QUEUE_CREATE, a)
        assert err == 0, errno.errorcode[err]
        return u32(a, 20)

    def exec(self, exec_queue_id: int, **kw: Any) -> int:
        return self.call(EXEC, xe_exec(exec_queue_id, **kw))

    def destroy_queue(self, exec_queue_id: int) -> int:
        return self.call(EXEC_QUEUE_DESTROY, exec_queue_destroy(exec_queue_id))

    def restart(self, vm_id: int, **kw: Any) -> int:
        return self.call(VM_RESTART, vm_restart(vm_id, **kw))

    def engines(self) -> list[tuple[int, int, int]]:
        data = self.query(Q_ENGINES)
        return [(u16(data, 8 + 32 * i), u16(data, 10 + 32 * i), u16(data, 12 + 32 * i)) for i in range(u32(data, 0))]

    def exec_engine(self) -> tuple[int, int]:
        """COMPUTE 0 if the device has it, else RENDER 0."""
        classes = {(c, i) for c, i, _ in self.engines()}
        return (COMPUTE, 0) if (COMPUTE, 0) in classes else (RENDER, 0)
