"""The typed layer (Device, Vm, Bo, ExecQueue, Watch) over whichever backend is selected.

Same test bodies on the fake and on hardware: only seam calls, no control surface.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from xeclient import CpuCaching, Device, EngineClass, IoctlError, MemClass, VmCreateFlag, Watch
from xeclient.backends import Backend

LR_RESTARTABLE = VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE


@pytest.fixture
def dev(xe_backend: Backend, xe_node: str) -> Iterator[Device]:
    # the node under test (--xe-device), not whichever xe node happens to be first
    with Device.open(xe_node, backend=xe_backend) as device:
        yield device


def _exec_engine_class(dev: Device) -> EngineClass:
    """COMPUTE where the device has one, else RENDER (TGL-class parts have no compute engine)."""
    classes = {e.engine_class for e in dev.query_engines()}
    for engine_class in (EngineClass.COMPUTE, EngineClass.RENDER):
        if engine_class in classes:
            return engine_class
    pytest.skip("the device has neither a compute nor a render engine")


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_version_is_xe(dev: Device) -> None:
    v = dev.version()
    assert v.name == "xe"
    assert (v.major, v.minor) >= (1, 1)
    assert v.desc


def test_queries(dev: Device) -> None:
    config = dev.query_config()
    assert config.va_bits >= 32
    assert config.min_alignment in (4096, 65536)
    engines = dev.query_engines()
    # an engine that runs batches: RENDER on most parts, only COMPUTE on PVC-class ones
    assert any(e.engine_class in (EngineClass.RENDER, EngineClass.COMPUTE) for e in engines)
    regions = dev.query_mem_regions()
    assert regions[0].mem_class == MemClass.SYSMEM and regions[0].instance == 0
    assert all(r.used <= r.total_size for r in regions)
    assert dev.query_engines() == engines  # cached, equal
    assert dev.query_gt_list()


def test_features_probe_finds_the_series(dev: Device) -> None:
    f = dev.features()
    assert f.vm_restart and f.watch_queue and f.series


def test_vm_lifecycle_and_repr(dev: Device) -> None:
    vm = dev.create_vm(LR_RESTARTABLE)
    assert vm.id >= 1 and vm.restartable and vm.preempt_fence_mode
    assert "LR_MODE" in repr(vm) and "RESTARTABLE" in repr(vm)
    vm.destroy()
    vm.destroy()  # idempotent
    assert "destroyed" in repr(vm)


def test_restart_of_running_vm_is_ealready_and_named(dev: Device) -> None:
    with dev.create_vm(LR_RESTARTABLE) as vm:
        with pytest.raises(IoctlError) as info:
            vm.restart()
        assert info.value.errno == errno.EALREADY
        assert str(info.value).startswith(f"DRM_IOCTL_XE_VM_RESTART(vm_id={vm.id}): [Errno {errno.EALREADY}]")


def test_restart_of_non_restartable_vm_is_einval(dev: Device) -> None:
    with dev.create_vm(VmCreateFlag.LR_MODE) as vm:
        with pytest.raises(OSError) as info:
            vm.restart()
        assert info.value.errno == errno.EINVAL


def test_bind_unbind_updates_bindings(dev: Device) -> None:
    placement = "vram" if dev.vram_mask() else "sysmem"
    # WC caching: a WC BO binds with any PAT index, while a WB one needs the platform's coherent
    # index (PAT 0 is not coherent on MTL and Xe2).  1 MiB at 2 MiB suits every min_page_size.
    assert all(r.min_page_size <= 1 << 20 for r in dev.query_mem_regions())
    with dev.create_vm(LR_RESTARTABLE) as vm, dev.create_bo(1 << 20, placement, cpu_caching=CpuCaching.WC) as bo:
        seen: list[tuple[str, int]] = []

        class Observer:
            def on_bind(self, vm: object, b: object) -> None:
                seen.append(("bind", b.addr))  # type: ignore[attr-defined]

            def on_unbind(self, vm: object, b: object) -> None:
                seen.append(("unbind", b.addr))  # type: ignore[attr-defined]

        vm.observers.append(Observer())
        b = vm.bind(bo, addr=0x200000)
        assert vm.bindings == {0x200000: b} and b.range == 1 << 20
        vm.unbind(b)
        assert vm.bindings == {}
        assert seen == [("bind", 0x200000), ("unbind", 0x200000)]


def test_bo_close_and_double_close(dev: Device) -> None:
    bo = dev.create_bo(1 << 16, "sysmem")
    assert bo.handle >= 1
    bo.close()
    bo.close()


def test_exec_queue_on_compute(dev: Device) -> None:
    with dev.create_vm(LR_RESTARTABLE) as vm:
        q = dev.create_exec_queue(vm, _exec_engine_class(dev))
        assert q.id >= 1 and vm.exec_queues == {q.id: q}
    assert q.destroyed  # destroying the VM destroyed its queues first


def test_watch_subscribe_twice_on_one_file_is_ebusy(dev: Device) -> None:
    with dev.watch(watch_id=3) as w:
        with pytest.raises(IoctlError) as info:
            w.subscribe(dev, 4)
        assert info.value.errno == errno.EBUSY
        assert "DRM_IOCTL_XE_WATCH_QUEUE(" in str(info.value)
        assert w.poll() == []


def test_objects_leak_no_descriptor(xe_backend: Backend, xe_node: str) -> None:
    before = _fds()
    for _ in range(20):
        with Device.open(xe_node, backend=xe_backend) as dev, dev.watch() as w:
            w.poll()
            with dev.create_vm(LR_RESTARTABLE):
                pass
    assert _fds() == before


def test_closed_device_refuses_calls(xe_backend: Backend, xe_node: str) -> None:
    dev = Device.open(xe_node, backend=xe_backend)
    dev.close()
    dev.close()
    with pytest.raises(ValueError, match="closed"):
        dev.create_vm()


def test_watch_standalone_selectable(xe_backend: Backend) -> None:
    with Watch(xe_backend, nr_notes=32) as w:
        assert w.fileno() >= 0
        assert w.poll(timeout=0.01) == []
        assert w.read_raw() is None


def test_watch_setup_errors_come_from_the_kernel_and_name_the_argument(xe_backend: Backend) -> None:
    with Watch(xe_backend, nr_notes=32) as w:
        with pytest.raises(IoctlError) as info:
            w.set_size(64)  # sized once already: EBUSY is checked before the range
        assert info.value.errno == errno.EBUSY
        assert str(info.value).startswith("IOC_WATCH_QUEUE_SET_SIZE(nr_notes=64): [Errno 16]")
        with pytest.raises(IoctlError) as info:
            w.set_filter([])
        assert info.value.errno == errno.EINVAL
        assert "IOC_WATCH_QUEUE_SET_FILTER(nr_filters=0)" in str(info.value)
        w.set_filter(None)
