"""DRM_IOCTL_XE_WATCH_QUEUE through the seam (spec §6.3, §1.9, §1.11).

Raw: the request code is the literal ``DRM_IOW(0x40 + 0x11, struct
drm_xe_watch_queue)`` = 0x40106451 and the argument is packed with ``struct``
(fd, watch_id, flags, pad: four u32).  VM_ERR delivery needs a VM error and is
tested with the driver model (tests/fake/test_watch_xe.py) and the
real-kernel tier; here: the errno table, one subscription per (file, pipe),
and the 8-byte REMOVAL each watch receives when the DRM file goes away.
"""

from __future__ import annotations

import errno
import os
import select
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from xeclient.backends import Backend
from xeclient.errors import WatchQueueUnsupportedError

DRM_IOCTL_XE_WATCH_QUEUE = 0x40106451
O_NOTIFICATION_PIPE = 0x80
SET_SIZE = 0x5760
SET_FILTER = 0x5761
POLLIN, POLLRDNORM, POLLHUP = 0x001, 0x040, 0x010
REMOVAL_WAIT_MS = 2000  # xe_file_destroy may run a little after close(): wait, never sleep


def wq_args(fd: int, watch_id: int = 0, flags: int = 0, pad: int = 0) -> bytearray:
    return bytearray(struct.pack("<IIII", fd & 0xFFFFFFFF, watch_id, flags, pad))


def removal(watch_id: int) -> bytes:
    """The 8-byte REMOVAL (type META 0, subtype REMOVAL 0, info = watch_id << 8 | 8)."""
    return struct.pack("<II", 0, watch_id << 8 | 8)


