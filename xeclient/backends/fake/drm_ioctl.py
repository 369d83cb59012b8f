"""``drm_ioctl()``: the DRM core dispatch in front of every xe ioctl (spec 2).

Order, as in ``xe_drm_ioctl()`` + ``drivers/gpu/drm/drm_ioctl.c``:

0. A wedged device -> -ECANCELED; an unplugged one -> -ENODEV (control attributes
   ``XeDevice.wedged`` / ``XeDevice.unplugged``; runtime PM never fails in the fake).
1. ``_IOC_TYPE(cmd) != 'd'`` -> -ENOTTY.
2. nr in [0x40, 0xa0): a driver ioctl; ``nr - 0x40 >= num_ioctls`` -> -EINVAL.  Any
   other nr indexes the core table; a number the core table does not answer -> -EINVAL.
3. The kernel buffer is ``max(user size, table size)`` bytes; the user's bytes are
   copied in only when both the user cmd and the table entry have IOC_IN (a bad
   pointer -> -EFAULT); the tail is zero-filled.
4. (Permission: every ioctl answered here is DRM_RENDER_ALLOW, so nothing to refuse.)
5. The handler runs under the device lock.
6. The user's ``_IOC_SIZE`` bytes are copied back whenever both sides have IOC_OUT,
   **also when the handler failed**; a failed copy-back turns the result into -EFAULT.

``arg`` is either a writable Python buffer (bytearray, memoryview, ``ffi.buffer``)
standing for the user struct, or an int user pointer read with
:mod:`.usercopy` (NULL or unmapped -> -EFAULT).

Core ioctls answered: DRM_IOCTL_VERSION (0x00), DRM_IOCTL_GEM_CLOSE (0x09),
DRM_IOCTL_GET_CAP (0x0c, the render-node capabilities).  Other core numbers are
-EINVAL (deviation: a kernel answers some of them, often -EACCES on a render node).

Safety net: a Python exception escaping a handler is a bug of the model; it is
logged, counted in ``XeDevice.bugs`` and answered with -EIO.
"""

from __future__ import annotations

import errno
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...uapi import ffi
from ...uapi.constants import DRM_COMMAND_BASE, DRM_COMMAND_END, DRM_IOCTL_BASE
from ...uapi.ioc import IOC_DIRSHIFT, IOC_NR, IOC_READ, IOC_SIZE, IOC_TYPE, IOC_WRITE, IOWR
from ...uapi.requests import DRM_IOCTL_GEM_CLOSE, DRM_IOCTL_VERSION, XE_REQUESTS
from ..base import IoctlArg
from . import usercopy

if TYPE_CHECKING:
    from .xe_device import XeFile

log = logging.getLogger("xeclient.backends.fake.drm_ioctl")

IOC_IN = IOC_WRITE << IOC_DIRSHIFT
IOC_OUT = IOC_READ << IOC_DIRSHIFT

Handler = Callable[["XeFile", Any], int]


@dataclass(frozen=True)
class DrmIoctlDesc:
    """``struct drm_ioctl_desc``: the table's cmd (its size and direction win), handler, struct."""

    cmd: int
    func: Handler | None
    struct: str | None
    name: str
    locked: bool = True  #: run under the device lock (WAIT_USER_FENCE waits without it)


DRM_XE_DRIVER_NAME = "xe"
DRM_XE_DRIVER_DESC = "Intel Xe Graphics"
DRM_XE_DRIVER_DATE = "0"  # "deprecate driver date": newer kernels report "0"
DRIVER_MAJOR, DRIVER_MINOR, DRIVER_PATCHLEVEL = 1, 1, 0

DRM_IOCTL_GET_CAP = IOWR(DRM_IOCTL_BASE, 0x0C, 16)
#: drm_getcap() caps that make sense on a render-only client
DRM_CAPS = {
    0x5: 0x3,  # DRM_CAP_PRIME: IMPORT | EXPORT
    0x6: 1,  # DRM_CAP_TIMESTAMP_MONOTONIC
    0x13: 1,  # DRM_CAP_SYNCOBJ
    0x14: 1,  # DRM_CAP_SYNCOBJ_TIMELINE
}


