"""pytest plugin (entry point ``pytest11``): backend selection, xe fixtures, markers, hygiene.

Dormant unless used.  Installing xeclient registers options, markers and fixtures,
nothing more: no device is opened, no thread started, no header line printed in
a project that does not ask for it.  The plugin is *enabled* when
``--xe-backend`` is given, ``XE_BACKEND`` is set, or the ini file sets
``xe_backend``; only then does the report header open the session backend and
describe it.  Without that, a run whose collected tests request an xe fixture
prints the same lines after "collected N items" (the backend is opened anyway);
a run that uses none opens nothing.

Backend policy (see docs/lab.md):

- ``fake`` never touches hardware.
- ``auto`` uses a real Xe device when one opens, else the fake.  Tests marked
  ``hardware`` run only when a device was found, and are skipped with the reason
  otherwise.
- ``kernel`` requires a device: when none is usable the session stops at once
  (``pytest.exit``, exit status 4) with one message saying why, instead of
  skipping everything green.

All state lives in ``config.stash`` (:class:`XeSession`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import gc
import mmap
import os
import queue
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .backends import BACKEND_NAMES, Backend, open_backend
from .device import Device
from .uapi.constants import EngineClass, VmCreateFlag
from .watch import Watch

if TYPE_CHECKING:
    from .bo import Bo
    from .events import Event
    from .exec_queue import ExecQueue
    from .faults import FaultInjector
    from .vm import Binding, Vm

E = TypeVar("E", bound="Event")

#: Fixtures whose use in a collected test makes the plugin describe its backend.
XE_FIXTURES = frozenset(
    {
        "xe_backend",
        "xe_device",
        "xe_node",
        "xe_file",
        "xe_client",
        "restartable_vm",
        "busy_vm",
        "xe_watch",
        "xe_listener",
        "fault_injector",
        "inject_enospc",
        "trigger_rebind",
        "memory_pressure",
    }
)

#: Exit status when ``--xe-backend=kernel`` finds no usable device (pytest's "usage error").
NO_DEVICE_EXIT = pytest.ExitCode.USAGE_ERROR

#: Marker name -> description (registered in pytest_configure; run with --strict-markers).
MARKERS = {
    "hardware": "needs a real Xe device: runs on the kernel backend; with --xe-backend=auto it is skipped "
    "(with the reason) when no device is found, and on the fake it is skipped",
    "fake_only": "uses the fake backend's control surface (evict, inject, watch_source, ...): skipped on the "
    "kernel backend",
    "realkernel": "needs a kernel with watch queues (CONFIG_WATCH_QUEUE): runs in the QEMU guest of "
    "tools/realkernel; skipped elsewhere unless XECLIENT_REALKERNEL=1",
    "slow": "takes seconds rather than milliseconds; deselect with -m 'not slow'",
}

#: How long the leak check waits for threads and descriptors that are still being torn down.
LEAK_GRACE_S = 2.0

#: VM-create flags of a restartable long-running (preempt-fence mode) VM.
LR_RESTARTABLE = VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE


# ======================================================================================
# options and session state
# ======================================================================================


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xeclient", "Intel Xe (xeclient)")
    group.addoption(
        "--xe-backend",
        choices=BACKEND_NAMES,
        default=None,
        help="backend for the xe fixtures: auto (a real Xe device if one opens, else the fake), kernel "
        "(a real device; the session fails without one), fake. Env XE_BACKEND, ini xe_backend; default auto.",
    )
    group.addoption(
        "--xe-device",
        metavar="PATH",
        default=None,
        help="render node to test on the kernel backend, e.g. /dev/dri/renderD129 "
        "(default: the first node bound to xe). Env XE_DEVICE.",
    )
    group.addoption(
        "--xe-fault-dir",
        metavar="DIR",
        default=None,
        help="debugfs directory of the rebind_enospc fault attribute on the kernel backend "
        "(default: looked up under /sys/kernel/debug/dri). Env XE_FAULT_DIR.",
    )
    parser.addini(
        "xe_backend",
        "default backend for the xe fixtures (auto, kernel, fake); setting it enables the report header",
        default="",
    )


@dataclass(frozen=True)
class XeOptions:
    """What the command line, the environment and the ini file asked for."""

    backend: str
    #: where ``backend`` came from: "--xe-backend", "XE_BACKEND", "ini xe_backend" or "default"
    source: str
    device: str | None = None
    fault_dir: str | None = None

    @property
    def enabled(self) -> bool:
        """True when the user asked for a backend (so the header may open it)."""
        return self.source != "default"

    @classmethod
    def from_config(cls, config: pytest.Config) -> XeOptions:
        backend, source = config.getoption("--xe-backend"), "--xe-backend"
        if not backend:
            backend, source = os.environ.get("XE_BACKEND", "").strip().lower(), "XE_BACKEND"
        if not backend:
            backend, source = str(config.getini("xe_backend")).strip().lower(), "ini xe_backend"
        if not backend:
            backend, source = "auto", "default"
        if backend not in BACKEND_NAMES:
            raise pytest.UsageError(f"{source}={backend!r} is not a backend: choose one of {', '.join(BACKEND_NAMES)}")
        device = config.getoption("--xe-device") or os.environ.get("XE_DEVICE") or None
        fault_dir = config.getoption("--xe-fault-dir") or os.environ.get("XE_FAULT_DIR") or None
        return cls(str(backend), source, device, fault_dir)


@dataclass(frozen=True)
class XeFacts:
    """What the report header and the JUnit properties say about the session backend."""

    backend: str
    node: str
    pci_id: str
    driver: str
    kernel: str
    vm_restart: bool
    watch_queue: bool
    xeclient_version: str

    @property
    def series(self) -> bool:
        return self.vm_restart and self.watch_queue

    def properties(self) -> dict[str, str]:
        return {
            "xe_backend": self.backend,
            "xe_device": self.node,
            "xe_pci_id": self.pci_id,
            "xe_driver": self.driver,
            "kernel": self.kernel,
            "xe_series_ioctls": "present" if self.series else _series_text(self),
            "xeclient_version": self.xeclient_version,
        }


def _series_text(facts: XeFacts) -> str:
    def yn(flag: bool) -> str:
        return "yes" if flag else "no"

    return f"VM_RESTART {yn(facts.vm_restart)}, WATCH_QUEUE {yn(facts.watch_queue)}"


class XeUnavailableError(Exception):
    """The requested backend cannot be used (only ``kernel`` can fail this way)."""


class XeSession:
    """Per-session state in ``config.stash``: the options and the lazily opened backend."""

    def __init__(self, options: XeOptions) -> None:
        self.options = options
        self.backend: Backend | None = None
        #: the render node the fixtures open
        self.node: str | None = None
        #: why this backend (for ``auto``), or a note about the options
        self.why = ""
        self.error: str | None = None
        self.facts: XeFacts | None = None
        self.facts_error: str | None = None
        self.recorded = False

    @property
    def name(self) -> str:
        """The backend the session runs on ("kernel" or "fake"), opening it if need be."""
        return self.open().name

    def open(self) -> Backend:
        """Resolve and open the session backend once; raise :class:`XeUnavailableError`."""
        if self.error is not None:
            raise XeUnavailableError(self.error)
        if self.backend is not None:
            return self.backend
        want = self.options.backend
        if want in ("kernel", "auto"):
            kernel = _kernel_backend()
            node, reason = _probe_kernel(kernel, self.options.device)
            if node is not None:
                self.backend, self.node = kernel, node
                self.why = "" if want == "kernel" else f"auto: {node} opens"
                return kernel
            if want == "kernel":
                self.error = _no_device_message(self.options, reason or "unknown reason")
                raise XeUnavailableError(self.error)
            self.why = f"auto: no usable Xe device ({reason})"
        fake = open_backend("fake")
        nodes = fake.render_nodes()
        self.backend, self.node = fake, nodes[0]
        if self.options.device and self.options.device not in nodes:
            note = f"--xe-device={self.options.device} ignored: the fake's node is {nodes[0]}"
            self.why = f"{self.why}; {note}" if self.why else note
        return fake

    def describe(self) -> XeFacts | None:
        """Facts about the backend and device (cached); None with ``facts_error`` on failure."""
        if self.facts is None and self.facts_error is None:
            backend = self.open()
            assert self.node is not None
            try:
                with Device.open(self.node, backend=backend) as dev:
                    features = dev.features()
                    self.facts = XeFacts(
                        backend=backend.name,
                        node=self.node,
                        pci_id=dev.query_config().pci_id,
                        driver=str(dev.version()),
                        kernel=os.uname().release,
                        vm_restart=features.vm_restart,
                        watch_queue=features.watch_queue,
                        xeclient_version=_xeclient_version(),
                    )
            except Exception as exc:  # a header must not turn into an INTERNALERROR
                self.facts_error = f"{type(exc).__name__}: {exc}"
        return self.facts

    def record_properties(self, record: Callable[[str, object], None]) -> None:
        """Write the facts as JUnit test-suite properties, once per session."""
        if self.recorded:
            return
        self.recorded = True
        try:
            facts = self.describe()
        except XeUnavailableError:
            return
        if facts is not None:
            for key, value in facts.properties().items():
                record(key, value)

    def header_lines(self) -> list[str]:
        try:
            backend = self.open()
        except XeUnavailableError as exc:
            return [f"xe backend: unavailable: {exc}"]
        why = f" ({self.why})" if self.why else ""
        lines = [f"xe backend: {backend.name}{why} [from {self.options.source}]"]
        facts = self.describe()
        if facts is None:
            lines.append(f"xe device: {self.node}: could not be described: {self.facts_error}")
            return lines
        series = "present" if facts.series else f"MISSING ({_series_text(facts)})"
        lines.append(
            f"xe device: {facts.node} PCI {facts.pci_id}, driver {facts.driver}, kernel {facts.kernel}, "
            f"series ioctls {series}, xeclient {facts.xeclient_version}"
        )
        return lines

    def shutdown(self) -> None:
        backend, self.backend = self.backend, None
        shutdown = getattr(backend, "shutdown", None)
        if shutdown is not None:
            shutdown()


XE_SESSION = pytest.StashKey[XeSession]()


def xe_session(config: pytest.Config) -> XeSession:
    """The plugin's state for ``config`` (created in pytest_configure)."""
    session = config.stash.get(XE_SESSION, None)
    if session is None:
        session = config.stash[XE_SESSION] = XeSession(XeOptions.from_config(config))
    return session


