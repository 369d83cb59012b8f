"""UAPI constants as typed Python ints, IntEnums and IntFlags.

The values mirror the ``#define``/``enum`` lines of ``cdefs/*.h``; the unit test
``tests/unit/test_constants.py`` checks each one against the ffi so the two can
never drift apart.  Facts: spec sections 1.1, 3 and 4.
"""

from __future__ import annotations

import enum

# --- notification pipes (watch_queue.h) -----------------------------------
O_NOTIFICATION_PIPE = 0x80  #: == O_EXCL on x86; pipe2() flag for a notification pipe
WATCH_QUEUE_NOTE_SIZE = 128  #: bytes per note slot
WATCH_QUEUE_NOTES_PER_PAGE = 32  #: PAGE_SIZE / WATCH_QUEUE_NOTE_SIZE with 4 KiB pages
WATCH_QUEUE_MAX_NOTES = 512  #: largest IOC_WATCH_QUEUE_SET_SIZE argument
WATCH_QUEUE_MAX_FILTERS = 16  #: largest watch_notification_filter.nr_filters
WATCH_INFO_LENGTH = 0x0000007F
WATCH_INFO_LENGTH__SHIFT = 0
WATCH_INFO_ID = 0x0000FF00
WATCH_INFO_ID__SHIFT = 8
WATCH_INFO_TYPE_INFO = 0xFFFF0000
WATCH_INFO_TYPE_INFO__SHIFT = 16
WATCH_NOTIFICATION_SIZE = 8  #: sizeof(struct watch_notification)
MAX_RECORD_SIZE = WATCH_INFO_LENGTH  #: a record length is 7 bits of bytes
KEYCTL_WATCH_KEY = 32


class WatchType(enum.IntEnum):
    """``enum watch_notification_type`` (with the series' DRM_XE_NOTIFY = 2)."""

    META = 0
    KEY_NOTIFY = 1
    DRM_XE_NOTIFY = 2


WATCH_TYPE__NR = 3  #: with the series applied; mainline kernels stop at 2


class WatchMeta(enum.IntEnum):
    """Subtypes of ``WATCH_TYPE_META`` records."""

    REMOVAL_NOTIFICATION = 0
    LOSS_NOTIFICATION = 1


class KeyNotify(enum.IntEnum):
    """Subtypes of ``WATCH_TYPE_KEY_NOTIFY`` records (``enum key_notification_subtype``)."""

    INSTANTIATED = 0
    UPDATED = 1
    LINKED = 2
    UNLINKED = 3
    CLEARED = 4
    REVOKED = 5
    INVALIDATED = 6
    SETATTR = 7


class XeWatchEvent(enum.IntEnum):
    """Subtypes of ``WATCH_TYPE_DRM_XE_NOTIFY`` records (``enum drm_xe_watch_event``)."""

    VM_ERR = 0


# --- DRM core --------------------------------------------------------------
DRM_IOCTL_BASE = ord("d")
DRM_COMMAND_BASE = 0x40
DRM_COMMAND_END = 0xA0


# --- Xe ---------------------------------------------------------------------
class VmCreateFlag(enum.IntFlag):
    """``drm_xe_vm_create.flags``; RESTARTABLE is the series' addition (needs LR, not FAULT)."""

    SCRATCH_PAGE = 1 << 0
    LR_MODE = 1 << 1
    FAULT_MODE = 1 << 2
    NO_VM_OVERCOMMIT = 1 << 3
    RESTARTABLE = 1 << 4


ALL_VM_CREATE_FLAGS = 0x1F  #: with the series; 0x0f on mainline


class EngineClass(enum.IntEnum):
    RENDER = 0
    COPY = 1
    VIDEO_DECODE = 2
    VIDEO_ENHANCE = 3
    COMPUTE = 4
    VM_BIND = 5


class MemClass(enum.IntEnum):
    SYSMEM = 0
    VRAM = 1


class QueryType(enum.IntEnum):
    ENGINES = 0
    MEM_REGIONS = 1
    CONFIG = 2
    GT_LIST = 3
    HWCONFIG = 4
    GT_TOPOLOGY = 5
    ENGINE_CYCLES = 6
    UC_FW_VERSION = 7
    OA_UNITS = 8
    PXP_STATUS = 9
    EU_STALL = 10


class ConfigIndex(enum.IntEnum):
    REV_AND_DEVICE_ID = 0
    FLAGS = 1
    MIN_ALIGNMENT = 2
    VA_BITS = 3
    MAX_EXEC_QUEUE_PRIORITY = 4


class ConfigFlag(enum.IntFlag):
    HAS_VRAM = 1 << 0
    HAS_LOW_LATENCY = 1 << 1
    HAS_CPU_ADDR_MIRROR = 1 << 2
    HAS_NO_COMPRESSION_HINT = 1 << 3
    HAS_DISABLE_STATE_CACHE_PERF_FIX = 1 << 4
    HAS_PURGING_SUPPORT = 1 << 5


class GemCreateFlag(enum.IntFlag):
    DEFER_BACKING = 1 << 0
    SCANOUT = 1 << 1
    NEEDS_VISIBLE_VRAM = 1 << 2
    NO_COMPRESSION = 1 << 3  #: graphics version 20+; -EOPNOTSUPP before


class CpuCaching(enum.IntEnum):
    WB = 1
    WC = 2


class BindOp(enum.IntEnum):
    MAP = 0
    UNMAP = 1
    MAP_USERPTR = 2
    UNMAP_ALL = 3
    PREFETCH = 4


class BindFlag(enum.IntFlag):
    READONLY = 1 << 0
    IMMEDIATE = 1 << 1
    NULL = 1 << 2
    DUMPABLE = 1 << 3
    CHECK_PXP = 1 << 4
    CPU_ADDR_MIRROR = 1 << 5
    MADVISE_AUTORESET = 1 << 6
    DECOMPRESS = 1 << 7


DRM_XE_MAX_SYNCS = 1024  #: declared with drm_xe_exec; VM_BIND rejects num_syncs above it (spec 5.3)


class SyncType(enum.IntEnum):
    SYNCOBJ = 0
    TIMELINE_SYNCOBJ = 1
    USER_FENCE = 2


class SyncFlag(enum.IntFlag):
    SIGNAL = 1 << 0


class ExecQueueFlag(enum.IntFlag):
    LOW_LATENCY_HINT = 1 << 0