# --- core handlers ---------------------------------------------------------------------
def drm_copy_field(buf: int, length: int, value: str) -> tuple[int, int]:
    """``drm_copy_field()``: copy min(len, strlen) bytes (no NUL); report strlen. -> (new_len, err)."""
    data = value.encode()
    n = min(len(data), length)
    if n and buf:
        try:
            usercopy.copy_to_user(buf, data[:n])
        except usercopy.EFault:
            return len(data), -errno.EFAULT
    return len(data), 0


def drm_version(xef: XeFile, args: Any) -> int:
    """``drm_version()`` (spec 2): numbers, then name, date, desc; stop at the first fault."""
    args.version_major = DRIVER_MAJOR
    args.version_minor = DRIVER_MINOR
    args.version_patchlevel = DRIVER_PATCHLEVEL
    for field, value in (("name", DRM_XE_DRIVER_NAME), ("date", DRM_XE_DRIVER_DATE), ("desc", DRM_XE_DRIVER_DESC)):
        ptr = int(ffi.cast("uintptr_t", getattr(args, field)))
        new_len, err = drm_copy_field(ptr, int(getattr(args, field + "_len")), value)
        setattr(args, field + "_len", new_len)
        if err:
            return err
    return 0


def drm_gem_close_ioctl(xef: XeFile, args: Any) -> int:
    """``drm_gem_close_ioctl()``: ``drm_gem_handle_delete``; unknown handle -EINVAL, pad unchecked."""
    from .xe_bo import xe_bo_put

    bo = xef.bos.pop(int(args.handle), None)
    if bo is None:
        return -errno.EINVAL
    xe_bo_put(bo)
    return 0


def drm_getcap(xef: XeFile, args: Any) -> int:
    """``drm_getcap()`` for a render-only client: the PRIME/SYNCOBJ/timestamp caps; others -EINVAL."""
    capability = struct.unpack_from("<Q", args, 0)[0]
    if capability not in DRM_CAPS:
        return -errno.EINVAL
    struct.pack_into("<Q", args, 8, DRM_CAPS[capability])
    return 0


def _core_table() -> dict[int, DrmIoctlDesc]:
    return {
        0x00: DrmIoctlDesc(DRM_IOCTL_VERSION, drm_version, "struct drm_version", "DRM_IOCTL_VERSION"),
        0x09: DrmIoctlDesc(DRM_IOCTL_GEM_CLOSE, drm_gem_close_ioctl, "struct drm_gem_close", "DRM_IOCTL_GEM_CLOSE"),
        0x0C: DrmIoctlDesc(DRM_IOCTL_GET_CAP, drm_getcap, None, "DRM_IOCTL_GET_CAP"),
    }


def _xe_watch_queue_ioctl(xef: XeFile, args: Any) -> int:
    """DRM_IOCTL_XE_WATCH_QUEUE: handled by :mod:`.xe_watch_queue` (spec 6.3)."""
    from . import xe_watch_queue

    return int(xe_watch_queue.xe_watch_queue_ioctl(xef, args))


