"""IOC_WATCH_QUEUE_SET_FILTER validation through the seam (spec §1.5, §1.11).

Filters are packed with ``struct`` from the published layout
(``watch_notification_filter``: nr_filters, __reserved, then 44-byte
``watch_notification_type_filter`` entries).  What a filter lets through is
tested with an event source in tests/fake/test_watch_pipes.py.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from xeclient.backends import Backend
from xeclient.errors import WatchQueueUnsupportedError

O_NOTIFICATION_PIPE = 0x80
SET_FILTER = 0x5761
PAGE = 4096


def entry(type: int = 2, info_filter: int = 0, info_mask: int = 0, subtypes: int = 0xFFFFFFFF, rest: int = 0) -> bytes:
    """One ``watch_notification_type_filter`` (44 bytes); ``rest`` fills subtype_filter[1..7]."""
    return struct.pack("<III8I", type, info_filter, info_mask, subtypes, *[rest] * 7)


def flt(*entries: bytes, nr: int | None = None, reserved: int = 0) -> bytearray:
    return bytearray(struct.pack("<II", len(entries) if nr is None else nr, reserved) + b"".join(entries))


@pytest.fixture
def rfd(xe_backend: Backend) -> Iterator[int]:
    try:
        r, w = xe_backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    except WatchQueueUnsupportedError:
        pytest.skip("this kernel has no CONFIG_WATCH_QUEUE")
    yield r
    xe_backend.close(r)
    xe_backend.close(w)


def errno_of(call: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
    return int(info.value.errno or 0)


class GuardedPage:
    """A readable page followed by a PROT_NONE page: data placed at its end makes reads past it fault."""

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 2 * PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        if libc.mprotect(self.base + PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")

    def place_at_end(self, data: bytes, overhang: int = 0) -> int:
        """Copy ``data`` so that it ends ``overhang`` bytes past the readable page; its address."""
        start = PAGE - len(data) + overhang
        readable = data[: len(data) - overhang] if overhang else data
        self.map[start : start + len(readable)] = readable
        return self.base + start


@pytest.fixture
def guarded() -> Iterator[GuardedPage]:
    page = GuardedPage()
    yield page
    page.map.close()  # the address was taken from a temporary export, so the map can be unmapped


# --- header checks (one combined EINVAL) -------------------------------------------------------------
def test_nr_filters_zero_is_einval(xe_backend: Backend, rfd: int) -> None:
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, flt(entry(), nr=0)) == errno.EINVAL


def test_nr_filters_17_is_einval_16_is_ok(xe_backend: Backend, rfd: int) -> None:
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, flt(*[entry()] * 17)) == errno.EINVAL
    assert xe_backend.ioctl(rfd, SET_FILTER, flt(*[entry()] * 16)) == 0


@pytest.mark.parametrize("reserved", [1, 0x80000000])
def test_reserved_nonzero_is_einval(xe_backend: Backend, rfd: int, reserved: int) -> None:
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, flt(entry(), reserved=reserved)) == errno.EINVAL


# --- per-entry checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("info_filter", "info_mask", "ok"),
    [
        (0x100, 0, False),  # info_filter outside info_mask
        (0x100, 0xFF00, True),  # select by watch_id
        (0, 0x7F, False),  # the length bits may not be masked
        (0, 0x01, False),
        (0, 0x40, False),
        (0, 0x80, True),  # bit 7 is not part of the length
        (0x10000, 0xFFFF0000, True),
        (0x10080, 0xFFFF0080, True),
        (0x20000, 0x10000, False),
    ],
)
def test_info_filter_and_mask_rules(xe_backend: Backend, rfd: int, info_filter: int, info_mask: int, ok: bool) -> None:
    arg = flt(entry(info_filter=info_filter, info_mask=info_mask))
    if ok:
        assert xe_backend.ioctl(rfd, SET_FILTER, arg) == 0
    else:
        assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, arg) == errno.EINVAL


def test_every_entry_is_checked(xe_backend: Backend, rfd: int) -> None:
    bad_last = flt(entry(), entry(type=1), entry(info_filter=1, info_mask=0))
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, bad_last) == errno.EINVAL


def test_entries_of_unknown_type_are_checked_too(xe_backend: Backend, rfd: int) -> None:
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, flt(entry(type=99, info_mask=0x1))) == errno.EINVAL


@pytest.mark.parametrize("type", [3, 99, 0xFFFFFFFF])
def test_only_unknown_types_is_accepted(xe_backend: Backend, rfd: int, type: int) -> None:
    assert xe_backend.ioctl(rfd, SET_FILTER, flt(entry(type=type))) == 0


def test_subtype_words_1_to_7_are_not_checked(xe_backend: Backend, rfd: int) -> None:
    assert xe_backend.ioctl(rfd, SET_FILTER, flt(entry(rest=0xDEADBEEF))) == 0


def test_null_removes_and_filters_can_be_replaced(xe_backend: Backend, rfd: int) -> None:
    assert xe_backend.ioctl(rfd, SET_FILTER, 0) == 0  # no filter yet: still fine
    assert xe_backend.ioctl(rfd, SET_FILTER, flt(entry(type=0), entry(type=2))) == 0
    assert xe_backend.ioctl(rfd, SET_FILTER, flt(entry(type=1))) == 0
    assert xe_backend.ioctl(rfd, SET_FILTER, 0) == 0


# --- faults ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [8, 0x1000, (1 << 47) - 8, (1 << 64) - 8])
def test_bad_pointer_is_efault(xe_backend: Backend, rfd: int, address: int) -> None:
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, address) == errno.EFAULT


def test_header_copy_fault_is_efault(xe_backend: Backend, rfd: int, guarded: GuardedPage) -> None:
    addr = guarded.place_at_end(bytes(flt(entry()))[:8], overhang=4)
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, addr) == errno.EFAULT


def test_entries_copy_fault_is_efault(xe_backend: Backend, rfd: int, guarded: GuardedPage) -> None:
    data = bytes(flt(entry(), entry()))
    addr = guarded.place_at_end(data, overhang=44)  # the second entry is on the PROT_NONE page
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, addr) == errno.EFAULT


def test_header_is_checked_before_entries_are_copied(xe_backend: Backend, rfd: int, guarded: GuardedPage) -> None:
    addr = guarded.place_at_end(struct.pack("<II", 17, 0))  # entries would fault: EINVAL wins
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, addr) == errno.EINVAL
    addr = guarded.place_at_end(struct.pack("<II", 1, 1))
    assert errno_of(xe_backend.ioctl, rfd, SET_FILTER, addr) == errno.EINVAL


def test_filter_through_a_pointer(xe_backend: Backend, rfd: int, guarded: GuardedPage) -> None:
    addr = guarded.place_at_end(bytes(flt(entry(), entry(type=0))))
    assert xe_backend.ioctl(rfd, SET_FILTER, addr) == 0
