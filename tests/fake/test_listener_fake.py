"""The listener on the fake driver: VM_ERR from the rebind worker, multiplexing, overflow, removal."""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from xeclient import Device, EngineClass, VmCreateFlag
from xeclient.backends.fake import FakeBackend
from xeclient.events import Event, Loss, Removal, VmError
from xeclient.listener import EndReason, Listener
from xeclient.vm import Vm
from xeclient.watch import Watch

LR_RESTARTABLE = VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE


def busy_vm(device: Device) -> Vm:
    """A restartable LR VM with a job in flight, so its rebind worker re-validates (and can fail)."""
    vm = device.create_vm(LR_RESTARTABLE)
    bo = device.create_bo(4 << 20, placement="vram")
    vm.bind(bo, addr=0x100000)
    device.create_exec_queue(vm, EngineClass.COMPUTE).exec(address=0x100000)
    return vm


def vm_error(backend: FakeBackend, vm: Vm) -> None:
    """Make the fake's rebind worker post one VM_ERR(-ENOSPC) for ``vm``."""
    backend.inject("rebind_enospc", probability=100, times=1)
    backend.evict(vm.device.fd, vm.id)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cond = threading.Condition()

    def __call__(self, ev: Event) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout)

    def of(self, cls: type[Event]) -> list[Event]:
        with self.cond:
            return [e for e in self.events if isinstance(e, cls)]


@pytest.fixture
def second_client(fake_backend: FakeBackend) -> Iterator[Device]:
    with Device.open(backend=fake_backend) as device:
        yield device


def test_vm_error_from_the_rebind_worker(fake_backend: FakeBackend, fake_client: Device) -> None:
    vm = busy_vm(fake_client)
    got = Recorder()
    with Listener(fake_client, got, watch_id=7) as listener:
        t0 = time.monotonic_ns()
        vm_error(fake_backend, vm)
        assert got.wait(lambda evs: len(evs) == 1)
        [ev] = got.events
        assert isinstance(ev, VmError)
        assert (ev.vm_id, ev.errno, ev.watch_id) == (vm.id, errno.ENOSPC, 7)
        assert t0 <= ev.timestamp_ns <= time.monotonic_ns()
        vm.restart(timestamp_ns=ev.timestamp_ns)  # the handler-side contract: the VM was paused
        assert listener.stats().by_type == {"vm_error": 1}


def test_multiplexed_watch_ids_on_one_pipe(
    fake_backend: FakeBackend, fake_client: Device, second_client: Device
) -> None:
    vm1, vm2 = busy_vm(fake_client), busy_vm(second_client)
    with Watch(fake_backend) as watch:
        watch.subscribe(fake_client, watch_id=1)
        watch.subscribe(second_client, watch_id=2)
        everything, only2 = Recorder(), Recorder()
        listener = Listener(watch, everything)
        listener.add_handler(only2, VmError, watch_id=2)
        with listener:
            vm_error(fake_backend, vm1)
            assert everything.wait(lambda evs: len(evs) == 1)
            vm_error(fake_backend, vm2)
            assert everything.wait(lambda evs: len(evs) == 2)
            assert [(e.watch_id, e.vm_id) for e in everything.events] == [(1, vm1.id), (2, vm2.id)]  # type: ignore[attr-defined]
            assert [e.watch_id for e in only2.events] == [2]
            fake_client.close()  # one subscription removed: the listener goes on
            assert everything.wait(lambda evs: Removal(1) in evs)
            assert listener.running and not watch.removed
            second_client.close()  # the last one: the listener ends by itself
            assert listener.join(timeout=5)
            assert listener.ended_reason == EndReason.REMOVED
            assert everything.events[-1] == Removal(2)


def test_two_listeners_on_one_device_both_receive(fake_backend: FakeBackend, fake_client: Device) -> None:
    vm = busy_vm(fake_client)
    a, b = Recorder(), Recorder()
    with Listener(fake_client, a, watch_id=1), Listener(fake_client, b, watch_id=2):
        vm_error(fake_backend, vm)
        assert a.wait(lambda evs: len(evs) == 1) and b.wait(lambda evs: len(evs) == 1)
    assert a.events[0].watch_id == 1 and b.events[0].watch_id == 2
    assert a.events[0].vm_id == b.events[0].vm_id == vm.id  # type: ignore[attr-defined]


def _vm_err_payload(vm_id: int) -> bytes:
    return struct.pack("<IiQ", vm_id, -errno.ENOSPC, time.monotonic_ns())


def test_overflow_gives_exactly_one_loss_per_drop_run(fake_backend: FakeBackend) -> None:
    """32 notes, 40 posted while nobody reads: 32 records then one Loss -- seen at once even
    though a pending LOSS does not make the pipe readable (the drain goes on until EAGAIN)."""
    source = fake_backend.watch_source(0)
    got = Recorder()
    with Watch(fake_backend, nr_notes=32) as watch:
        source.add_watch(watch.read_fd, 3)
        listener = Listener(watch, got)
        for i in range(40):
            source.post(2, 0, _vm_err_payload(i))
        listener.start()
        assert got.wait(lambda evs: len(evs) == 33, timeout=2)
        assert [e.vm_id for e in got.events[:32]] == list(range(32))  # type: ignore[attr-defined]
        assert got.events[32] == Loss()
        listener.stop()
        for i in range(100, 140):  # a second drop run while stopped
            source.post(2, 0, _vm_err_payload(i))
        listener.start()
        assert got.wait(lambda evs: len(evs) == 66, timeout=2)
        time.sleep(0.05)
        listener.destroy()
        assert len(got.events) == 66 and got.events[65] == Loss()
        assert got.of(Loss) == [Loss(), Loss()]
        stats = listener.stats()
        assert stats.received == 66 and stats.dropped == 2
        assert stats.by_type == {"vm_error": 64, "loss": 2}
    source.destroy()


