"""Backends share nothing; shutdown() leaves no thread; the workqueue's semantics."""

from __future__ import annotations

import os
import threading

from conformance import rawabi as abi
from conformance.rawabi import RawClient

from xeclient.backends.fake import FakeBackend
from xeclient.backends.fake.workqueue import Work, Workqueue


def client(backend: FakeBackend) -> RawClient:
    return RawClient(backend, backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC))


def test_two_backends_share_nothing():
    with FakeBackend(vram=32 << 20) as a, FakeBackend(vram=32 << 20) as b:
        ca, cb = client(a), client(b)
        assert ca.vm() == 1 and cb.vm() == 1
        h = ca.bo(16 << 20, 2, abi.WC)
        assert ca.bind(1, h, 0x100000, 16 << 20) == 0
        assert a.device.vram_used() == 16 << 20
        assert b.device.vram_used() == 0
        assert cb.mem_regions()[1]["used"] == 0
        a.inject("rebind_enospc", probability=100, times=5)
        assert b.device.faults["rebind_enospc"].probability == 0


def test_no_thread_after_shutdown():
    b = FakeBackend()
    c = client(b)
    vm = c.vm(abi.LR_MODE)
    b.evict(c.fd, vm)  # starts the worker thread
    assert b.settle(5.0)
    assert b.device.wq.thread is not None and b.device.wq.thread.is_alive()
    worker = b.device.wq.thread
    b.shutdown()
    assert not worker.is_alive()
    # Only this backend's worker: the session backend's own worker may legitimately run.
    assert worker not in threading.enumerate()


def test_worker_started_lazily():
    with FakeBackend() as b:
        client(b).vm()
        assert b.device.wq.thread is None


def test_workqueue_pending_not_queued_twice():
    wq = Workqueue("t-wq")
    gate, ran = threading.Event(), []
    blocker = Work(lambda: gate.wait(5), "blocker")
    w = Work(lambda: ran.append(1), "w")
    try:
        assert wq.queue_work(blocker)
        assert wq.queue_work(w)
        assert not wq.queue_work(w)  # already pending
        assert not wq.settle(0.05)
        gate.set()
        assert wq.settle(5.0)
        assert ran == [1]
    finally:
        wq.shutdown()
    assert not wq.queue_work(w)  # after shutdown


def test_close_releases_everything(fake_backend):
    c = client(fake_backend)
    vm = c.vm(abi.LR_MODE)
    h = c.bo(1 << 20, 2, abi.WC)
    assert c.bind(vm, h, 0x100000, 1 << 20) == 0
    q = c.queue(vm)
    assert c.exec(q) == 0
    assert fake_backend.device.vram_used() == 1 << 20
    fake_backend.close(c.fd)
    assert fake_backend.device.vram_used() == 0
    assert not fake_backend.device.files
