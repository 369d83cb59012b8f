"""Notification pipes through the seam: pipe2, SET_SIZE, read/write/poll on an idle queue.

Contract: spec §1.3, §1.4, §1.7, §1.8 and the §1.11 rows that need no event
source.  Raw: literal request codes and flags, so the same test runs on the
kernel backend (skipped where the kernel has no CONFIG_WATCH_QUEUE) and the
fake.  Rows that need records queued live in tests/fake/test_watch_pipes.py
(they need a source; on a kernel the real-kernel tier uses keyrings).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rawabi

from xeclient.backends import Backend
from xeclient.errors import WatchQueueUnsupportedError

O_NOTIFICATION_PIPE = 0x80
SET_SIZE = 0x5760  # _IO('W', 0x60)
SET_FILTER = 0x5761  # _IO('W', 0x61)
FIONREAD = 0x541B
POLLIN, POLLRDNORM, POLLHUP = 0x001, 0x040, 0x010


NPipe = rawabi.NotificationPipe


def make_pipe(backend: Backend, flags: int = os.O_CLOEXEC | os.O_NONBLOCK) -> NPipe:
    try:
        return NPipe(backend, flags)
    except WatchQueueUnsupportedError:
        pytest.skip("this kernel has no CONFIG_WATCH_QUEUE")


@pytest.fixture
def npipe(xe_backend: Backend) -> Iterator[NPipe]:
    p = make_pipe(xe_backend)
    yield p
    p.close_all()


@pytest.fixture
def ordinary_pipe(xe_backend: Backend) -> Iterator[tuple[int, int]]:
    make_pipe(xe_backend).close_all()  # skip where notification pipes do not exist (ENOTTY there)
    r, w = xe_backend.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    yield r, w
    xe_backend.close(r)
    xe_backend.close(w)


def errno_of(call: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
    return int(info.value.errno or 0)


def revents(fd: int, events: int = POLLIN | POLLRDNORM) -> int:
    poller = select.poll()
    poller.register(fd, events)
    got = poller.poll(0)
    return got[0][1] if got else 0


def fionread(backend: Backend, fd: int) -> int:
    buf = bytearray(4)
    assert backend.ioctl(fd, FIONREAD, buf) == 0
    return int(struct.unpack("<i", buf)[0])


# --- §1.3 pipe2 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [os.O_APPEND, os.O_RDWR, os.O_WRONLY, 1 << 30])
def test_pipe2_unknown_flag_is_einval_before_anything(xe_backend: Backend, extra: int) -> None:
    # The flag check comes first: EINVAL even where the kernel would otherwise say ENOPKG.
    assert errno_of(xe_backend.pipe2, O_NOTIFICATION_PIPE | extra) == errno.EINVAL


@pytest.mark.parametrize("flags", [0, os.O_CLOEXEC, os.O_NONBLOCK, os.O_CLOEXEC | os.O_NONBLOCK | os.O_DIRECT])
def test_pipe2_ends_and_flags(xe_backend: Backend, flags: int) -> None:
    p = make_pipe(xe_backend, flags)
    try:
        for fd, mode in ((p.r, os.O_RDONLY), (p.w, os.O_WRONLY)):
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            assert fl & os.O_ACCMODE == mode
            assert bool(fl & os.O_NONBLOCK) == bool(flags & os.O_NONBLOCK)
            assert not fl & O_NOTIFICATION_PIPE  # O_EXCL is not kept in f_flags
            assert bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) == bool(flags & os.O_CLOEXEC)
    finally:
        p.close_all()


def test_fresh_queue_is_empty_and_not_readable(xe_backend: Backend, npipe: NPipe) -> None:
    assert fionread(xe_backend, npipe.r) == 0
    assert fionread(xe_backend, npipe.w) == 0
    assert errno_of(xe_backend.read, npipe.r, 4096) == errno.EAGAIN
    assert revents(npipe.r) == 0


def test_either_end_takes_the_queue_ioctls(xe_backend: Backend, npipe: NPipe) -> None:
    assert xe_backend.ioctl(npipe.w, SET_SIZE, 1) == 0
    assert errno_of(xe_backend.ioctl, npipe.r, SET_SIZE, 1) == errno.EBUSY  # same queue
    flt = bytearray(struct.pack("<II", 1, 0) + struct.pack("<III8I", 2, 0, 0, 0xFFFFFFFF, *[0] * 7))
    assert xe_backend.ioctl(npipe.r, SET_FILTER, flt) == 0
    assert xe_backend.ioctl(npipe.w, SET_FILTER, flt) == 0
    assert xe_backend.ioctl(npipe.w, SET_FILTER, 0) == 0


def test_ordinary_pipe_has_no_queue(xe_backend: Backend, ordinary_pipe: tuple[int, int]) -> None:
    r, w = ordinary_pipe
    flt = bytearray(struct.pack("<II", 1, 0) + bytes(44))
    for fd in (r, w):
        assert errno_of(xe_backend.ioctl, fd, SET_SIZE, 1) == errno.ENODEV
        assert errno_of(xe_backend.ioctl, fd, SET_FILTER, 0) == errno.ENODEV
        assert errno_of(xe_backend.ioctl, fd, SET_FILTER, flt) == errno.ENODEV


def test_unknown_ioctl_is_enotty(xe_backend: Backend, npipe: NPipe) -> None:
    assert errno_of(xe_backend.ioctl, npipe.r, 0x5762, 0) == errno.ENOTTY  # _IO('W', 0x62)


# --- §1.4 SET_SIZE ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 513, -1, 1 << 32, (1 << 32) + 513, 100000])
def test_set_size_out_of_range_is_einval_and_not_sticky(xe_backend: Backend, npipe: NPipe, n: int) -> None:
    assert errno_of(xe_backend.ioctl, npipe.r, SET_SIZE, n) == errno.EINVAL
    assert xe_backend.ioctl(npipe.r, SET_SIZE, 32) == 0  # a failed SET_SIZE does not count


@pytest.mark.parametrize("n", [1, 31, 32, 33, 256, 511, 512, (1 << 32) + 1])
def test_set_size_in_range(xe_backend: Backend, npipe: NPipe, n: int) -> None:
    assert xe_backend.ioctl(npipe.r, SET_SIZE, n) == 0


@pytest.mark.parametrize("second", [1, 0, 513, -1, 512])
def test_set_size_twice_is_ebusy_first(xe_backend: Backend, npipe: NPipe, second: int) -> None:
    assert xe_backend.ioctl(npipe.r, SET_SIZE, 1) == 0
    assert errno_of(xe_backend.ioctl, npipe.r, SET_SIZE, second) == errno.EBUSY


@pytest.mark.parametrize(("n", "size"), [(1, 4096), (32, 4096), (33, 8192), (256, 32768), (512, 65536)])
def test_set_size_pipe_size(xe_backend: Backend, npipe: NPipe, n: int, size: int) -> None:
    # §1.11: F_GETPIPE_SZ is 65536 before SET_SIZE and nr_pages * 4096 after.
    assert fcntl.fcntl(npipe.r, fcntl.F_GETPIPE_SZ) == 65536
    assert xe_backend.ioctl(npipe.r, SET_SIZE, n) == 0
    assert fcntl.fcntl(npipe.r, fcntl.F_GETPIPE_SZ) == size


# --- §1.7 read, §1.8 write, FIONREAD, poll --------------------------------------------------------------
def test_read_zero_returns_zero(xe_backend: Backend, npipe: NPipe) -> None:
    assert xe_backend.read(npipe.r, 0) == b""
    p = make_pipe(xe_backend, os.O_CLOEXEC)  # blocking: still returns at once
    try:
        assert xe_backend.read(p.r, 0) == b""
    finally:
        p.close_all()


def test_read_empty_nonblocking_is_eagain(xe_backend: Backend, npipe: NPipe) -> None:
    assert xe_backend.ioctl(npipe.r, SET_SIZE, 32) == 0
    assert errno_of(xe_backend.read, npipe.r, 4096) == errno.EAGAIN
    assert revents(npipe.r) == 0


@pytest.mark.parametrize("flags", [os.O_CLOEXEC | os.O_NONBLOCK, os.O_CLOEXEC])
def test_write_end_closed_empty_is_eof_and_pollhup_only(xe_backend: Backend, flags: int) -> None:
    p = make_pipe(xe_backend, flags)
    try:
        p.close(p.w)
        assert revents(p.r) == POLLHUP  # 0x10 only
        assert xe_backend.read(p.r, 4096) == b""  # EOF, also on a blocking descriptor
        assert xe_backend.read(p.r, 4096) == b""
        assert fionread(xe_backend, p.r) == 0
    finally:
        p.close_all()


def test_ioctls_work_after_write_end_closed(xe_backend: Backend, npipe: NPipe) -> None:
    npipe.close(npipe.w)
    assert xe_backend.ioctl(npipe.r, SET_SIZE, 1) == 0
    assert xe_backend.ioctl(npipe.r, SET_FILTER, 0) == 0


@pytest.mark.parametrize("data", [b"x", b"", bytes(16)])
def test_write_is_exdev_even_for_zero_bytes(xe_backend: Backend, npipe: NPipe, data: bytes) -> None:
    assert errno_of(xe_backend.write, npipe.w, data) == errno.EXDEV


def test_write_to_read_end_and_read_from_write_end_are_ebadf(xe_backend: Backend, npipe: NPipe) -> None:
    assert errno_of(xe_backend.write, npipe.r, b"x") == errno.EBADF
    assert errno_of(xe_backend.read, npipe.w, 8) == errno.EBADF


def test_fionread_through_a_pointer(xe_backend: Backend, npipe: NPipe) -> None:
    value = ctypes.c_int(-1)
    assert xe_backend.ioctl(npipe.r, FIONREAD, ctypes.addressof(value)) == 0
    assert value.value == 0