def test_no_loss_while_a_slow_handler_runs(fake_backend: FakeBackend) -> None:
    """The reader keeps draining a 32-note pipe while the only handler is blocked."""
    source = fake_backend.watch_source(0)
    release = threading.Event()
    got = Recorder()

    def slow(ev: Event) -> None:
        release.wait(5)
        got(ev)

    with Watch(fake_backend, nr_notes=32) as watch:
        source.add_watch(watch.read_fd, 0)
        with Listener(watch, slow) as listener:
            for i in range(200):
                source.post(2, 0, _vm_err_payload(i))
                if i % 16 == 15 or i == 199:  # let the reader catch up (16 < 32 notes)
                    deadline = time.monotonic() + 2
                    while listener.stats().received < i + 1 and time.monotonic() < deadline:
                        time.sleep(0.001)
            assert listener.stats().received == 200
            assert listener.stats().dispatched == 1  # the handler is still blocked on the first
            release.set()
            assert got.wait(lambda evs: len(evs) == 200)
        assert listener.stats().dropped == 0
    source.destroy()


def test_removal_on_device_close_ends_the_listener(fake_backend: FakeBackend) -> None:
    device = Device.open(backend=fake_backend)
    got = Recorder()
    listener = Listener.create(device, got, watch_id=5)
    fds = set(os.listdir("/proc/self/fd"))
    try:
        device.close()
        assert listener.join(timeout=5)
        assert listener.ended_reason == EndReason.REMOVED
        assert str(listener.ended_reason) == "removed" and listener.ended_reason == "removed"  # type: ignore[comparison-overlap]
        assert got.events == [Removal(5)]
        assert listener.stats().by_type == {"removal": 1}
    finally:
        listener.destroy()
    assert listener.watch is not None and listener.watch.closed
    assert len(set(os.listdir("/proc/self/fd")) - fds) == 0
    with pytest.raises(ValueError, match="closed"):
        listener.start()  # the device is gone: no new subscription


def test_stop_latency_with_the_reader_blocked(fake_client: Device) -> None:
    listener = Listener(fake_client, lambda ev: None)
    durations = []
    for _ in range(5):
        listener.start()
        time.sleep(0.02)
        t0 = time.perf_counter()
        listener.stop()
        durations.append(time.perf_counter() - t0)
    listener.destroy()
    assert min(durations) < 0.010, durations


def test_1000_start_stop_cycles_leak_nothing(fake_backend: FakeBackend, fake_client: Device) -> None:
    vm = busy_vm(fake_client)
    got = Recorder()
    listener = Listener(fake_client, got)
    listener.start()
    vm_error(fake_backend, vm)  # warm-up: the fake starts its worker thread on first use
    assert got.wait(lambda evs: len(evs) == 1)
    vm.restart()
    listener.stop()
    threads, fds = threading.active_count(), set(os.listdir("/proc/self/fd"))
    t0 = time.monotonic()
    for i in range(1000):
        listener.start()
        if i % 250 == 0:
            vm_error(fake_backend, vm)
            assert got.wait(lambda evs, n=i // 250 + 2: len(evs) == n)  # type: ignore[misc]
            vm.restart()
        listener.stop()
    assert time.monotonic() - t0 < 30
    assert threading.active_count() == threads
    assert set(os.listdir("/proc/self/fd")) == fds
    listener.destroy()
    assert len(got.events) == 5


def test_restart_handler_loop(fake_backend: FakeBackend, fake_client: Device) -> None:
    """The recovery shape: every VM_ERR is answered with VM_RESTART from the handler."""
    vm = busy_vm(fake_client)
    got = Recorder()
    listener = Listener(fake_client)

    @listener.on(VmError)
    def restart(ev: VmError) -> None:
        got(ev)
        fake_client.vms[ev.vm_id].restart(timestamp_ns=ev.timestamp_ns)

    with listener:
        fake_backend.inject("rebind_enospc", probability=100, times=3)
        fake_backend.evict(fake_client.fd, vm.id)
        assert got.wait(lambda evs: len(evs) == 3)
    assert listener.stats().errors == 0


def test_aevents_on_the_fake(fake_backend: FakeBackend, fake_client: Device) -> None:
    import asyncio

    vm = busy_vm(fake_client)

    async def main() -> list[Event]:
        loop = asyncio.get_running_loop()
        with fake_client.watch(watch_id=4) as watch:
            loop.call_later(0.02, vm_error, fake_backend, vm)
            out = []
            async for ev in watch.aevents(timeout=2):
                out.append(ev)
                break
            return out

    [ev] = asyncio.run(main())
    assert isinstance(ev, VmError) and ev.watch_id == 4 and ev.vm_id == vm.id