def errno_of(call: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
    return int(info.value.errno or 0)


class Pipes:
    """Notification pipes made by one test, closed at its end (unless the test closed them)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.open: set[int] = set()

    def new(self, size: int | None = 32) -> tuple[int, int]:
        try:
            r, w = self.backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
        except WatchQueueUnsupportedError:
            pytest.skip("this kernel has no CONFIG_WATCH_QUEUE")
        self.open |= {r, w}
        if size is not None:
            self.backend.ioctl(r, SET_SIZE, size)
        return r, w

    def close(self, fd: int) -> None:
        self.open.discard(fd)
        self.backend.close(fd)


@pytest.fixture
def pipes(xe_backend: Backend) -> Iterator[Pipes]:
    p = Pipes(xe_backend)
    yield p
    for fd in sorted(p.open):
        p.close(fd)


@pytest.fixture
def open_file(xe_backend: Backend, xe_node: str) -> Iterator[Callable[[], int]]:
    """Open extra DRM files; those the test did not close are closed afterwards."""
    fds: list[int] = []

    def opener() -> int:
        fds.append(xe_backend.open(xe_node, os.O_RDWR | os.O_CLOEXEC))
        return fds[-1]

    yield opener
    for fd in fds:
        try:
            xe_backend.close(fd)
        except OSError:
            pass


def subscribe(backend: Backend, drm_fd: int, pipe_fd: int, watch_id: int = 0) -> int:
    return backend.ioctl(drm_fd, DRM_IOCTL_XE_WATCH_QUEUE, wq_args(pipe_fd, watch_id))


def wait_readable(fd: int, timeout_ms: int = REMOVAL_WAIT_MS) -> int:
    poller = select.poll()
    poller.register(fd, POLLIN | POLLRDNORM)
    got = poller.poll(timeout_ms)
    return got[0][1] if got else 0


# --- the errno table, in order ------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "pad"), [(1, 0), (0, 1), (0x80000000, 0), (1, 1)])
def test_flags_or_pad_is_einval(xe_backend: Backend, xe_file: int, pipes: Pipes, flags: int, pad: int) -> None:
    r, _ = pipes.new()
    args = wq_args(r, 0, flags, pad)
    assert errno_of(xe_backend.ioctl, xe_file, DRM_IOCTL_XE_WATCH_QUEUE, args) == errno.EINVAL
    assert args == wq_args(r, 0, flags, pad)  # IOW: nothing copied back
    assert subscribe(xe_backend, xe_file, r) == 0  # and nothing was added


@pytest.mark.parametrize("watch_id", [0x100, 0x101, 0xFFFFFFFF])
def test_watch_id_above_0xff_is_einval(xe_backend: Backend, xe_file: int, pipes: Pipes, watch_id: int) -> None:
    r, _ = pipes.new()
    assert errno_of(subscribe, xe_backend, xe_file, r, watch_id) == errno.EINVAL
    assert subscribe(xe_backend, xe_file, r, 0xFF) == 0


def test_fd_not_open_is_einval(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    r, w = pipes.new()
    pipes.close(r)
    pipes.close(w)
    for fd in (r, w, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF):
        assert errno_of(subscribe, xe_backend, xe_file, fd) == errno.EINVAL


def test_non_pipe_fd_is_einval(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    pipes.new()  # skips without CONFIG_WATCH_QUEUE
    assert errno_of(subscribe, xe_backend, xe_file, xe_file) == errno.EINVAL  # the DRM file itself
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert errno_of(subscribe, xe_backend, xe_file, null) == errno.EINVAL
    finally:
        os.close(null)


def test_ordinary_pipe_is_einval(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    pipes.new()
    r, w = xe_backend.pipe2(os.O_CLOEXEC)
    try:
        assert errno_of(subscribe, xe_backend, xe_file, r) == errno.EINVAL
        assert errno_of(subscribe, xe_backend, xe_file, w) == errno.EINVAL
    finally:
        xe_backend.close(r)
        xe_backend.close(w)


@pytest.mark.parametrize("end", ["read", "write"])
def test_either_end_subscribes(xe_backend: Backend, xe_file: int, pipes: Pipes, end: str) -> None:
    r, w = pipes.new()
    assert subscribe(xe_backend, xe_file, r if end == "read" else w, 3) == 0


def test_unsized_pipe_subscribes(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    r, _ = pipes.new(size=None)
    assert subscribe(xe_backend, xe_file, r) == 0
    assert xe_backend.ioctl(r, SET_SIZE, 1) == 0  # sizing after subscribing is allowed


@pytest.mark.parametrize(("first", "second", "second_end"), [(0, 0, "read"), (1, 2, "read"), (5, 5, "write")])
def test_same_pipe_twice_on_one_file_is_ebusy(
    xe_backend: Backend, xe_file: int, pipes: Pipes, first: int, second: int, second_end: str
) -> None:
    r, w = pipes.new()
    assert subscribe(xe_backend, xe_file, r, first) == 0
    assert errno_of(subscribe, xe_backend, xe_file, r if second_end == "read" else w, second) == errno.EBUSY


def test_several_pipes_per_file_and_files_per_pipe(
    xe_backend: Backend, xe_file: int, pipes: Pipes, open_file: Callable[[], int]
) -> None:
    r1, _ = pipes.new()
    r2, _ = pipes.new()
    assert subscribe(xe_backend, xe_file, r1, 1) == 0
    assert subscribe(xe_backend, xe_file, r2, 1) == 0
    other = open_file()
    assert subscribe(xe_backend, other, r1, 1) == 0
    assert subscribe(xe_backend, other, r2, 2) == 0


def test_filter_after_subscribing(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    r, _ = pipes.new()
    assert subscribe(xe_backend, xe_file, r) == 0
    flt = bytearray(struct.pack("<II", 1, 0) + struct.pack("<III8I", 2, 0, 0, 1, *[0] * 7))
    assert xe_backend.ioctl(r, SET_FILTER, flt) == 0


# --- lifetime: REMOVAL on file destroy (§6.3), watch_queue_clear (§1.9) ---------------------------------------------
def test_closing_the_file_sends_an_8_byte_removal(
    xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]
) -> None:
    drm = open_file()
    r, _ = pipes.new()
    assert subscribe(xe_backend, drm, r, 7) == 0
    assert errno_of(xe_backend.read, r, 64) == errno.EAGAIN
    xe_backend.close(drm)
    assert wait_readable(r) == POLLIN | POLLRDNORM
    assert xe_backend.read(r, 64) == removal(7) == bytes.fromhex("0000000008070000")
    assert errno_of(xe_backend.read, r, 64) == errno.EAGAIN


def test_removal_to_every_watch_of_the_file(xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]) -> None:
    drm = open_file()
    r1, _ = pipes.new()
    r2, _ = pipes.new()
    assert subscribe(xe_backend, drm, r1, 1) == 0
    assert subscribe(xe_backend, drm, r2, 2) == 0
    xe_backend.close(drm)
    for r, wid in ((r1, 1), (r2, 2)):
        assert wait_readable(r) == POLLIN | POLLRDNORM
        assert xe_backend.read(r, 64) == removal(wid)


def test_removal_per_file_on_a_shared_pipe(xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]) -> None:
    a, b = open_file(), open_file()
    r, _ = pipes.new()
    assert subscribe(xe_backend, a, r, 1) == 0
    assert subscribe(xe_backend, b, r, 2) == 0
    xe_backend.close(b)
    assert wait_readable(r)
    assert xe_backend.read(r, 64) == removal(2)
    xe_backend.close(a)
    assert wait_readable(r)
    assert xe_backend.read(r, 64) == removal(1)


def test_removal_bypasses_a_reject_all_filter(xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]) -> None:
    drm = open_file()
    r, _ = pipes.new()
    reject_all = bytearray(struct.pack("<II", 1, 0) + struct.pack("<III8I", 99, 0, 0, 0xFFFFFFFF, *[0] * 7))
    assert xe_backend.ioctl(r, SET_FILTER, reject_all) == 0
    assert subscribe(xe_backend, drm, r, 4) == 0
    xe_backend.close(drm)
    assert wait_readable(r)
    assert xe_backend.read(r, 64) == removal(4)


def test_igt_pattern_write_end_closed_then_removal_then_eof(
    xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]
) -> None:
    # S3: subscribe with the write end, close it; the queue lives on with the read end (§1.7, §1.11).
    drm = open_file()
    r, w = pipes.new(size=1)
    assert subscribe(xe_backend, drm, w, 0) == 0
    pipes.close(w)
    poller = select.poll()
    poller.register(r, POLLIN | POLLRDNORM)
    assert poller.poll(0) == [(r, POLLHUP)]
    xe_backend.close(drm)
    assert wait_readable(r) == POLLIN | POLLRDNORM | POLLHUP
    assert xe_backend.read(r, 512) == removal(0)
    assert poller.poll(0) == [(r, POLLHUP)]
    assert xe_backend.read(r, 512) == b""


def test_removal_before_set_size_is_dropped(xe_backend: Backend, pipes: Pipes, open_file: Callable[[], int]) -> None:
    # xe_file_destroy may run some time after close(): a sized witness pipe on the same file says
    # when it has run, instead of a fixed wait after which a late REMOVAL could still arrive.  The
    # witness subscribes first, so once it has its REMOVAL the unsized pipe's was already posted
    # and dropped (remove_watch_list takes the newest watch first).
    drm = open_file()
    witness, _ = pipes.new()
    r, _ = pipes.new(size=None)
    assert subscribe(xe_backend, drm, witness, 2) == 0
    assert subscribe(xe_backend, drm, r, 1) == 0
    xe_backend.close(drm)
    assert wait_readable(witness) == POLLIN | POLLRDNORM
    assert xe_backend.read(witness, 64) == removal(2)
    assert wait_readable(r, 0) == 0
    assert xe_backend.ioctl(r, SET_SIZE, 1) == 0
    assert errno_of(xe_backend.read, r, 64) == errno.EAGAIN  # neither the record nor a LOSS


def test_closed_pipe_detaches_its_watch(xe_backend: Backend, xe_file: int, pipes: Pipes) -> None:
    r, w = pipes.new()
    assert subscribe(xe_backend, xe_file, r, 1) == 0
    pipes.close(r)
    pipes.close(w)
    r2, _ = pipes.new()  # very likely the same descriptor numbers: a new queue all the same
    assert subscribe(xe_backend, xe_file, r2, 1) == 0
