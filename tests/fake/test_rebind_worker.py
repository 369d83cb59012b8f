"""preempt_rebind_work_func (spec 6.1) and the answers of a banned / paused VM (5.3, 5.4, 6.2)."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from conformance import rawabi as abi
from conformance.rawabi import RawClient

from xeclient.backends.fake import FakeBackend, xe_vm

O_NOTIFICATION_PIPE = 0x80


def client(backend: FakeBackend) -> RawClient:
    return RawClient(backend, backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC))


def watch(backend: FakeBackend, c: RawClient) -> int:
    """A sized notification pipe subscribed to ``c``'s DRM file; returns the read end."""
    rfd, wfd = backend.pipe2(O_NOTIFICATION_PIPE | os.O_NONBLOCK | os.O_CLOEXEC)
    backend.ioctl(rfd, 0x00005760, 32)
    assert c.call(abi.WATCH_QUEUE, abi.watch_queue(rfd, watch_id=3)) == 0
    backend.close(wfd)
    return rfd


def drain(backend: FakeBackend, rfd: int) -> bytes:
    try:
        return backend.read(rfd, 4096)
    except OSError as exc:
        assert exc.errno == errno.EAGAIN
        return b""


def busy_vm(c: RawClient, flags: int) -> tuple[int, int]:
    vm = c.vm(flags)
    q = c.queue(vm)
    assert c.exec(q) == 0
    return vm, q


def kick(b: FakeBackend, c: RawClient, vm: int) -> None:
    """Fake-only: an eviction hits ``vm``; wait for its worker."""
    b.evict(c.fd, vm)
    assert b.settle(5.0)


