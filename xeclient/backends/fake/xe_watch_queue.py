"""DRM_IOCTL_XE_WATCH_QUEUE and VM_ERR posting (``drivers/gpu/drm/xe/xe_watch_queue.c``).

Facts: spec §6.3 and the series' patch 4/4.  Each DRM file (``xe_file``) is a
notification source with one :class:`~.watch_queue.WatchList`; every xe watch
has ``watch->id`` 0, so one pipe can be subscribed once per DRM file whatever
its watch_id, and every VM_ERR (posted with id 0) reaches every watch of the
file.  On ``xe_file_destroy`` the DRM-file model calls
``remove_watch_from_object(xef.watch_list, None, 0, True)``: an 8-byte REMOVAL
to each watch.
"""

from __future__ import annotations

import errno
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

from ...uapi.constants import WatchType, XeWatchEvent
from .watch_queue import (
    Watch,
    WatchList,
    _post_to_watches,
    add_watch_to_object,
    get_watch_queue,
    watch_header,
)

if TYPE_CHECKING:
    from .backend import FakeBackend

__all__ = [
    "VM_ERR_RECORD_SIZE",
    "XeFileWatches",
    "pack_vm_err_record",
    "xe_watch_queue_ioctl",
    "xe_watch_queue_post_vm_err_event",
]

#: sizeof(struct drm_xe_watch_notification_vm_err) in the June series (§1.2).
VM_ERR_RECORD_SIZE = 24
_VM_ERR_BODY = struct.Struct("<IiQ")  # vm_id, error_code (s32), timestamp_ns
#: the header's first word: type DRM_XE_NOTIFY, subtype VM_ERR
_VM_ERR_TYPE_SUBTYPE = (WatchType.DRM_XE_NOTIFY & 0xFFFFFF) | (XeWatchEvent.VM_ERR & 0xFF) << 24


class XeFileWatches(Protocol):
    """What this module needs of the DRM-file model (``struct xe_file``)."""

    @property
    def backend(self) -> FakeBackend: ...

    @property
    def watch_list(self) -> WatchList: ...


def xe_watch_queue_ioctl(xef: XeFileWatches, args: Any) -> int:
    """``xe_watch_queue_ioctl`` (§6.3): subscribe the pipe ``args.fd`` to this DRM file's events.

    ``args`` is the kernel copy of ``struct drm_xe_watch_queue`` (cdata or anything with ``fd``,
    ``watch_id``, ``flags``, ``pad``).  Order: flags/pad -> EINVAL; watch_id > 0xff -> EINVAL;
    ``get_watch_queue(fd)`` -> EINVAL (not open, not a pipe, an ordinary pipe; the u32 fd is an int
    to the kernel, so >= 2**31 is never open); add -> ENOENT (pipe released) / EBUSY (this pipe is
    already subscribed on this file, any watch_id).  ENOMEM and EAGAIN (per-user watch count) are
    not modelled.  Returns 0 or -errno; nothing is copied back (IOW).
    """
    if int(args.flags) or int(args.pad):
        return -errno.EINVAL
    watch_id = int(args.watch_id)
    if watch_id > 0xFF:
        return -errno.EINVAL
    fd = int(args.fd)
    wqueue = get_watch_queue(xef.backend, fd if fd < 1 << 31 else fd - (1 << 32))
    if isinstance(wqueue, int):
        return wqueue
    watch = Watch.create(wqueue, id=0, watch_id=watch_id)
    return add_watch_to_object(watch, xef.watch_list)


def pack_vm_err_record(vm_id: int, error_code: int, timestamp_ns: int) -> bytes:
    """The 24-byte VM_ERR record as posted (ID bits 0; the watch's id is set at delivery, §1.2)."""
    header = watch_header(WatchType.DRM_XE_NOTIFY, XeWatchEvent.VM_ERR, VM_ERR_RECORD_SIZE)
    return header + _VM_ERR_BODY.pack(vm_id & 0xFFFFFFFF, error_code, timestamp_ns & ((1 << 64) - 1))


def xe_watch_queue_post_vm_err_event(xef: XeFileWatches, vm_id: int, error_code: int) -> None:
    """``xe_watch_queue_post_vm_err_event`` (§6.1, §6.3): post VM_ERR(vm_id, error_code, now) with
    id 0 to every watch of ``xef``; ``error_code`` is a negative errno, the timestamp is
    CLOCK_MONOTONIC (``time.monotonic_ns()``) taken here, when posted."""
    # post_watch_notification(xef.watch_list, pack_vm_err_record(...), 0), without re-parsing the header
    body = _VM_ERR_BODY.pack(vm_id & 0xFFFFFFFF, error_code, time.monotonic_ns() & ((1 << 64) - 1))
    _post_to_watches(xef.watch_list, _VM_ERR_TYPE_SUBTYPE, VM_ERR_RECORD_SIZE, body, 0)
