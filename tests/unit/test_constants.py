"""Every constant of ``xeclient.uapi.constants`` equals the cdefs value of its UAPI name.

The ffi (out-of-line ABI mode) gives, through ``ffi.dlopen(None)``, a lib whose
attributes are the ``#define``s and enum values of ``cdefs/*.h``.  Each IntEnum /
IntFlag class maps to a UAPI prefix (``BindFlag.NULL`` is
``DRM_XE_VM_BIND_FLAG_NULL``); plain ints carry their UAPI name, or are derived
facts listed in ``DERIVED``.  A constant this file cannot place fails the test, so
new ones cannot slip in unchecked.  For the classes marked complete, the reverse
holds too: every cdefs name under the prefix is a member.
"""

from __future__ import annotations

import enum
import inspect
from functools import reduce
from operator import or_

import pytest

from xeclient.uapi import constants, ffi

LIB = ffi.dlopen(None)
NAMES = frozenset(dir(LIB))


class Prefix:
    """How an enum class's members are spelled in the UAPI."""

    def __init__(self, prefix: str, *, complete: bool = True, exclude: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.complete = complete  #: every cdefs name under the prefix must be a member
        self.exclude = exclude  #: cdefs names under the prefix that belong elsewhere

    def uapi_names(self) -> set[str]:
        return {n for n in NAMES if n.startswith(self.prefix) and not any(n.startswith(x) for x in self.exclude)}


ENUMS: dict[type[enum.Enum], Prefix] = {
    constants.WatchType: Prefix("WATCH_TYPE_", exclude=("WATCH_TYPE__NR",)),
    constants.WatchMeta: Prefix("WATCH_META_"),
    constants.KeyNotify: Prefix("NOTIFY_KEY_"),
    constants.XeWatchEvent: Prefix("DRM_XE_WATCH_EVENT_"),
    constants.VmCreateFlag: Prefix("DRM_XE_VM_CREATE_FLAG_"),
    constants.EngineClass: Prefix("DRM_XE_ENGINE_CLASS_"),
    constants.MemClass: Prefix("DRM_XE_MEM_REGION_CLASS_"),
    constants.QueryType: Prefix("DRM_XE_DEVICE_QUERY_"),
    constants.ConfigIndex: Prefix("DRM_XE_QUERY_CONFIG_", exclude=("DRM_XE_QUERY_CONFIG_FLAG_",)),
    constants.ConfigFlag: Prefix("DRM_XE_QUERY_CONFIG_FLAG_"),
    constants.GemCreateFlag: Prefix("DRM_XE_GEM_CREATE_FLAG_"),
    constants.CpuCaching: Prefix("DRM_XE_GEM_CPU_CACHING_"),
    constants.BindOp: Prefix("DRM_XE_VM_BIND_OP_"),
    constants.BindFlag: Prefix("DRM_XE_VM_BIND_FLAG_"),
    constants.SyncType: Prefix("DRM_XE_SYNC_TYPE_"),
    constants.SyncFlag: Prefix("DRM_XE_SYNC_FLAG_"),
    # DRM_XE_EXEC_QUEUE_* also names ioctls and properties: checked one way only
    constants.ExecQueueFlag: Prefix("DRM_XE_EXEC_QUEUE_", complete=False),
}

#: plain constants that are not UAPI names: their value follows from the cdefs or the spec
DERIVED: dict[str, int] = {
    "WATCH_QUEUE_MAX_NOTES": 512,  # kernel/watch_queue.c, spec 1.4: largest SET_SIZE
    "WATCH_QUEUE_MAX_FILTERS": 16,  # kernel/watch_queue.c, spec 1.5: largest nr_filters
    "WATCH_NOTIFICATION_SIZE": ffi.sizeof("struct watch_notification"),
    "MAX_RECORD_SIZE": LIB.WATCH_INFO_LENGTH >> LIB.WATCH_INFO_LENGTH__SHIFT,
    "ALL_VM_CREATE_FLAGS": reduce(or_, (getattr(LIB, n) for n in NAMES if n.startswith("DRM_XE_VM_CREATE_FLAG_"))),
}


def _enum_classes() -> list[type[enum.Enum]]:
    return [
        obj
        for _name, obj in inspect.getmembers(constants, inspect.isclass)
        if issubclass(obj, enum.Enum) and obj.__module__ == constants.__name__
    ]


def _plain_ints() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(constants).items()
        if not name.startswith("_") and type(value) is int  # enum members are not exactly int
    }


def test_every_enum_class_is_mapped() -> None:
    assert set(_enum_classes()) == set(ENUMS)


@pytest.mark.parametrize("cls", list(ENUMS), ids=lambda c: c.__name__)
def test_enum_members_equal_cdefs(cls: type[enum.Enum]) -> None:
    prefix = ENUMS[cls].prefix
    for member in cls:
        uapi = prefix + member.name
        assert uapi in NAMES, f"{cls.__name__}.{member.name}: no {uapi} in cdefs"
        assert member.value == getattr(LIB, uapi), f"{cls.__name__}.{member.name} != {uapi}"


@pytest.mark.parametrize("cls", [c for c, p in ENUMS.items() if p.complete], ids=lambda c: c.__name__)
def test_enum_classes_are_complete(cls: type[enum.Enum]) -> None:
    prefix = ENUMS[cls].prefix
    missing = {n for n in ENUMS[cls].uapi_names() if n.removeprefix(prefix) not in cls.__members__}
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"


def test_flag_classes_are_single_bits() -> None:
    for cls in ENUMS:
        if issubclass(cls, enum.IntFlag):
            for member in cls:
                assert member.value and member.value & (member.value - 1) == 0, f"{cls.__name__}.{member.name}"


def test_plain_constants() -> None:
    plain = _plain_ints()
    unplaced = set(plain) - NAMES - set(DERIVED)
    assert not unplaced, f"constants with neither a cdefs name nor a DERIVED entry: {sorted(unplaced)}"
    for name, value in plain.items():
        expected = DERIVED[name] if name in DERIVED else getattr(LIB, name)
        assert value == expected, name
    assert set(DERIVED) <= set(plain), "stale DERIVED entries"


def test_some_values_literally() -> None:
    # a handful pinned as numbers, so that a wrong cdefs value and a matching wrong constant cannot agree
    assert constants.O_NOTIFICATION_PIPE == 0x80
    assert constants.WatchType.DRM_XE_NOTIFY.value == 2
    assert constants.WATCH_TYPE__NR == 3
    assert constants.VmCreateFlag.RESTARTABLE.value == 0x10
    assert constants.ALL_VM_CREATE_FLAGS == 0x1F
    assert constants.XeWatchEvent.VM_ERR.value == 0
    assert constants.DRM_IOCTL_BASE == 0x64
    assert constants.BindFlag.DECOMPRESS.value == 0x80
    assert constants.DRM_XE_MAX_SYNCS == 1024
    assert LIB.DRM_XE_MULTI_GROUP_CREATE == 1 << 63
    assert LIB.DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM == -1