def test_idle_vm_deactivates_quietly_and_restart_is_zero(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
    c.queue(vm)  # a queue without a job is idle
    kick(fake_backend, c, vm)
    assert fake_backend.device.vm_state(c.fd, vm) == "deactivated"
    assert drain(fake_backend, rfd) == b""
    assert c.restart(vm) == 0  # spec 6.2: 0 also for an idle-deactivated VM
    assert fake_backend.settle(5.0)
    assert c.restart(vm) == 0  # still idle: deactivated again by the worker


def test_success_resumes_without_event(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm, q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    fake_backend.evict(c.fd, vm)
    assert fake_backend.device.exec_queue_state(c.fd, q) in ("suspended", "running")
    assert fake_backend.settle(5.0)
    assert fake_backend.device.exec_queue_state(c.fd, q) == "running"
    assert drain(fake_backend, rfd) == b""
    assert c.restart(vm) == errno.EALREADY


def test_enospc_restartable_pauses_and_posts(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm, q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    fake_backend.inject("rebind_enospc", probability=100, times=1)
    kick(fake_backend, c, vm)
    rec = drain(fake_backend, rfd)
    assert len(rec) == 24
    assert struct.unpack_from("<IIIi", rec) == (2, 24 | 3 << 8, vm, -errno.ENOSPC)
    assert fake_backend.device.vm_state(c.fd, vm) == "deactivated"
    assert fake_backend.device.exec_queue_state(c.fd, q) == "suspended"
    # paused, not banned: binds and queue creation still work
    assert (
        c.call(
            abi.VM_BIND, abi.vm_bind(vm, abi.vm_bind_op(op=abi.OP_MAP, flags=abi.F_NULL, range=abi.PAGE, addr=0x100000))
        )
        == 0
    )
    assert c.restart(vm, timestamp_ns=struct.unpack_from("<Q", rec, 16)[0]) == 0  # row 10
    assert fake_backend.settle(5.0)
    assert fake_backend.device.exec_queue_state(c.fd, q) == "running"
    assert c.restart(vm) == errno.EALREADY
    assert drain(fake_backend, rfd) == b""


def test_exec_reactivates_a_paused_vm(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm, q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    fake_backend.inject("rebind_enospc", probability=100, times=2)
    kick(fake_backend, c, vm)
    assert len(drain(fake_backend, rfd)) == 24
    assert c.exec(q) == 0  # xe_vm_reactivate_rebind: the worker runs again, fails again
    assert fake_backend.settle(5.0)
    assert len(drain(fake_backend, rfd)) == 24
    assert c.exec(q) == 0  # injection exhausted: this time it rebinds
    assert fake_backend.settle(5.0)
    assert fake_backend.device.vm_state(c.fd, vm) == "active"
    assert c.restart(vm) == errno.EALREADY


def test_enospc_not_restartable_is_killed(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm, q = busy_vm(c, abi.LR_MODE)
    fake_backend.inject("rebind_enospc", probability=100, times=1)
    kick(fake_backend, c, vm)
    rec = drain(fake_backend, rfd)
    assert struct.unpack_from("<Ii", rec, 8) == (vm, -errno.ENOSPC)
    assert fake_backend.device.vm_state(c.fd, vm) == "banned"
    assert_banned_answers(c, vm, q, restartable=False)


@pytest.fixture
def fatal_rebind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake-only: the re-validation fails with -ETIME (a preempt-fence timeout)."""
    monkeypatch.setattr(xe_vm, "xe_vm_validate_rebind", lambda vm: -errno.ETIME)


def test_fatal_error_kills_restartable_vm_and_posts(fake_backend, fatal_rebind):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm, q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    kick(fake_backend, c, vm)
    rec = drain(fake_backend, rfd)
    assert struct.unpack_from("<Ii", rec, 8) == (vm, -errno.ETIME)  # the event goes out for fatal errors too
    assert_banned_answers(c, vm, q, restartable=True)


def assert_banned_answers(c: RawClient, vm: int, q: int, restartable: bool) -> None:
    bind = abi.vm_bind(vm, abi.vm_bind_op(op=abi.OP_MAP, flags=abi.F_NULL, range=abi.PAGE, addr=0x100000))
    assert c.call(abi.VM_BIND, bind) == errno.ENOENT  # 5.3 step 9
    inst = abi.UserMem(abi.eci(abi.COMPUTE))
    assert c.call(abi.EXEC_QUEUE_CREATE, abi.exec_queue_create(vm, inst.addr)) == errno.ENOENT  # 5.4 step 6
    bind_inst = abi.UserMem(abi.eci(abi.VM_BIND_CLASS))
    assert c.call(abi.EXEC_QUEUE_CREATE, abi.exec_queue_create(vm, bind_inst.addr)) == errno.ENOENT  # 5.4 step 5
    assert c.exec(q) == errno.ECANCELED  # 6.1
    assert c.restart(vm) == (errno.ENOENT if restartable else errno.EINVAL)  # 6.2 row 6 (row 4 first)
    prop = bytearray(struct.pack("<QIIQQQ", 0, q, 0, 0, 0, 0))
    assert c.call(abi.EXEC_QUEUE_GET_PROPERTY, prop) == 0 and struct.unpack_from("<Q", prop, 16)[0] == 1
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == errno.EBUSY  # killed queues still count (5.2)
    assert c.destroy_queue(q) == 0
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0  # a banned VM can be destroyed


def test_closed_or_banned_vm_worker_returns_silently(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    vm_id, _q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    vm = fake_backend.device.lookup_vm(c.fd, vm_id)
    fake_backend.inject("rebind_enospc", probability=100, times=-1)
    vm.suspended = True
    for attr in ("banned", "closed"):
        setattr(vm, attr, True)
        xe_vm.preempt_rebind_work_func(vm)
        setattr(vm, attr, False)
    assert drain(fake_backend, rfd) == b""
    assert vm.rebind_errors == []
    assert fake_backend.device.faults["rebind_enospc"].fired == 0


def test_watches_of_other_files_get_nothing(fake_backend):
    a, other = client(fake_backend), client(fake_backend)
    rfd_other = watch(fake_backend, other)
    vm, _q = busy_vm(a, abi.LR_MODE | abi.RESTARTABLE)
    fake_backend.inject("rebind_enospc", probability=100, times=1)
    kick(fake_backend, a, vm)
    assert drain(fake_backend, rfd_other) == b""


def test_file_close_sends_removal(fake_backend):
    c = client(fake_backend)
    rfd = watch(fake_backend, c)
    fake_backend.close(c.fd)
    assert drain(fake_backend, rfd) == bytes.fromhex("00000000 08030000")


def test_listener_thread_blocked_on_pipe_does_not_deadlock_ioctls(fake_backend):
    """Lock discipline: a reader blocked in read() holds no lock the ioctls or the worker need."""
    import threading

    c = client(fake_backend)
    rfd, wfd = fake_backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC)  # blocking read end
    fake_backend.ioctl(rfd, 0x00005760, 32)
    assert c.call(abi.WATCH_QUEUE, abi.watch_queue(rfd, watch_id=1)) == 0
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fake_backend.read(rfd, 4096)), name="test-listener")
    reader.start()
    vm, _q = busy_vm(c, abi.LR_MODE | abi.RESTARTABLE)
    for _ in range(20):  # ioctls while the reader blocks
        assert c.call(abi.DRM_IOCTL_VERSION, abi.drm_version()) == 0
    fake_backend.inject("rebind_enospc", probability=100, times=1)
    kick(fake_backend, c, vm)
    reader.join(5.0)
    assert not reader.is_alive()
    assert len(got[0]) == 24
    fake_backend.close(wfd)
    fake_backend.close(rfd)