def _kernel_backend() -> Backend:
    """The kernel backend (a seam for the plugin's own tests to replace)."""
    from .backends.kernel import KernelBackend

    return KernelBackend()


def _probe_kernel(kernel: Backend, device: str | None) -> tuple[str | None, str | None]:
    """(node, None) for the first node that opens as an xe device, else (None, why not)."""
    candidates = [device] if device else kernel.render_nodes()
    if not candidates:
        return None, "no render node is bound to the xe driver"
    errors = []
    for path in candidates:
        try:
            with Device.open(path, backend=kernel):
                return path, None
        except OSError as exc:
            errors.append(str(exc) if path in str(exc) else f"{path}: {exc}")
    return None, "; ".join(errors)


def _no_device_message(options: XeOptions, reason: str) -> str:
    asked = f"--xe-device={options.device} with " if options.device else ""
    return (
        f"xeclient: {asked}{options.source}=kernel was requested but no usable Xe device was found: {reason}. "
        "Run on a machine with an Xe GPU whose render node you can open (see docs/lab.md), "
        "name the node with --xe-device=/dev/dri/renderDN, or use --xe-backend=fake or auto."
    )


def _xeclient_version() -> str:
    try:
        from importlib.metadata import version

        return version("xeclient")
    except Exception:  # not installed (PYTHONPATH checkout): the package's own idea
        from . import __version__

        return __version__