def _xe_table() -> list[DrmIoctlDesc]:
    """``xe_ioctls[]`` (xe_device.c): 0x00..0x11, compact, in UAPI order."""
    from . import xe_bo, xe_exec_queue, xe_vm
    from .xe_device import xe_query_ioctl

    funcs: dict[str, Handler] = {
        "DEVICE_QUERY": xe_query_ioctl,
        "GEM_CREATE": xe_bo.xe_gem_create_ioctl,
        "GEM_MMAP_OFFSET": xe_bo.xe_gem_mmap_offset_ioctl,
        "VM_CREATE": xe_vm.xe_vm_create_ioctl,
        "VM_DESTROY": xe_vm.xe_vm_destroy_ioctl,
        "VM_BIND": xe_vm.xe_vm_bind_ioctl,
        "EXEC_QUEUE_CREATE": xe_exec_queue.xe_exec_queue_create_ioctl,
        "EXEC_QUEUE_DESTROY": xe_exec_queue.xe_exec_queue_destroy_ioctl,
        "EXEC_QUEUE_GET_PROPERTY": xe_exec_queue.xe_exec_queue_get_property_ioctl,
        "EXEC": xe_exec_queue.xe_exec_ioctl,
        "WAIT_USER_FENCE": xe_exec_queue.xe_wait_user_fence_ioctl,
        "OBSERVATION": xe_exec_queue.xe_observation_ioctl,
        "MADVISE": xe_vm.xe_vm_madvise_ioctl,
        "VM_QUERY_MEM_RANGE_ATTRS": xe_vm.xe_vm_query_vmas_attrs_ioctl,
        "EXEC_QUEUE_SET_PROPERTY": xe_exec_queue.xe_exec_queue_set_property_ioctl,
        "VM_GET_PROPERTY": xe_vm.xe_vm_get_property_ioctl,
        "VM_RESTART": xe_vm.xe_vm_restart_ioctl,
        "WATCH_QUEUE": _xe_watch_queue_ioctl,
    }
    table = []
    for name, req in XE_REQUESTS.items():
        table.append(DrmIoctlDesc(req.code, funcs[name], req.struct, req.name, locked=name != "WAIT_USER_FENCE"))
    table.sort(key=lambda d: IOC_NR(d.cmd))
    assert [IOC_NR(d.cmd) - DRM_COMMAND_BASE for d in table] == list(range(len(table))), "xe_ioctls must be compact"
    return table


_TABLES: tuple[dict[int, DrmIoctlDesc], list[DrmIoctlDesc]] | None = None


def ioctl_tables() -> tuple[dict[int, DrmIoctlDesc], list[DrmIoctlDesc]]:
    global _TABLES
    if _TABLES is None:
        _TABLES = (_core_table(), _xe_table())
    return _TABLES


# --- user memory behind ``arg`` ----------------------------------------------------------
#: Buffer types copied without a memoryview: always writable (a cffi buffer, even over bytes, is
#: writable to a memoryview too) and their len() counts bytes.  Others go through _user_view().
_BYTE_BUFFERS = frozenset({bytearray, type(ffi.buffer(ffi.new("char[1]")))})


def _user_view(arg: IoctlArg) -> memoryview | None:
    if isinstance(arg, int):
        return None
    try:
        return memoryview(arg).cast("B")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


#: xe's ioctl table size before the series (0x00-0x0f): VM_RESTART and WATCH_QUEUE are 0x10/0x11.
PRE_SERIES_NUM_IOCTLS = 0x10


class _Resolved:
    """What steps 1-3 decide for one cmd value: the table entry, the copy sizes, the struct type.

    It depends on nothing but ``cmd`` -- except ``nr - 0x40 >= num_ioctls``, which depends on the
    device (a pre-series driver has 0x10 ioctls) and is checked on every call -- so it is worked
    out once per cmd value instead of on every call.
    """

    __slots__ = ("ctype", "desc", "func", "in_size", "index", "ksize", "out_size", "tables")

    def __init__(
        self,
        tables: object,
        desc: DrmIoctlDesc,
        func: Handler,
        index: int,
        in_size: int,
        out_size: int,
        ksize: int,
        ctype: Any,
    ) -> None:
        self.tables = tables  #: the ioctl_tables() it was read from (a rebuilt table voids it)
        self.desc = desc
        self.func = func
        self.index = index  #: nr - DRM_COMMAND_BASE for a driver ioctl, -1 for a core one
        self.in_size = in_size
        self.out_size = out_size
        self.ksize = ksize
        self.ctype = ctype  #: ``struct ... *`` for ffi.from_buffer, or None: the handler gets the bytearray


#: cmd -> _Resolved; bounded, since a fuzzer sends many sizes of one nr
_RESOLVED: dict[int, _Resolved] = {}
_RESOLVED_MAX = 4096


