"""``xeclient.faults``: the fake injector (control surface) and the debugfs one (on a temporary tree)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xeclient import Device, faults
from xeclient.backends.fake import FakeBackend
from xeclient.faults import (
    DebugfsFaultInjector,
    FakeFaultInjector,
    FaultInjectionUnavailable,
    fault_injector,
)


@pytest.fixture
def dev(fake_backend: FakeBackend) -> Iterator[Device]:
    with Device.open(backend=fake_backend) as device:
        yield device


# --- the fake ---------------------------------------------------------------------------------------
def test_fake_injector_arms_the_control_surface(dev: Device, fake_backend: FakeBackend) -> None:
    inj = fault_injector(dev)
    assert isinstance(inj, FakeFaultInjector) and not inj.persistent and inj.name == "rebind_enospc"
    inj.arm(probability=50, times=-1, interval=3)
    attr = fake_backend.device.faults["rebind_enospc"]
    assert (attr.probability, attr.times, attr.interval) == (50, -1, 3)
    assert inj.status()["probability"] == 50 and inj.status()["times"] == -1
    inj.disarm()
    assert attr.probability == 0 and attr.times == 0


def test_fake_injector_armed_block_disarms(dev: Device, fake_backend: FakeBackend) -> None:
    inj = fault_injector(dev.backend)
    with inj.armed(times=2):
        assert fake_backend.device.faults["rebind_enospc"].times == 2
    assert fake_backend.device.faults["rebind_enospc"].probability == 0


def test_fake_injector_really_fails_the_worker(dev: Device, fake_backend: FakeBackend) -> None:
    from xeclient import EngineClass, VmCreateFlag

    vm = dev.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)
    vm.bind(dev.create_bo(1 << 20), 0x100000)
    dev.create_exec_queue(vm, EngineClass.COMPUTE).exec(0x100000)
    with dev.watch(watch_id=4) as watch, fault_injector(dev).armed(times=1):
        fake_backend.evict(dev.fd, vm.id)
        assert fake_backend.settle(5)
        (event,) = watch.poll(1.0)
    assert event.vm_id == vm.id and event.errno == errno.ENOSPC  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs", [{"probability": 101}, {"probability": -1}, {"times": -2}, {"interval": 0}, {"space": -1}]
)
def test_bad_settings(dev: Device, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        fault_injector(dev).arm(**kwargs)


def test_unknown_fake_attribute(dev: Device) -> None:
    with pytest.raises(FaultInjectionUnavailable, match="rebind_enospc"):
        fault_injector(dev, name="fail_gt_reset").arm()


def test_fake_injector_needs_a_control_surface() -> None:
    with pytest.raises(TypeError):
        FakeFaultInjector(object())  # type: ignore[arg-type]


# --- debugfs, on a temporary tree ----------------------------------------------------------------------
def make_attr(path: Path) -> Path:
    path.mkdir(parents=True)
    for name, value in (("probability", 0), ("times", 1), ("interval", 1), ("space", 0), ("verbose", 2)):
        (path / name).write_text(f"{value}\n")
    (path / "task-filter").write_text("N\n")
    return path


@pytest.fixture
def debugfs(tmp_path: Path) -> Path:
    root = tmp_path / "debug"
    make_attr(root / "dri" / "0" / "fail_rebind_enospc")
    (root / "dri" / "0" / "fail_gt_reset").mkdir()
    (root / "dri" / "0" / "fail_gt_reset" / "probability").write_text("0\n")
    return root


def test_discover_by_name(debugfs: Path) -> None:
    inj = DebugfsFaultInjector.discover(debugfs=str(debugfs), sysfs=str(debugfs / "nosysfs"))
    assert inj.directory == str(debugfs / "dri" / "0" / "fail_rebind_enospc") and inj.persistent
    inj.arm(probability=100, times=3, interval=2, space=4096, verbose=0)
    d = Path(inj.directory)
    assert [d.joinpath(k).read_text() for k in ("probability", "times", "interval", "space", "verbose")] == [
        "100\n",
        "3\n",
        "2\n",
        "4096\n",
        "0\n",
    ]
    assert inj.status() == {"probability": 100, "times": 3, "interval": 2, "space": 4096, "verbose": 0}
    inj.disarm()
    assert inj.status()["probability"] == 0 and inj.status()["times"] == 0


def test_probability_is_written_last(debugfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inj = DebugfsFaultInjector.discover(debugfs=str(debugfs))
    written: list[str] = []
    real_write = DebugfsFaultInjector._write

    def spy(self: DebugfsFaultInjector, key: str, value: int) -> None:
        written.append(key)
        real_write(self, key, value)

    monkeypatch.setattr(DebugfsFaultInjector, "_write", spy)
    inj.arm()
    assert written[-1] == "probability" and set(written) == {"interval", "times", "space", "probability"}


def test_discover_prefers_the_devices_own_directory(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    make_attr(debug / "dri" / "0" / "fail_rebind_enospc")
    make_attr(debug / "dri" / "1" / "rebind_enospc")
    pci = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:03:00.0"
    (pci / "drm" / "card1").mkdir(parents=True)
    (pci / "drm" / "renderD129").mkdir(parents=True)
    node = tmp_path / "sys" / "class" / "drm" / "renderD129"
    node.mkdir(parents=True)
    os.symlink(pci, node / "device")
    inj = DebugfsFaultInjector.discover("/dev/dri/renderD129", debugfs=str(debug), sysfs=str(tmp_path / "sys"))
    assert inj.directory == str(debug / "dri" / "1" / "rebind_enospc")


def test_discover_by_pci_address_directory(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    make_attr(debug / "dri" / "0" / "fail_rebind_enospc")
    make_attr(debug / "dri" / "0000:03:00.0" / "fail_rebind_enospc")
    pci = tmp_path / "sys" / "devices" / "0000:03:00.0"
    pci.mkdir(parents=True)
    node = tmp_path / "sys" / "class" / "drm" / "renderD128"
    node.mkdir(parents=True)
    os.symlink(pci, node / "device")
    inj = DebugfsFaultInjector.discover("/dev/dri/renderD128", debugfs=str(debug), sysfs=str(tmp_path / "sys"))
    assert inj.directory == str(debug / "dri" / "0000:03:00.0" / "fail_rebind_enospc")


def test_fault_dir_absolute_and_by_name(debugfs: Path, tmp_path: Path) -> None:
    other = make_attr(tmp_path / "elsewhere" / "my_fault")
    assert DebugfsFaultInjector.discover(fault_dir=str(other), debugfs=str(debugfs)).directory == str(other)
    named = DebugfsFaultInjector.discover(fault_dir="fail_gt_reset", debugfs=str(debugfs))
    assert named.directory == str(debugfs / "dri" / "0" / "fail_gt_reset")


def test_fault_dir_that_is_not_one(tmp_path: Path, debugfs: Path) -> None:
    with pytest.raises(FaultInjectionUnavailable, match="does not exist") as exc:
        DebugfsFaultInjector.discover(fault_dir=str(tmp_path / "nope"), debugfs=str(debugfs))
    assert str(tmp_path / "nope") in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaultInjectionUnavailable, match="no 'probability' file"):
        DebugfsFaultInjector.discover(fault_dir=str(tmp_path / "empty"), debugfs=str(debugfs))
    with pytest.raises(FaultInjectionUnavailable, match="named 'fail_nothing'"):
        DebugfsFaultInjector.discover(fault_dir="fail_nothing", debugfs=str(debugfs))


def test_not_found_names_the_path_and_the_fix(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    (debug / "dri" / "0" / "fail_gt_reset").mkdir(parents=True)
    with pytest.raises(FaultInjectionUnavailable) as exc:
        DebugfsFaultInjector.discover(debugfs=str(debug))
    text = str(exc.value)
    assert str(debug / "dri" / "0") in text and "--fault-dir" in text and "CONFIG_FAULT_INJECTION_DEBUG_FS" in text
    assert exc.value.errno == errno.ENOENT


def test_no_debugfs(tmp_path: Path) -> None:
    with pytest.raises(FaultInjectionUnavailable, match="no debugfs") as exc:
        DebugfsFaultInjector.discover(debugfs=str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in str(exc.value)


def test_debugfs_not_mounted(tmp_path: Path) -> None:
    (tmp_path / "debug").mkdir()
    with pytest.raises(FaultInjectionUnavailable, match="not mounted") as exc:
        DebugfsFaultInjector.discover(debugfs=str(tmp_path / "debug"))
    assert "mount -t debugfs" in str(exc.value)


def test_no_dri_directory(tmp_path: Path) -> None:
    (tmp_path / "debug" / "tracing").mkdir(parents=True)
    with pytest.raises(FaultInjectionUnavailable, match="is the xe module loaded"):
        DebugfsFaultInjector.discover(debugfs=str(tmp_path / "debug"))


def test_not_root(debugfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if str(path).endswith("/dri"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path)

    monkeypatch.setattr(faults.os, "listdir", listdir)
    with pytest.raises(FaultInjectionUnavailable, match="run this as root") as exc:
        DebugfsFaultInjector.discover(debugfs=str(debugfs))
    assert exc.value.errno == errno.EACCES and str(debugfs / "dri") in str(exc.value)


def test_write_not_permitted(debugfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inj = DebugfsFaultInjector.discover(debugfs=str(debugfs))

    def deny(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(faults, "open", deny, raising=False)
    with pytest.raises(FaultInjectionUnavailable, match="run this as root") as exc:
        inj.arm()
    assert inj.directory in str(exc.value)
    assert inj.status()["probability"] is None  # unreadable too


def test_fault_injector_picks_debugfs_for_a_kernel_like_backend(debugfs: Path) -> None:
    class KernelLike:
        name = "kernel"

        def render_nodes(self) -> list[str]:
            return ["/dev/dri/renderD128"]

    inj = fault_injector(KernelLike(), debugfs=str(debugfs), sysfs=str(debugfs / "nosys"))  # type: ignore[arg-type]
    assert isinstance(inj, DebugfsFaultInjector) and "fail_rebind_enospc" in repr(inj)