# ======================================================================================
# hooks
# ======================================================================================


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    xe_session(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """An explicit ``kernel`` backend without a usable device ends the session here.

    When the plugin is enabled, the lab metadata also goes into the JUnit report
    now, from this process: that is what makes it survive pytest-xdist, whose
    workers cannot write test-suite properties (pytest issue 7767).
    """
    state = xe_session(session.config)
    if state.options.backend == "kernel":
        try:
            state.open()
        except XeUnavailableError as exc:
            pytest.exit(str(exc), returncode=NO_DEVICE_EXIT)
    xml = _junit_xml(session.config)
    if state.options.enabled and xml is not None:
        state.record_properties(xml.add_global_property)


def _junit_xml(config: pytest.Config) -> Any:
    """pytest's LogXML of this process (None without --junitxml, and in xdist workers)."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pytest moved it; the xe_backend fixture still records
        return None
    return config.stash.get(xml_key, None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = xe_session(config)
    return state.header_lines() if state.options.enabled else []


def pytest_report_collectionfinish(config: pytest.Config, items: Sequence[pytest.Item]) -> list[str]:
    """Not enabled by option/env/ini, but the collected tests use xe fixtures: describe the backend now."""
    state = xe_session(config)
    if state.options.enabled or not any(_uses_xe(item) for item in items):
        return []
    return state.header_lines()


def _uses_xe(item: pytest.Item) -> bool:
    return bool(XE_FIXTURES.intersection(getattr(item, "fixturenames", ())))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn the markers into skips, with the reason (conftests may add markers before this runs)."""
    state = xe_session(config)
    if os.environ.get("XECLIENT_REALKERNEL") != "1":
        skip_rk = pytest.mark.skip(
            reason="realkernel: needs a kernel with watch queues; runs in the QEMU guest "
            "(bash tools/realkernel/ci.sh), or set XECLIENT_REALKERNEL=1 on a kernel that has them"
        )
        for item in items:
            if item.get_closest_marker("realkernel"):
                item.add_marker(skip_rk)
    needs_backend = [i for i in items if i.get_closest_marker("hardware") or i.get_closest_marker("fake_only")]
    if not needs_backend:
        return
    if state.options.backend == "fake":
        name = "fake"
        why = f"the fake backend was selected ({state.options.source}=fake)"
    else:
        try:
            name = state.name
        except XeUnavailableError as exc:  # sessionstart already stopped an explicit kernel run
            name, why = "none", str(exc)
        else:
            why = state.why or f"{state.options.source}={state.options.backend}"
    for item in needs_backend:
        if item.get_closest_marker("hardware") and name != "kernel":
            item.add_marker(pytest.mark.skip(reason=f"hardware: needs a real Xe device; {why}"))
        elif item.get_closest_marker("fake_only") and name != "fake":
            item.add_marker(
                pytest.mark.skip(
                    reason=f"fake_only: uses the fake backend's control surface; this run is on the {name} backend"
                )
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(XE_SESSION, None)
    if state is None:
        return
    try:
        state.shutdown()
    except Exception as exc:  # opened for the header only; say so rather than raise from unconfigure
        sys.stderr.write(f"xeclient: shutting down the {state.options.backend} backend failed: {exc!r}\n")


# ======================================================================================
# session fixtures
# ======================================================================================


@pytest.fixture(scope="session")
def xe_backend(
    pytestconfig: pytest.Config, record_testsuite_property: Callable[[str, object], None]
) -> Iterator[Backend]:
    """The backend every xe fixture of this session uses (selected by ``--xe-backend``).

    Also records the lab metadata (backend, device, PCI id, driver, kernel,
    xeclient version) as JUnit test-suite properties; under pytest-xdist those are
    not written (pytest issue 7767).
    """
    state = xe_session(pytestconfig)
    try:
        backend = state.open()
    except XeUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    state.record_properties(record_testsuite_property)
    yield backend
    state.shutdown()


@pytest.fixture(scope="session")
def xe_device(xe_backend: Backend, pytestconfig: pytest.Config) -> Iterator[Device]:
    """A typed :class:`Device` on the node under test, open for the whole session.

    Shared by every test that asks for it: create and destroy your own objects
    on it, or use :func:`xe_client` for a DRM file of your own.
    """
    node = xe_session(pytestconfig).node
    with Device.open(node, backend=xe_backend) as device:
        yield device


# ======================================================================================
# function fixtures: files, devices, VMs
# ======================================================================================


@pytest.fixture
def xe_node(xe_backend: Backend, pytestconfig: pytest.Config) -> str:
    """Path of the render node under test."""
    node = xe_session(pytestconfig).node
    if node is None:
        pytest.skip("no xe render node")
    return node


@pytest.fixture
def xe_file(xe_backend: Backend, xe_node: str) -> Iterator[int]:
    """A fresh DRM file (raw descriptor) on the node under test, closed afterwards."""
    fd = xe_backend.open(xe_node, os.O_RDWR | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        xe_backend.close(fd)


@pytest.fixture
def xe_client(xe_backend: Backend, xe_node: str) -> Iterator[Device]:
    """A fresh typed :class:`Device` -- one DRM client (open file) of its own -- on the session backend.

    Closing it at teardown makes the driver tear down every VM, exec queue, BO
    and watch the test left on it.  ``restartable_vm``, ``busy_vm`` and
    ``xe_watch`` all use this same client, so a watch sees their VMs' events.
    """
    with Device.open(xe_node, backend=xe_backend) as device:
        yield device


@pytest.fixture
def restartable_vm(xe_client: Device) -> Iterator[Vm]:
    """A restartable long-running VM (``LR_MODE | RESTARTABLE``, preempt-fence mode) on ``xe_client``."""
    vm = xe_client.create_vm(LR_RESTARTABLE)
    try:
        yield vm
    finally:
        _quietly(vm.destroy)


#: GPU address of busy_vm's batch buffer (igt's favourite) and of trigger_rebind's scratch range.
BATCH_ADDR = 0x1A0000
SCRATCH_ADDR = 0x10_0000_0000
SCRATCH_SIZE = 64 << 10
#: PAT indices tried, in order, for userptr binds (a userptr needs a CPU-coherent entry, spec 5.3):
#: 0 is write-back coherent up to Xe-LPG; Xe2 uses 2 and MTL 3 (igt's intel_get_pat_idx_wb()).
USERPTR_PAT_INDICES = (0, 2, 3)

_MI_ARB_CHECK = 0x05 << 23
_MI_BATCH_BUFFER_START = (0x31 << 23) | (1 << 8) | 1  # gen8+, PPGTT, 3 dwords


class UserMemory:
    """Page-aligned anonymous process memory to bind as a userptr (an ``mmap``)."""

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.size = size
        view = (ctypes.c_char * size).from_buffer(self.map)
        self.address = ctypes.addressof(view)
        del view  # no export left, so close() can unmap

    def bind(self, vm: Vm, gpu_addr: int) -> Binding:
        """``vm.bind_userptr`` with the first PAT index the driver accepts for a userptr."""
        last: OSError | None = None
        for pat in USERPTR_PAT_INDICES:
            try:
                return vm.bind_userptr(self.address, gpu_addr, self.size, pat_index=pat)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                last = exc
        assert last is not None
        raise last

    def invalidate(self) -> None:
        """``madvise(MADV_DONTNEED)``: the pages go, the range stays -- an MMU-notifier invalidation."""
        self.map.madvise(mmap.MADV_DONTNEED, 0, self.size)

    def close(self) -> None:
        if not self.map.closed:
            self.map.close()


def spin_batch(mem: UserMemory, gpu_addr: int) -> None:
    """Write a batch that never ends (MI_ARB_CHECK; jump back to itself), preemptible at the check."""
    struct.pack_into("<IIII", mem.map, 0, _MI_ARB_CHECK, _MI_BATCH_BUFFER_START, gpu_addr & 0xFFFFFFFF, gpu_addr >> 32)


def _busy_engine(device: Device) -> EngineClass:
    classes = {e.engine_class for e in device.query_engines()}
    for engine_class in (EngineClass.COMPUTE, EngineClass.RENDER):
        if engine_class in classes:
            return engine_class
    pytest.skip(f"{device.path} has neither a compute nor a render engine for a long-running job")


@pytest.fixture
def busy_vm(xe_client: Device) -> Iterator[Vm]:
    """A restartable LR VM with a long-running job in flight, on ``xe_client``.

    An exec queue on the first compute engine (render where there is none) runs
    a batch bound at ``BATCH_ADDR`` from process memory (a userptr): a
    preemptible loop that never ends, so the VM is never idle and its rebind
    worker re-validates (and can fail) instead of quietly deactivating.  The
    queue is ``next(iter(busy_vm.exec_queues.values()))``.  Teardown destroys the
    queue (ending the job), the VM, and the batch memory.
    """
    engine_class = _busy_engine(xe_client)
    vm = xe_client.create_vm(LR_RESTARTABLE)
    batch = UserMemory(mmap.PAGESIZE)
    try:
        spin_batch(batch, BATCH_ADDR)
        batch.bind(vm, BATCH_ADDR)
        queue: ExecQueue = xe_client.create_exec_queue(vm, engine_class)
        queue.exec(address=BATCH_ADDR)
        yield vm
    finally:
        for q in list(vm.exec_queues.values()):
            _quietly(q.destroy)
        _quietly(vm.destroy)
        batch.close()


class RebindTrigger:
    """``trigger_rebind(vm)``: make the kernel queue ``vm``'s rebind worker.

    Fake: ``evict`` (the control surface; TTM evicts the VM's BOs and signals its
    preempt fences).  Kernel: a userptr invalidation -- a scratch range of process
    memory is bound in the VM on first use, then ``madvise(MADV_DONTNEED)`` drops
    its pages; the MMU notifier preempts the VM's queues and the rebind worker
    runs to re-pin it.  Either way nothing fails by itself: arm ``inject_enospc``
    (or apply ``memory_pressure``) first for the worker to report an error.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._scratch: dict[tuple[int, int], tuple[Vm, UserMemory]] = {}

    def __call__(self, vm: Vm) -> None:
        if self.backend.name == "fake":
            self.backend.evict(vm.device.fd, vm.id)  # type: ignore[attr-defined]
            return
        key = (vm.device.fd, vm.id)
        if key not in self._scratch:
            mem = UserMemory(SCRATCH_SIZE)
            try:
                mem.bind(vm, SCRATCH_ADDR)
            except BaseException:
                mem.close()
                raise
            self._scratch[key] = (vm, mem)
        self._scratch[key][1].invalidate()

    def close(self) -> None:
        for vm, mem in self._scratch.values():
            if not vm.destroyed and not vm.device.closed:
                _quietly(functools.partial(vm.unbind, SCRATCH_ADDR, SCRATCH_SIZE))
            mem.close()
        self._scratch.clear()


@pytest.fixture
def trigger_rebind(xe_backend: Backend) -> Iterator[RebindTrigger]:
    """``trigger_rebind(vm)`` queues ``vm``'s rebind worker: fake evict, or a userptr invalidation on hardware."""
    trigger = RebindTrigger(xe_backend)
    try:
        yield trigger
    finally:
        trigger.close()


class MemoryPressure:
    """A second DRM client on the same backend that takes VRAM and gives it back.

    Its BOs are bound in a VM of its own, so they are resident (the fake backs a
    BO when it is bound) and compete with the test's VMs: TTM may evict the
    test's BOs to place them, which queues the victims' rebind workers.
    """

    CHUNK = 16 << 20
    ALIGN = 2 << 20

    def __init__(self, backend: Backend, node: str) -> None:
        self.client = Device.open(node, backend=backend)
        self.bos: list[Bo] = []
        self._vm: Vm | None = None
        self._next_addr = 1 << 32

    @property
    def allocated(self) -> int:
        """Bytes this client holds now."""
        return sum(bo.size for bo in self.bos)

    def allocate(self, nbytes: int, placement: int | str = "vram") -> Bo:
        """One BO of ``nbytes``, bound (so resident); the driver's errno on failure (ENOSPC, ENOMEM)."""
        if self._vm is None:
            self._vm = self.client.create_vm()
        bo = self.client.create_bo(nbytes, placement)
        try:
            self._vm.bind(bo, self._next_addr)
        except BaseException:
            bo.close()
            raise
        self._next_addr += -(-nbytes // self.ALIGN) * self.ALIGN
        self.bos.append(bo)
        return bo

    def fill(self, leave: int = 0, chunk: int | None = None) -> int:
        """Allocate VRAM until at most ``leave`` bytes are free (or the driver refuses); bytes taken."""
        chunk = chunk or self.CHUNK
        granule = max((r.min_page_size for r in self.client.vram_regions()), default=4096)
        granule = max(granule, 64 << 10)
        taken = 0
        while True:
            want = (self.client.vram_free() - leave) // granule * granule
            if want <= 0:
                return taken
            try:
                taken += self.allocate(min(chunk, want)).size
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.ENOMEM, errno.E2BIG):
                    return taken
                raise

    def release(self, nbytes: int | None = None) -> int:
        """Give back the newest BOs until ``nbytes`` are freed (None: all); bytes freed."""
        freed = 0
        while self.bos and (nbytes is None or freed < nbytes):
            bo = self.bos.pop()
            vm = self._vm
            if vm is not None:
                _quietly(functools.partial(vm.unbind_all, bo))
            _quietly(bo.close)
            freed += bo.size
        return freed

    def close(self) -> None:
        try:
            self.release()
            if self._vm is not None:
                _quietly(self._vm.destroy)
        finally:
            self.client.close()

    def __repr__(self) -> str:
        return f"<MemoryPressure {len(self.bos)} BOs, {self.allocated >> 20} MiB on {self.client!r}>"


@pytest.fixture
def memory_pressure(xe_backend: Backend, xe_node: str) -> Iterator[MemoryPressure]:
    """A second client allocating VRAM on the session backend (``.fill(leave=)``, ``.allocate(n)``,
    ``.release()``); everything it holds is released and its DRM file closed at teardown."""
    pressure = MemoryPressure(xe_backend, xe_node)
    try:
        yield pressure
    finally:
        pressure.close()


# ======================================================================================
# function fixtures: events and fault injection
# ======================================================================================

#: The watch_id ``xe_watch`` subscribes with (not 0, so a test can see it carried in the records).
XE_WATCH_ID = 1


@pytest.fixture
def xe_watch(xe_client: Device) -> Iterator[Watch]:
    """A notification pipe subscribed to ``xe_client`` with watch_id ``XE_WATCH_ID`` (1).

    It sees the events of the VMs of ``xe_client`` -- ``restartable_vm``,
    ``busy_vm`` and whatever the test creates on ``xe_client``.  Non-blocking;
    ``xe_watch.poll(timeout=5)`` waits for records.  Closed at teardown.
    """
    with xe_client.watch(watch_id=XE_WATCH_ID) as watch:
        yield watch


class ListenerProbe:
    """``xe_listener``: a running :class:`~xeclient.listener.Listener` on ``xe_watch`` that records.

    Every event goes to :attr:`events` (a queue, in order); :meth:`wait_for`
    takes the next event of a type.  Handler exceptions -- of handlers the test
    adds with ``xe_listener.listener.on(...)`` -- are kept in :attr:`errors` and
    fail the test at teardown unless the test clears them.
    """

    def __init__(self, watch: Watch) -> None:
        from .listener import Listener

        self.watch = watch
        self.events: queue.Queue[Event] = queue.Queue()
        self.errors: list[tuple[BaseException, Event]] = []
        self.listener = Listener(watch, self.events.put, on_error=self._on_error, name="xe-test-listener")

    def _on_error(self, exc: BaseException, event: Event) -> None:
        self.errors.append((exc, event))

    def wait_for(self, event_type: type[E], timeout: float = 5.0) -> E:
        """The next event of ``event_type`` (others before it are dropped); fails the test on timeout."""
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(left, 0.0))
            except queue.Empty:
                pytest.fail(f"no {event_type.__name__} within {timeout} s (saw {seen or 'nothing'})", pytrace=False)
            if isinstance(event, event_type):
                return event
            seen.append(event)

    def __repr__(self) -> str:
        return f"<ListenerProbe {self.listener!r}, {self.events.qsize()} events queued>"


@pytest.fixture
def xe_listener(xe_watch: Watch) -> Iterator[ListenerProbe]:
    """A started listener on ``xe_watch`` recording every event (see :class:`ListenerProbe`).

    Teardown stops and joins its threads, then fails the test if a handler raised.
    """
    probe = ListenerProbe(xe_watch)
    probe.listener.start()
    try:
        yield probe
    finally:
        probe.listener.destroy()
    if probe.errors:
        exc, event = probe.errors[0]
        pytest.fail(f"{len(probe.errors)} listener handler(s) raised; first: {exc!r} on {event!r}", pytrace=False)


@pytest.fixture
def fault_injector(xe_client: Device, pytestconfig: pytest.Config) -> Iterator[FaultInjector]:
    """The ``rebind_enospc`` fault attribute of the device under test, disarmed at teardown.

    Fake: its control surface.  Kernel: the debugfs fault-attr directory
    (``--xe-fault-dir``, else discovered under /sys/kernel/debug/dri); the test
    is skipped with the reason when there is none or it cannot be written.
    """
    from .faults import FaultInjectionUnavailable
    from .faults import fault_injector as make_injector

    fault_dir = xe_session(pytestconfig).options.fault_dir
    try:
        injector = make_injector(xe_client, fault_dir=fault_dir)
        injector.disarm()  # also proves it can be written (root, debugfs mounted)
    except FaultInjectionUnavailable as exc:
        pytest.skip(f"no rebind_enospc fault injection on {xe_client.path}: {exc}")
    try:
        yield injector
    finally:
        _quietly(injector.disarm)


@pytest.fixture
def inject_enospc(fault_injector: FaultInjector) -> Callable[..., None]:
    """``inject_enospc(times=1, probability=100)``: the next rebind-worker run(s) fail with -ENOSPC.

    Arms ``rebind_enospc`` (fake: control surface; kernel: debugfs, or the test is
    skipped with the reason); disarmed at teardown.  Pair it with
    ``trigger_rebind(vm)`` on a ``busy_vm`` to get a VM_ERR.
    """

    def inject(times: int = 1, probability: int = 100) -> None:
        fault_injector.arm(probability=probability, times=times)

    return inject


# ======================================================================================
# hygiene: thread and descriptor leak checks
# ======================================================================================


def _fd_table() -> dict[int, str]:
    table = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            table[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the directory descriptor listdir used, closed already
            continue
    return table


def _reachable_ids(root: object, depth: int = 4) -> set[int]:
    """ids of objects reachable from ``root`` through attributes and containers (bounded)."""
    seen: set[int] = set()
    frontier: list[object] = [root]
    for _ in range(depth):
        nxt: list[object] = []
        for obj in frontier:
            if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type)):
                continue
            seen.add(id(obj))
            if isinstance(obj, dict):
                nxt.extend(obj.values())
            elif isinstance(obj, (list, tuple, set, frozenset)):
                nxt.extend(obj)
            else:
                with contextlib.suppress(TypeError):
                    nxt.extend(vars(obj).values())
        frontier = nxt
    return seen


def _thread_owner(thread: threading.Thread) -> object:
    target = getattr(thread, "_target", None)
    return getattr(target, "__self__", None) or thread


def _session_threads(config: pytest.Config, threads: list[threading.Thread]) -> list[threading.Thread]:
    """Threads that belong to the session backend (e.g. the fake's lazily started worker)."""
    state = config.stash.get(XE_SESSION, None)
    if state is None or state.backend is None or not threads:
        return []
    owned = _reachable_ids(state.backend)
    return [t for t in threads if id(_thread_owner(t)) in owned or id(t) in owned]


@pytest.fixture
def xe_no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail (at teardown) a test that leaves a thread running or a descriptor open.

    Compares ``threading.enumerate()`` and ``/proc/self/fd`` before and after
    the test, after every function-scoped fixture has been torn down; threads
    and descriptors still being torn down get ``LEAK_GRACE_S`` seconds.  Threads
    owned by the session backend (the fake's worker, started on first use) are
    not leaks.  Session- and module-scoped fixtures are set up before this
    fixture and torn down after it, so what they hold is not counted.  Make it
    autouse in a conftest::

        @pytest.fixture(autouse=True)
        def _no_leaks(xe_no_leaks: None) -> None: ...
    """
    threads_before = set(threading.enumerate())
    fds_before = _fd_table()
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    new_threads: list[threading.Thread] = []
    leaked_fds: dict[int, str] = {}
    while True:
        new_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        new_threads = [t for t in new_threads if t not in _session_threads(request.config, new_threads)]
        after = _fd_table()
        leaked_fds = {fd: path for fd, path in after.items() if fds_before.get(fd) != path}
        if (not new_threads and not leaked_fds) or time.monotonic() >= deadline:
            break
        gc.collect()  # an unreferenced object whose finalizer closes its descriptor
        if new_threads:
            new_threads[0].join(min(0.05, max(0.0, deadline - time.monotonic())))
        else:
            time.sleep(0.02)
    problems = []
    if new_threads:
        problems.append("leaked thread(s): " + ", ".join(f"{t.name} (daemon={t.daemon})" for t in new_threads))
    if leaked_fds:
        problems.append(
            "leaked descriptor(s): " + ", ".join(f"{fd} -> {path}" for fd, path in sorted(leaked_fds.items()))
        )
    if problems:
        pytest.fail(f"{request.node.nodeid}: " + "; ".join(problems), pytrace=False)


def _quietly(func: Callable[[], object]) -> None:
    """Teardown step that must not mask the test's own failure (the object may be gone already)."""
    with contextlib.suppress(OSError, ValueError):
        func()