def _resolve(cmd: int) -> _Resolved | int:
    """Steps 1-3 for ``cmd`` (already masked to 32 bits), the device-dependent bound aside:
    the entry and the sizes, or -errno."""
    if IOC_TYPE(cmd) != DRM_IOCTL_BASE:
        return -errno.ENOTTY
    nr = IOC_NR(cmd)
    tables = ioctl_tables()
    core, xe_table = tables
    if DRM_COMMAND_BASE <= nr < DRM_COMMAND_END:
        index = nr - DRM_COMMAND_BASE
        if index >= len(xe_table):
            return -errno.EINVAL
        desc: DrmIoctlDesc | None = xe_table[index]
    else:
        index = -1
        desc = core.get(nr)
    if desc is None or desc.func is None:
        return -errno.EINVAL
    drv_size = IOC_SIZE(desc.cmd)
    in_size = out_size = IOC_SIZE(cmd)
    if not cmd & desc.cmd & IOC_IN:
        in_size = 0
    if not cmd & desc.cmd & IOC_OUT:
        out_size = 0
    ksize = max(in_size, out_size, drv_size)
    ctype = None if desc.struct is None else ffi.typeof(f"{desc.struct} *")
    if ctype is not None:  # the table size is sizeof(struct) already; from_buffer() wants no less
        ksize = max(ksize, ffi.sizeof(ctype.item))
    resolved = _Resolved(tables, desc, desc.func, index, in_size, out_size, ksize, ctype)
    if len(_RESOLVED) < _RESOLVED_MAX or cmd in _RESOLVED:
        _RESOLVED[cmd] = resolved
    return resolved


def drm_ioctl(xef: XeFile, cmd: int, arg: IoctlArg) -> int:
    """``drm_ioctl()`` (spec 2): returns 0/positive or ``-errno``; never raises."""
    cmd &= 0xFFFFFFFF
    device = xef.device
    if device.wedged:  # xe_drm_ioctl(): a wedged device refuses every cmd first
        return -errno.ECANCELED
    if device.unplugged:  # drm_dev_is_unplugged()
        return -errno.ENODEV
    r = _RESOLVED.get(cmd)
    if r is None or r.tables is not _TABLES:
        resolved = _resolve(cmd)
        if isinstance(resolved, int):
            return resolved
        r = resolved
    if r.index >= 0 and not device.info.series and r.index >= PRE_SERIES_NUM_IOCTLS:
        return -errno.EINVAL
    desc = r.desc

    in_size = r.in_size
    kdata = bytearray(r.ksize)
    if in_size:
        if isinstance(arg, int):
            try:
                kdata[:in_size] = usercopy.copy_from_user(arg, in_size)
            except usercopy.EFault:
                return -errno.EFAULT
        elif type(arg) in _BYTE_BUFFERS:  # the usual struct buffer: no memoryview needed
            buf: Any = arg
            if len(buf) < in_size:
                return -errno.EFAULT
            kdata[:in_size] = buf if len(buf) == in_size else buf[:in_size]
        else:
            view = _user_view(arg)
            if view is None or len(view) < in_size:
                return -errno.EFAULT
            kdata[:in_size] = view[:in_size]
            del view

    try:
        args: Any = kdata if r.ctype is None else ffi.from_buffer(r.ctype, kdata)
        if desc.locked:
            with device.lock:
                retcode = r.func(xef, args)
        else:
            retcode = r.func(xef, args)
    except Exception:
        device.bugs += 1
        log.exception("BUG: %s handler raised; answering -EIO", desc.name)
        retcode = -errno.EIO

    out_size = r.out_size
    if out_size:  # copy back, also after a failure; a failed copy is -EFAULT
        if isinstance(arg, int):
            try:
                usercopy.copy_to_user(arg, bytes(kdata[:out_size]))
            except usercopy.EFault:
                retcode = -errno.EFAULT
        elif type(arg) in _BYTE_BUFFERS:  # writable, len() in bytes
            out: Any = arg
            if len(out) < out_size:
                retcode = -errno.EFAULT
            else:
                out[:out_size] = kdata if out_size == len(kdata) else kdata[:out_size]
        else:
            view = _user_view(arg)
            if view is None or view.readonly or len(view) < out_size:
                retcode = -errno.EFAULT
            else:
                view[:out_size] = kdata if out_size == len(kdata) else kdata[:out_size]
    return int(retcode)
