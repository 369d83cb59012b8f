"""xe_watch_queue.py: the WATCH_QUEUE handler and VM_ERR posting, called as the driver model calls them.

Spec §6.3 (errno table, one watch per (file, pipe), REMOVAL on file destroy)
and §1.2 (the 24-byte VM_ERR record).  ``xef`` is anything with ``backend`` and
``watch_list``; the last tests use the DRM-file model behind a real fake DRM
descriptor.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from xeclient.backends.fake import FakeBackend
from xeclient.backends.fake.watch_queue import WatchList, remove_watch_from_object
from xeclient.backends.fake.xe_watch_queue import (
    pack_vm_err_record,
    xe_watch_queue_ioctl,
    xe_watch_queue_post_vm_err_event,
)
from xeclient.uapi import ffi

O_NOTIFICATION_PIPE = 0x80
SET_SIZE, SET_FILTER = 0x5760, 0x5761
DRM_IOCTL_XE_WATCH_QUEUE = 0x40106451
ENOSPC = 28


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBackend]:
    backend = FakeBackend()
    yield backend
    backend.shutdown()


@pytest.fixture
def pipes(fake: FakeBackend) -> Iterator[Callable[..., tuple[int, int]]]:
    made: list[int] = []

    def make(size: int | None = 32) -> tuple[int, int]:
        r, w = fake.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
        made.extend((r, w))
        if size is not None:
            fake.ioctl(r, SET_SIZE, size)
        return r, w

    yield make
    for fd in made:
        if fake.lookup(fd) is not None:
            fake.close(fd)


@pytest.fixture
def xef(fake: FakeBackend) -> SimpleNamespace:
    return SimpleNamespace(backend=fake, watch_list=WatchList())


def args(fd: int, watch_id: int = 0, flags: int = 0, pad: int = 0) -> Any:
    return ffi.new(
        "struct drm_xe_watch_queue *", {"fd": fd & 0xFFFFFFFF, "watch_id": watch_id, "flags": flags, "pad": pad}
    )


def vm_err(watch_id: int, vm_id: int, err: int, ts: int) -> bytes:
    return struct.pack("<IIIiQ", 2, watch_id << 8 | 24, vm_id, err, ts)


def read_errno(fake: FakeBackend, fd: int) -> int:
    with pytest.raises(OSError) as info:
        fake.read(fd, 4096)
    return int(info.value.errno or 0)


# --- §6.3 table ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "pad", "watch_id"), [(1, 0, 0), (0, 1, 0), (0, 0, 0x100), (1, 0, 0x100), (0, 0, 0xFFFFFFFF)]
)
def test_flags_pad_watch_id_einval(
    fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any, flags: int, pad: int, watch_id: int
) -> None:
    r, _ = pipes()
    assert xe_watch_queue_ioctl(xef, args(r, watch_id, flags, pad)) == -errno.EINVAL
    assert len(xef.watch_list) == 0


def test_checks_come_before_the_fd_lookup(xef: Any) -> None:
    assert xe_watch_queue_ioctl(xef, args(-1, 0x100)) == -errno.EINVAL
    assert xe_watch_queue_ioctl(xef, args(-1)) == -errno.EINVAL  # u32 0xffffffff is fd -1


def test_bad_fds_einval(fake: FakeBackend, xef: Any) -> None:
    r, w = fake.pipe2(os.O_CLOEXEC)
    try:
        for fd in (r, w, 0x7FFFFFFF, 0x80000000):
            assert xe_watch_queue_ioctl(xef, args(fd)) == -errno.EINVAL
    finally:
        fake.close(r)
        fake.close(w)


def test_subscribe_and_ebusy_per_pipe(pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r, w = pipes()
    r2, _ = pipes()
    assert xe_watch_queue_ioctl(xef, args(w, 0xFF)) == 0
    assert xe_watch_queue_ioctl(xef, args(r, 1)) == -errno.EBUSY
    assert xe_watch_queue_ioctl(xef, args(r2, 1)) == 0
    assert [w.id for w in xef.watch_list] == [0, 0]  # every xe watch has id 0
    assert sorted(w.info_id for w in xef.watch_list) == [0x100, 0xFF00]


# --- VM_ERR (§1.2, §6.1) --------------------------------------------------------------------------------------------------
def test_vm_err_record_bytes() -> None:
    assert pack_vm_err_record(1, -ENOSPC, 0x0102030405060708) == vm_err(0, 1, -ENOSPC, 0x0102030405060708)
    # §1.2's example, with watch_id 5 filled in at delivery:
    assert vm_err(5, 1, -ENOSPC, 0x0102030405060708) == bytes.fromhex(
        "020000001805000001000000e4ffffff0807060504030201"
    )


def test_vm_err_to_every_watch_with_its_id(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r1, _ = pipes()
    r2, w2 = pipes()
    assert xe_watch_queue_ioctl(xef, args(r1, 5)) == 0
    assert xe_watch_queue_ioctl(xef, args(w2, 6)) == 0
    before = time.monotonic_ns()
    xe_watch_queue_post_vm_err_event(xef, 0xFFFFFFFF, -ENOSPC)
    after = time.monotonic_ns()
    for r, wid in ((r1, 5), (r2, 6)):
        data = fake.read(r, 4096)
        assert len(data) == 24
        ts = struct.unpack_from("<Q", data, 16)[0]
        assert before <= ts <= after
        assert data == vm_err(wid, 0xFFFFFFFF, -ENOSPC, ts)


def test_vm_err_only_to_this_files_watches(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    other = SimpleNamespace(backend=fake, watch_list=WatchList())
    r, _ = pipes()
    assert xe_watch_queue_ioctl(other, args(r, 1)) == 0
    xe_watch_queue_post_vm_err_event(xef, 1, -12)
    assert read_errno(fake, r) == errno.EAGAIN


def test_vm_err_filters(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r, _ = pipes()
    assert xe_watch_queue_ioctl(xef, args(r, 1)) == 0
    only_keys = struct.pack("<II", 1, 0) + struct.pack("<III8I", 1, 0, 0, 0xFFFFFFFF, *[0] * 7)
    fake.ioctl(r, SET_FILTER, bytearray(only_keys))
    xe_watch_queue_post_vm_err_event(xef, 1, -12)
    assert read_errno(fake, r) == errno.EAGAIN
    igt = struct.pack("<II", 2, 0) + struct.pack("<III8I", 2, 0, 0, 0xFFFFFFFF, *[0] * 7)
    igt += struct.pack("<III8I", 0, 0, 0, 0xFFFFFFFF, *[0] * 7)  # S3's META entry: harmless
    fake.ioctl(r, SET_FILTER, bytearray(igt))
    xe_watch_queue_post_vm_err_event(xef, 2, -12)
    assert struct.unpack_from("<I", fake.read(r, 4096), 8)[0] == 2


def test_vm_err_before_set_size_is_lost_silently(
    fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any
) -> None:
    r, _ = pipes(size=None)
    assert xe_watch_queue_ioctl(xef, args(r)) == 0
    xe_watch_queue_post_vm_err_event(xef, 1, -ENOSPC)
    fake.ioctl(r, SET_SIZE, 1)
    assert read_errno(fake, r) == errno.EAGAIN


def test_igt_pattern_write_end_closed(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r, w = pipes(size=1)
    assert xe_watch_queue_ioctl(xef, args(w, 0)) == 0
    fake.close(w)
    xe_watch_queue_post_vm_err_event(xef, 3, -ENOSPC)
    assert struct.unpack_from("<Ii", fake.read(r, 512), 8) == (3, -ENOSPC)
    assert remove_watch_from_object(xef.watch_list, None, 0, True) == 0  # xe_file_destroy
    assert fake.read(r, 512) == bytes.fromhex("0000000008000000")
    assert fake.read(r, 512) == b""


def test_file_destroy_removal_then_nothing(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r1, _ = pipes()
    r2, _ = pipes()
    xe_watch_queue_ioctl(xef, args(r1, 1))
    xe_watch_queue_ioctl(xef, args(r2, 2))
    assert remove_watch_from_object(xef.watch_list, None, 0, True) == 0
    assert fake.read(r1, 64) == bytes.fromhex("0000000008010000")
    assert fake.read(r2, 64) == bytes.fromhex("0000000008020000")
    assert remove_watch_from_object(xef.watch_list, None, 0, True) == -errno.EBADSLT
    xe_watch_queue_post_vm_err_event(xef, 1, -12)
    assert read_errno(fake, r1) == errno.EAGAIN


def test_pipe_closed_watch_detached_from_file(fake: FakeBackend, xef: Any) -> None:
    r, w = fake.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC)
    assert xe_watch_queue_ioctl(xef, args(r)) == 0
    fake.close(r)
    fake.close(w)
    assert len(xef.watch_list) == 0
    xe_watch_queue_post_vm_err_event(xef, 1, -12)  # nowhere to go, no error


def test_posting_from_a_worker_thread(fake: FakeBackend, pipes: Callable[..., tuple[int, int]], xef: Any) -> None:
    r, _ = pipes(size=512)
    assert xe_watch_queue_ioctl(xef, args(r, 1)) == 0

    def post_many(vm_id: int) -> None:
        for _ in range(50):
            xe_watch_queue_post_vm_err_event(xef, vm_id, -ENOSPC)

    threads = [threading.Thread(target=post_many, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    data = fake.read(r, 65536)
    assert len(data) == 200 * 24
    vm_ids = [struct.unpack_from("<I", data, off + 8)[0] for off in range(0, len(data), 24)]
    assert sorted(vm_ids) == sorted(list(range(4)) * 50)


# --- through the DRM-file model -----------------------------------------------------------------------------------------------
def test_through_the_drm_file(fake: FakeBackend, pipes: Callable[..., tuple[int, int]]) -> None:
    drm = fake.open(fake.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC)
    try:
        r, _ = pipes()
        arg = bytearray(struct.pack("<IIII", r, 9, 0, 0))
        assert fake.ioctl(drm, DRM_IOCTL_XE_WATCH_QUEUE, arg) == 0
        xe_file = fake.lookup(drm)
        xe_watch_queue_post_vm_err_event(xe_file, 4, -ENOSPC)  # type: ignore[arg-type]
        assert struct.unpack_from("<IIIi", fake.read(r, 64)) == (2, 9 << 8 | 24, 4, -ENOSPC)
    finally:
        fake.close(drm)
    assert fake.read(r, 64) == bytes.fromhex("0000000008090000")
