"""The xeclient pytest plugin itself, driven through ``pytester``.

Inner sessions run in-process where nothing can leak into this process, and in
a subprocess where the inner test leaks on purpose or patches the plugin.
"""

from __future__ import annotations

import errno
import os
import types
import xml.etree.ElementTree as ET

import pytest

from xeclient import Vm
from xeclient.backends.kernel import KernelBackend
from xeclient.pytest_plugin import MARKERS, NO_DEVICE_EXIT, SCRATCH_ADDR, RebindTrigger

pytest_plugins = ["pytester"]

#: An inner conftest that makes the leak check autouse and quick.
LEAK_CONFTEST = """
import pytest
import xeclient.pytest_plugin as plugin

plugin.LEAK_GRACE_S = 0.3

@pytest.fixture(autouse=True)
def _no_leaks(xe_no_leaks):
    pass
"""

#: An inner conftest whose "kernel" backend is a fake answering to the name "kernel".
PRETEND_KERNEL_CONFTEST = """
import xeclient.pytest_plugin as plugin
from xeclient.backends.fake import FakeBackend

class PretendKernel(FakeBackend):
    name = "kernel"

plugin._kernel_backend = PretendKernel
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions see neither this session's backend selection nor the VM flag."""
    for name in ("XE_BACKEND", "XE_DEVICE", "XE_FAULT_DIR", "XECLIENT_REALKERNEL", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)


#: Autoloaded plugins that cost seconds per inner session and play no part here.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process inner session (for tests that leave nothing behind in this process)."""
    return pytester.runpytest(*QUIET, *args)


def run_subprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner session in a fresh interpreter (leaks on purpose, or patches the plugin)."""
    return pytester.runpytest_subprocess(*QUIET, *args)


def _has_xe_device() -> bool:
    return KernelBackend().probe() is None


# --- the kernel backend without a device ---------------------------------------------


def test_kernel_with_a_missing_device_fails_fast_with_one_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never_runs(xe_backend):\n    raise AssertionError('ran')\n")
    result = run_subprocess(pytester, "--xe-backend=kernel", "--xe-device=/nonexistent/renderD199")
    assert result.ret == NO_DEVICE_EXIT == 4
    out = result.stdout.str() + result.stderr.str()
    assert "--xe-device=/nonexistent/renderD199 with --xe-backend=kernel was requested but no usable Xe device" in out
    assert "/nonexistent/renderD199" in out and "No such file or directory" in out
    assert "ran" not in out and "passed" not in out and "skipped" not in out


@pytest.mark.skipif(_has_xe_device(), reason="this machine has an Xe device")
def test_kernel_without_any_device_fails_fast(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = run(pytester, "--xe-backend=kernel")
    assert result.ret == NO_DEVICE_EXIT
    result.stderr.fnmatch_lines(
        ["*--xe-backend=kernel was requested but no usable Xe device was found: no render node*"]
    )
    assert "passed" not in result.stdout.str()


@pytest.mark.skipif(_has_xe_device(), reason="this machine has an Xe device")
def test_env_kernel_fails_the_same_way(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XE_BACKEND", "kernel")
    pytester.makepyfile("def test_a(): pass\n")
    result = run(pytester)
    assert result.ret == NO_DEVICE_EXIT
    result.stderr.fnmatch_lines(["*XE_BACKEND=kernel was requested but no usable Xe device*"])


def test_auto_falls_back_to_the_fake_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(xe_backend):\n    assert xe_backend.name == 'fake'\n")
    result = run(pytester, "--xe-backend=auto", "--xe-device=/nonexistent/renderD199")
    result.stdout.fnmatch_lines(
        ["xe backend: fake (auto: no usable Xe device (*/nonexistent/renderD199*)*) [[]from --xe-backend[]]"]
    )
    result.assert_outcomes(passed=1)


def test_bad_backend_name_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XE_BACKEND", "gpu")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*XE_BACKEND='gpu' is not a backend*"])


# --- report header, dormancy, JUnit ----------------------------------------------------


def test_header_names_backend_device_driver_and_kernel(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = run(pytester, "--xe-backend=fake")
    result.stdout.fnmatch_lines(
        [
            "xe backend: fake [[]from --xe-backend[]]",
            f"xe device: /dev/dri/renderD128 PCI 8086:*, driver xe *, kernel {os.uname().release}, "
            "series ioctls present, xeclient *",
        ]
    )


def test_ini_enables_the_header(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nxe_backend = fake\n")
    pytester.makepyfile("def test_a(): pass\n")
    run(pytester).stdout.fnmatch_lines(["xe backend: fake [[]from ini xe_backend[]]"])


def test_dormant_without_option_env_ini_or_xe_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from xeclient.pytest_plugin import XE_SESSION

        def test_nothing_opened(pytestconfig):
            assert pytestconfig.stash[XE_SESSION].backend is None
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "xe backend" not in result.stdout.str()


def test_xe_fixture_use_describes_the_backend_after_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(xe_backend): pass\n")
    result = run(pytester)
    result.stdout.fnmatch_lines(["collected 1 item", "xe backend: * [[]from default[]]", "xe device: *"])
    result.assert_outcomes(passed=1)


def test_junit_has_the_lab_metadata(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(xe_client): pass\n")
    junit = pytester.path / "junit.xml"
    result = run(pytester, "--xe-backend=fake", f"--junitxml={junit}")
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["xe_backend"] == "fake"
    assert props["xe_device"] == "/dev/dri/renderD128"
    assert props["xe_pci_id"].startswith("8086:")
    assert props["xe_driver"].startswith("xe ")
    assert props["kernel"] == os.uname().release
    assert props["xe_series_ioctls"] == "present"
    assert props["xeclient_version"]


def test_junit_metadata_survives_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\nxe_backend = fake\n")
    pytester.makepyfile("def test_a(xe_backend): pass\n\ndef test_b(xe_backend): pass\n")
    junit = pytester.path / "junit.xml"
    result = run_subprocess(pytester, "-p", "xdist", "-n", "2", f"--junitxml={junit}")
    result.assert_outcomes(passed=2)
    names = [p.get("name") for p in ET.parse(junit).getroot().iter("property")]
    assert names.count("xe_backend") == 1 and "xe_pci_id" in names


# --- markers ---------------------------------------------------------------------------


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    for name in MARKERS:
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.slow
        @pytest.mark.hardware
        @pytest.mark.fake_only
        @pytest.mark.realkernel
        def test_a(): pass
        """
    )
    result = run(pytester, "--strict-markers", "--xe-backend=fake")
    assert "not found in `markers` configuration option" not in result.stdout.str()
    result.assert_outcomes(skipped=1)


