"""The recovery supervisor on the fake driver: VM_ERR -> trim -> VM_RESTART, end to end.

Memory pressure comes from a second DRM file on the same fake device, whose
VM_BIND evicts the supervised VM's least recently validated BOs; the VM's rebind
worker then cannot re-validate them (it never evicts) and fails with -ENOSPC.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest

from xeclient import Device, EngineClass, VmCreateFlag, VmError
from xeclient.backends.fake import FakeBackend
from xeclient.events import Loss
from xeclient.exec_queue import ExecQueue
from xeclient.recovery import Incident, LargestFirst, RecoveryAgent, VmSupervisor, WorkingSet
from xeclient.vm import Binding, Vm

MiB = 1 << 20
LR_RESTARTABLE = VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE
BATCH = 0x100000
WS_BASE = 0x10000000
FAST = {"confirm_window": 0.05, "backoff_initial": 0.002, "backoff_max": 0.02}
#: for tests that expect a retry: a late VM_ERR (a loaded machine) must still count as "failed again"
PATIENT = {**FAST, "confirm_window": 0.4}


class Job:
    """A restartable LR VM of ``dev`` with a pinned batch, VRAM BOs and a job in flight."""

    def __init__(
        self, dev: Device, n: int = 8, size: int = 16 * MiB, *, flags: int = LR_RESTARTABLE, base: int = WS_BASE
    ) -> None:
        self.dev = dev
        self.vm: Vm = dev.create_vm(flags)
        self.ws = WorkingSet(self.vm)
        self.vm.bind(dev.create_bo(64 * 1024, placement="sysmem"), BATCH)
        self.bindings: list[Binding] = []
        self.size = size
        self.base = base
        for i in range(n):
            self.add(i)
        self.queue: ExecQueue = dev.create_exec_queue(self.vm, EngineClass.COMPUTE)
        self.queue.exec(BATCH)

    def add(self, i: int) -> Binding:
        binding = self.vm.bind(self.dev.create_bo(self.size), self.base + i * self.size)
        self.ws.mark(binding, droppable=True)
        self.bindings.append(binding)
        return binding

    @property
    def fake(self) -> FakeBackend:
        assert isinstance(self.dev.backend, FakeBackend)
        return self.dev.backend

    def vm_state(self) -> str:
        return str(self.fake.device.vm_state(self.dev.fd, self.vm.id))

    def job_state(self) -> str:
        return str(self.fake.device.exec_queue_state(self.dev.fd, self.queue.id))


@pytest.fixture
def dev(fake_backend: FakeBackend) -> Iterator[Device]:
    with Device.open(backend=fake_backend) as device:
        yield device


@pytest.fixture
def other(fake_backend: FakeBackend) -> Iterator[Device]:
    """A second DRM file on the same device: the memory-pressure client."""
    with Device.open(backend=fake_backend) as device:
        yield device


def squeeze(dev: Device, pressure: Device, evict_bytes: int) -> None:
    """Bind a VRAM BO from ``pressure`` that needs ``evict_bytes`` more than is free."""
    vm = pressure.create_vm()
    vm.bind(pressure.create_bo(dev.vram_free() + evict_bytes), 0x100000)


def test_a_recovered_incident(dev: Device, other: Device) -> None:
    job = Job(dev)
    recovered: list[Incident] = []
    with VmSupervisor(dev, watch_id=3, on_recovered=recovered.append, **FAST) as sup:  # type: ignore[arg-type]
        sup.manage(job.vm, job.ws)
        squeeze(dev, other, 16 * MiB)
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert recovered == [incident]
    assert incident.recovered and incident.vm_id == job.vm.id and incident.errno == errno.ENOSPC
    assert incident.watch_id == 3 and incident.device == dev.path
    assert len(incident.attempts) == 1 and incident.restarts == 1
    assert incident.trimmed_bytes == 16 * MiB
    assert incident.attempts[0].released == [(job.bindings[0].addr, 16 * MiB)]  # LRU: the first bound
    assert incident.latency_ns is not None and 0 < incident.latency_ns < 2_000_000_000
    assert [s.what for s in incident.timeline] == ["vm_err", "measure", "trim", "restart", "recovered"]
    assert job.bindings[0].addr not in job.vm.bindings and job.bindings[0].bo.closed  # type: ignore[union-attr]
    assert job.vm_state() == "active" and job.job_state() == "running"
    stats = sup.stats()
    assert stats["incidents"] == 1 and stats["recovered"] == 1 and stats["fatal"] == 0
    assert stats["trimmed_bytes"] == 16 * MiB and stats["latency_us"]["max"] is not None
    d = incident.as_dict()
    assert d["errno"] == "ENOSPC" and d["outcome"] == "recovered" and d["attempts"][0]["result"] == "queued"
    assert "recovered" in str(incident)


def test_recovery_alias_and_policy_choice(dev: Device, other: Device) -> None:
    assert RecoveryAgent is VmSupervisor
    job = Job(dev, n=4)
    big = job.vm.bind(dev.create_bo(48 * MiB), 0x40000000)
    job.ws.mark(big, droppable=True)
    with RecoveryAgent(dev, policy=LargestFirst(), **FAST) as sup:  # type: ignore[arg-type]
        sup.manage(job.vm, job.ws)
        squeeze(dev, other, 16 * MiB)
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.recovered
    assert incident.attempts[0].released == [(big.addr, 48 * MiB)]


def test_several_evicted_bos_need_more_attempts(dev: Device, other: Device) -> None:
    job = Job(dev)
    with VmSupervisor(dev, max_attempts=5, **PATIENT) as sup:  # type: ignore[arg-type]
        sup.manage(job.vm, job.ws)
        squeeze(dev, other, 48 * MiB)  # three of our BOs are evicted
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.recovered, incident.timeline
    assert len(incident.attempts) == 3  # 16 MiB, then 32 MiB in all, then 64 MiB in all
    assert incident.trimmed_bytes == 64 * MiB
    assert [s.what for s in incident.timeline].count("backoff") == 2
    assert job.job_state() == "running"


def test_a_vm_that_keeps_failing_ends_fatal(dev: Device) -> None:
    job = Job(dev)
    fatal: list[Incident] = []
    recovered: list[Incident] = []
    dev.backend.inject("rebind_enospc", probability=100, times=-1)  # type: ignore[attr-defined]
    try:
        with VmSupervisor(dev, max_attempts=3, on_fatal=fatal.append, on_recovered=recovered.append, **PATIENT) as sup:  # type: ignore[arg-type]
            sup.manage(job.vm, job.ws)
            dev.backend.evict(dev.fd, job.vm.id)  # type: ignore[attr-defined]
            assert sup.wait_closed(1, timeout=5)
            assert sup.wait_idle(timeout=2)
    finally:
        dev.backend.inject("rebind_enospc", probability=0, times=0)  # type: ignore[attr-defined]
    (incident,) = sup.incidents
    assert fatal == [incident] and recovered == []
    assert incident.fatal and incident.restarts == 3 and len(incident.attempts) == 3
    assert "3 restart attempt" in incident.reason
    # free VRAM covers the whole working set, so no attempt trimmed anything
    assert incident.trimmed_bytes == 0 and all(a.shortfall and a.shortfall.bytes == 0 for a in incident.attempts)
    assert job.vm_state() == "deactivated"  # given up: the VM stays paused


def test_a_non_restartable_vm_is_fatal_without_a_restart(
    dev: Device, other: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job(dev, flags=VmCreateFlag.LR_MODE)
    restarts: list[int] = []
    monkeypatch.setattr(job.vm, "restart", lambda timestamp_ns=0: restarts.append(timestamp_ns))
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        squeeze(dev, other, 16 * MiB)
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.fatal and not incident.restartable and "not RESTARTABLE" in incident.reason
    assert restarts == [] and incident.attempts == [] and incident.latency_ns is None
    assert job.vm_state() == "banned" and job.job_state() == "killed"
    assert len(job.vm.bindings) == 9  # nothing was trimmed


def test_a_fatal_errno_is_not_restarted(dev: Device) -> None:
    job = Job(dev, n=2)
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.handle(VmError(job.vm.id, errno.ETIME, 1, 0))
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.fatal and incident.errno == errno.ETIME and incident.attempts == []
    assert "ETIME" in incident.reason


def test_ealready_means_already_running(dev: Device) -> None:
    job = Job(dev, n=2)
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.handle(VmError(job.vm.id, errno.ENOSPC, 0, 0))  # the VM is running: not paused
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.recovered and incident.attempts[0].result == "already running"
    assert any("EALREADY" in s.detail for s in incident.timeline)
    assert job.job_state() == "running"


def test_an_exec_resumes_the_vm_before_the_supervisor_does(dev: Device, other: Device) -> None:
    job = Job(dev)
    squeeze(dev, other, 16 * MiB)
    assert job.fake.settle(5) and job.vm_state() == "deactivated"
    other.close()  # the pressure goes away ...
    job.queue.exec(BATCH)  # ... and an exec reactivates the VM (spec 6.1)
    assert job.fake.settle(5) and job.vm_state() == "active"
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.handle(VmError(job.vm.id, errno.ENOSPC, 0, 0))  # the late event
        assert sup.wait_closed(1, timeout=5)
    assert sup.incidents[0].recovered and sup.incidents[0].attempts[0].result == "already running"


def test_two_vms_failing_at_once_both_recover(dev: Device, other: Device) -> None:
    a = Job(dev, n=0)
    b = Job(dev, n=0, base=WS_BASE * 2)
    for i in range(6):  # interleaved, so LRU eviction takes one BO of each
        a.add(i)
        b.add(i)
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.manage(a.vm, a.ws)
        sup.manage(b.vm, b.ws)
        squeeze(dev, other, 32 * MiB)
        assert sup.wait_closed(2, timeout=5)
    assert sorted(i.vm_id for i in sup.incidents) == sorted([a.vm.id, b.vm.id])
    assert all(i.recovered for i in sup.incidents)
    assert a.job_state() == b.job_state() == "running"


def test_two_vms_failing_adopts_unmanaged_vms_of_its_file(dev: Device) -> None:
    a, b = Job(dev, n=2), Job(dev, n=2, base=WS_BASE * 2)
    dev.backend.inject("rebind_enospc", probability=100, times=2)  # type: ignore[attr-defined]
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        dev.backend.evict(dev.fd, a.vm.id)  # type: ignore[attr-defined]
        dev.backend.evict(dev.fd, b.vm.id)  # type: ignore[attr-defined]
        assert sup.wait_closed(2, timeout=5)
    assert sorted(i.vm_id for i in sup.incidents) == [a.vm.id, b.vm.id]
    assert all(i.recovered for i in sup.incidents)


def test_never_restarts_a_vm_of_another_drm_file(dev: Device, other: Device) -> None:
    mine = Job(dev, n=2)
    theirs = Job(other, n=2)
    assert mine.vm.id == theirs.vm.id  # ids are per file: they coincide
    dev.backend.inject("rebind_enospc", probability=100, times=1)  # type: ignore[attr-defined]
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        dev.backend.evict(other.fd, theirs.vm.id)  # type: ignore[attr-defined]
        assert theirs.fake.settle(5)
        assert not sup.wait_closed(1, timeout=0.3)
    assert sup.incidents == []
    assert theirs.vm_state() == "deactivated"  # still paused: nobody restarted it
    assert mine.vm_state() == "active"


def test_shared_pipe_events_of_another_watch_id_are_ignored(dev: Device, other: Device) -> None:
    from xeclient import Listener, Watch

    mine = Job(dev, n=2)
    theirs = Job(other, n=2)
    with Watch(dev.backend) as watch:
        watch.subscribe(dev, 1)
        watch.subscribe(other, 2)
        listener = Listener(watch)
        sup = VmSupervisor(dev, watch_id=1, listener=listener, **FAST)  # type: ignore[arg-type]
        with listener, sup:
            dev.backend.inject("rebind_enospc", probability=100, times=1)  # type: ignore[attr-defined]
            dev.backend.evict(other.fd, theirs.vm.id)  # type: ignore[attr-defined]
            assert theirs.fake.settle(5)
            assert not sup.wait_closed(1, timeout=0.3)
            assert sup.ignored["other_watch"] == 1 and sup.incidents == []
            assert theirs.vm_state() == "deactivated"
            dev.backend.inject("rebind_enospc", probability=100, times=1)  # type: ignore[attr-defined]
            dev.backend.evict(dev.fd, mine.vm.id)  # type: ignore[attr-defined]
            assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.recovered and incident.vm_id == mine.vm.id and incident.watch_id == 1
    assert theirs.vm_state() == "deactivated"


def test_manage_refuses_a_vm_of_another_file(dev: Device, other: Device) -> None:
    theirs = other.create_vm(LR_RESTARTABLE)
    sup = VmSupervisor(dev)
    with pytest.raises(ValueError, match="one supervisor per DRM file"):
        sup.manage(theirs)


def test_a_loss_sweeps_paused_vms(dev: Device) -> None:
    job = Job(dev, n=2)
    dev.backend.inject("rebind_enospc", probability=100, times=1)  # type: ignore[attr-defined]
    dev.backend.evict(dev.fd, job.vm.id)  # type: ignore[attr-defined]
    assert job.fake.settle(5) and job.vm_state() == "deactivated"  # its VM_ERR went nowhere
    idle = Job(dev, n=1, base=WS_BASE * 2)
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.manage(job.vm, job.ws)
        sup.handle(Loss())
        assert sup.wait_closed(1, timeout=5)
    (incident,) = sup.incidents
    assert incident.recovered and incident.vm_id == job.vm.id and incident.errno == 0
    assert sup.sweeps == 1 and job.vm_state() == "active"
    assert idle.vm_state() == "active"  # EALREADY: nothing to do


def test_unknown_vm_is_ignored(dev: Device) -> None:
    with VmSupervisor(dev, **FAST) as sup:  # type: ignore[arg-type]
        sup.handle(VmError(77, errno.ENOSPC, 1, 0))
        assert sup.wait_idle(timeout=2)
    assert sup.incidents == [] and sup.ignored["unknown_vm"] == 1


def test_a_failing_hook_does_not_stop_the_supervisor(dev: Device) -> None:
    a, b = Job(dev, n=1), Job(dev, n=1, base=WS_BASE * 2)
    seen: list[Incident] = []

    def boom(incident: Incident) -> None:
        raise RuntimeError("hook")

    with VmSupervisor(dev, on_recovered=boom, **FAST) as sup:  # type: ignore[arg-type]
        sup.on_recovered(seen.append)
        sup.handle(VmError(a.vm.id, errno.ENOSPC, 0, 0))
        assert sup.wait_closed(1, timeout=5)
        sup.handle(VmError(b.vm.id, errno.ENOSPC, 0, 0))
        assert sup.wait_closed(2, timeout=5)
    assert [i.vm_id for i in seen] == [a.vm.id, b.vm.id]


def test_stop_is_idempotent_and_restartable(dev: Device) -> None:
    sup = VmSupervisor(dev, **FAST)  # type: ignore[arg-type]
    sup.start()
    sup.start()
    sup.stop()
    sup.stop()
    sup.start()
    sup.stop()
    assert "stopped" in repr(sup)


def test_bad_max_attempts() -> None:
    with pytest.raises(ValueError):
        VmSupervisor(object(), max_attempts=0)  # type: ignore[arg-type]


def test_watch_id_comes_from_the_given_listener(dev: Device, other: Device) -> None:
    from xeclient import Listener, Watch

    assert VmSupervisor(dev, listener=Listener(dev, watch_id=9)).watch_id == 9
    with pytest.raises(ValueError, match="differs"):
        VmSupervisor(dev, watch_id=1, listener=Listener(dev, watch_id=9))
    with pytest.raises(ValueError, match="listens to"):
        VmSupervisor(dev, listener=Listener(other))
    with Watch(dev.backend) as watch:
        watch.subscribe(other, 2)
        with pytest.raises(ValueError, match="not subscribed"):
            VmSupervisor(dev, listener=Listener(watch))
        watch.subscribe(dev, 5)
        assert VmSupervisor(dev, listener=Listener(watch)).watch_id == 5
        with pytest.raises(ValueError, match="differs"):
            VmSupervisor(dev, watch_id=1, listener=Listener(watch))
