"""The end-to-end recovery story on the fake, through the seam.

A restartable LR VM with a job in flight; a second DRM file's allocation evicts one of
its BOs; the rebind worker cannot re-validate (it never evicts) and posts
VM_ERR(-ENOSPC), read from a notification pipe as the 24-byte record of spec 1.2;
the client unbinds enough, VM_RESTART answers 0, the job runs again, no further event.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import time

from conformance import rawabi as abi
from conformance.rawabi import RawClient

from xeclient.backends.fake import FakeBackend

MiB = 1 << 20
O_NOTIFICATION_PIPE = 0x80
WATCH_ID = 7


def client(backend: FakeBackend) -> RawClient:
    return RawClient(backend, backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC))


def queue_state(backend: FakeBackend, c: RawClient, q: int) -> str:
    """Fake-only: whether the LR job is running (on hardware: progress of its user fence)."""
    return backend.device.exec_queue_state(c.fd, q)


def test_recovery_story(fake_backend):
    b = fake_backend
    a = client(b)
    vram = a.vram_mask() & -a.vram_mask()
    assert a.mem_regions()[1]["total_size"] == 256 * MiB

    # the client: a notification pipe, sized and subscribed
    rfd, wfd = b.pipe2(O_NOTIFICATION_PIPE | os.O_NONBLOCK | os.O_CLOEXEC)
    b.ioctl(rfd, 0x00005760, 32)
    assert a.call(abi.WATCH_QUEUE, abi.watch_queue(wfd, watch_id=WATCH_ID)) == 0
    # the write end stays open: with it closed, poll() would report POLLHUP at once (spec 1.7)

    # a restartable LR VM, 128 + 64 MiB in VRAM, a job in flight
    vm = a.vm(abi.LR_MODE | abi.RESTARTABLE)
    big, keep = a.bo(128 * MiB, vram, abi.WC), a.bo(64 * MiB, vram, abi.WC)
    assert a.bind(vm, big, 0x10000000, 128 * MiB) == 0
    assert a.bind(vm, keep, 0x20000000, 64 * MiB) == 0
    q = a.queue(vm)
    assert a.exec(q) == 0
    assert queue_state(b, a, q) == "running"

    # a competing allocation from a second DRM file
    other = client(b)
    vm_b = other.vm()
    assert other.bind(vm_b, other.bo(128 * MiB, vram, abi.WC), 0x10000000, 128 * MiB) == 0

    # VM_ERR(-ENOSPC) arrives on the pipe
    before = time.monotonic_ns()
    assert select.select([rfd], [], [], 5.0)[0] == [rfd]
    rec = b.read(rfd, 4096)
    assert len(rec) == 24
    type_subtype, info, vm_id, error_code, ts = struct.unpack("<IIIiQ", rec)
    assert type_subtype == 2  # type DRM_XE_NOTIFY (2), subtype VM_ERR (0)
    assert info == 24 | WATCH_ID << 8
    assert (vm_id, error_code) == (vm, -errno.ENOSPC)
    assert 0 < ts <= time.monotonic_ns() and before - ts < 10**10
    assert queue_state(b, a, q) == "suspended"

    # unbind enough, then restart
    assert a.bind(vm, 0, 0x10000000, 128 * MiB, op=abi.OP_UNMAP) == 0
    assert a.restart(vm, timestamp_ns=ts) == 0
    assert b.settle(5.0)
    assert queue_state(b, a, q) == "running"
    assert a.restart(vm) == errno.EALREADY

    # no further event
    assert select.select([rfd], [], [], 0.05)[0] == []
    try:
        extra = b.read(rfd, 4096)
    except OSError as exc:
        assert exc.errno == errno.EAGAIN
    else:
        raise AssertionError(f"unexpected record(s): {extra.hex()}")
    b.close(wfd)
    b.close(rfd)