MARKED_TESTS = """
import pytest

@pytest.mark.hardware
def test_hw(xe_backend):
    assert xe_backend.name == "kernel"

@pytest.mark.fake_only
def test_fake(xe_backend):
    assert xe_backend.name == "fake"

@pytest.mark.realkernel
def test_rk():
    pass

def test_plain():
    pass
"""


def test_on_the_fake_hardware_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED_TESTS)
    result = run(pytester, "--xe-backend=fake", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * test_*.py:3: hardware: needs a real Xe device; the fake backend was selected (--xe-backend=fake)*",
            "SKIPPED * test_*.py:11: realkernel: needs a kernel with watch queues*XECLIENT_REALKERNEL=1*",
        ],
        consecutive=False,
    )


@pytest.mark.skipif(_has_xe_device(), reason="this machine has an Xe device")
def test_on_auto_without_a_device_hardware_is_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED_TESTS)
    result = run(pytester, "--xe-backend=auto", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * test_*.py:3: hardware: needs a real Xe device; auto: no usable Xe device*"])


def test_on_the_kernel_fake_only_is_skipped(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PRETEND_KERNEL_CONFTEST)
    pytester.makepyfile(MARKED_TESTS)
    result = run_subprocess(pytester, "--xe-backend=kernel", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "xe backend: kernel [[]from --xe-backend[]]",
            "SKIPPED * test_*.py:7: fake_only: uses the fake backend's control surface; this run is on the kernel backend*",
        ],
        consecutive=False,
    )


def test_on_auto_with_a_device_hardware_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PRETEND_KERNEL_CONFTEST)
    pytester.makepyfile(MARKED_TESTS)
    result = run_subprocess(pytester, "--xe-backend=auto", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["xe backend: kernel (auto: /dev/dri/renderD128 opens) [[]from --xe-backend[]]"])


def test_realkernel_runs_when_the_vm_says_so(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XECLIENT_REALKERNEL", "1")
    pytester.makepyfile("import pytest\n\n@pytest.mark.realkernel\ndef test_rk(): pass\n")
    run(pytester).assert_outcomes(passed=1)


# --- hygiene -------------------------------------------------------------------------------


def test_a_leaked_thread_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LEAK_CONFTEST)
    pytester.makepyfile(
        """
        import threading

        def test_leaks_a_thread():
            threading.Thread(target=threading.Event().wait, args=(30,), name="leaky", daemon=True).start()
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks_a_thread: leaked thread(s): leaky (daemon=True)*"])


def test_a_leaked_descriptor_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LEAK_CONFTEST)
    pytester.makepyfile(
        """
        import os

        def test_leaks_an_fd():
            os.open("/dev/null", os.O_RDONLY)
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks_an_fd: leaked descriptor(s): * -> /dev/null*"])


def test_clean_tests_and_the_session_backends_worker_are_not_leaks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LEAK_CONFTEST)
    pytester.makepyfile(
        """
        import os
        import threading
        import time

        def test_finishing_thread_and_closed_fd():
            threading.Thread(target=time.sleep, args=(0.1,)).start()  # ends within the grace period
            os.close(os.open("/dev/null", os.O_RDONLY))

        def test_starts_the_fakes_worker(busy_vm, trigger_rebind, xe_backend):
            trigger_rebind(busy_vm)  # the session fake's workqueue thread starts now and stays
            assert xe_backend.settle(5.0)
            assert any(t.name.startswith("xe-fake-wq") for t in threading.enumerate())

        def test_after(xe_file):
            pass
        """
    )
    result = run_subprocess(pytester, "--xe-backend=fake")
    result.assert_outcomes(passed=3)


# --- fixtures ------------------------------------------------------------------------------


FIXTURE_TESTS = """
import errno
import pytest
from xeclient import Device, Vm, VmCreateFlag

def test_xe_file_is_a_raw_descriptor(xe_file, xe_backend):
    assert isinstance(xe_file, int) and os_fd_open(xe_file)

def test_xe_device_is_shared_and_xe_client_is_fresh(xe_device, xe_client):
    assert isinstance(xe_device, Device) and isinstance(xe_client, Device)
    assert xe_device.fd != xe_client.fd and xe_device.path == xe_client.path
    assert xe_device.backend is xe_client.backend

def test_restartable_vm(restartable_vm, xe_client):
    assert restartable_vm.restartable and restartable_vm.long_running
    assert restartable_vm.device is xe_client
    with pytest.raises(OSError) as info:
        restartable_vm.restart()
    assert info.value.errno == errno.EALREADY

def test_busy_vm_has_a_job_in_flight(busy_vm, xe_backend):
    (queue,) = busy_vm.exec_queues.values()
    assert queue.jobs_submitted == 1
    assert xe_backend.device.exec_queue_state(busy_vm.device.fd, queue.id) == "running"

def test_memory_pressure_takes_and_gives_back_vram(memory_pressure, xe_client):
    before = xe_client.vram_free()
    taken = memory_pressure.fill(leave=32 << 20)
    assert taken > 0 and xe_client.vram_free() <= 32 << 20
    assert memory_pressure.release() == taken
    assert xe_client.vram_free() == before

def test_trigger_rebind_on_an_idle_vm_deactivates_it(restartable_vm, trigger_rebind, xe_backend):
    trigger_rebind(restartable_vm)
    assert xe_backend.settle(5.0)
    restartable_vm.restart()  # deactivated (idle): restart is accepted

def test_inject_enospc_and_trigger_rebind_give_a_vm_error(busy_vm, inject_enospc, trigger_rebind, xe_listener):
    from xeclient import VmError
    inject_enospc()
    trigger_rebind(busy_vm)
    event = xe_listener.wait_for(VmError)
    assert (event.vm_id, event.errno, event.watch_id) == (busy_vm.id, errno.ENOSPC, 1)
    busy_vm.restart(timestamp_ns=event.timestamp_ns)
    with pytest.raises(OSError) as info:
        busy_vm.restart()
    assert info.value.errno == errno.EALREADY

def test_xe_watch_polls_the_same_event(busy_vm, inject_enospc, trigger_rebind, xe_watch):
    inject_enospc()
    trigger_rebind(busy_vm)
    events = xe_watch.poll(timeout=5)
    assert [(e.vm_id, e.errno) for e in events] == [(busy_vm.id, errno.ENOSPC)]

def test_fault_injector_is_disarmed_after_a_test(fault_injector):
    assert fault_injector.status()["probability"] == 0
    fault_injector.arm(probability=100, times=-1)

def test_and_stays_disarmed(fault_injector):
    assert fault_injector.status()["probability"] == 0

def os_fd_open(fd):
    import os
    os.fstat(fd)
    return True
"""


def test_fixtures_on_the_fake(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LEAK_CONFTEST)
    pytester.makepyfile(FIXTURE_TESTS)
    result = run(pytester, "--xe-backend=fake")
    result.assert_outcomes(passed=10)


# --- the fixtures' hardware paths, on whichever backend this session runs ------------------


def test_busy_vm_runs_a_job_so_restart_is_ealready(busy_vm: Vm) -> None:
    (queue,) = busy_vm.exec_queues.values()
    assert queue.jobs_submitted == 1 and busy_vm.restartable
    with pytest.raises(OSError) as info:
        busy_vm.restart()
    assert info.value.errno == errno.EALREADY


def test_the_userptr_trigger_binds_once_invalidates_and_unbinds(restartable_vm: Vm) -> None:
    trigger = RebindTrigger(types.SimpleNamespace(name="kernel"))  # type: ignore[arg-type]
    trigger(restartable_vm)
    trigger(restartable_vm)
    assert SCRATCH_ADDR in restartable_vm.bindings and restartable_vm.bindings[SCRATCH_ADDR].userptr
    trigger.close()
    assert SCRATCH_ADDR not in restartable_vm.bindings
