"""``Device``: one open DRM file on an Xe render node, and the objects made from it.

Queries follow the kernel's size-then-data protocol.  Static answers (config,
engines, GT list, version) are cached per device; memory-region usage is
re-read on every call because it is what a recovery policy sizes its trim by.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, NamedTuple

from ._ioctl import annotate, struct_ioctl
from .backends import Backend, open_backend
from .errors import IoctlError, NoDeviceError, SeriesMissingError, WatchQueueUnsupportedError
from .uapi import ffi
from .uapi.constants import O_NOTIFICATION_PIPE, ConfigFlag, ConfigIndex, EngineClass, MemClass, QueryType
from .uapi.requests import (
    DRM_IOCTL_VERSION,
    DRM_IOCTL_XE_DEVICE_QUERY,
    DRM_IOCTL_XE_VM_RESTART,
    DRM_IOCTL_XE_WATCH_QUEUE,
)

if TYPE_CHECKING:
    from .bo import Bo
    from .exec_queue import ExecQueue
    from .vm import Vm
    from .watch import TypeFilter, Watch


class DrmVersion(NamedTuple):
    name: str
    major: int
    minor: int
    patchlevel: int
    date: str
    desc: str

    def __str__(self) -> str:
        return f"{self.name} {self.major}.{self.minor}.{self.patchlevel} ({self.desc})"


class DeviceConfig(NamedTuple):
    device_id: int
    revision: int
    flags: ConfigFlag
    min_alignment: int
    va_bits: int
    max_exec_queue_priority: int

    @property
    def pci_id(self) -> str:
        return f"8086:{self.device_id:04x}"


class Engine(NamedTuple):
    engine_class: EngineClass
    engine_instance: int
    gt_id: int

    def __str__(self) -> str:
        return f"{self.engine_class.name.lower()}{self.engine_instance}@gt{self.gt_id}"


class MemRegion(NamedTuple):
    mem_class: MemClass
    instance: int
    min_page_size: int
    total_size: int
    used: int
    cpu_visible_size: int
    cpu_visible_used: int

    @property
    def free(self) -> int:
        return max(0, self.total_size - self.used)


class Gt(NamedTuple):
    type: int
    tile_id: int
    gt_id: int
    reference_clock: int
    near_mem_regions: int
    far_mem_regions: int


class Features(NamedTuple):
    """Whether the running driver carries the VM-error/restart series (probed once)."""

    vm_restart: bool
    watch_queue: bool
    notification_pipes: bool

    @property
    def series(self) -> bool:
        return self.vm_restart and self.watch_queue


class Device:
    """An open Xe DRM file.  Use :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, backend: Backend, fd: int, path: str, *, owns_backend: bool = False) -> None:
        self.backend = backend
        self.fd = fd
        self.path = path
        self.closed = False
        self.vms: dict[int, Vm] = {}
        self._owns_backend = owns_backend
        self._cache: dict[str, Any] = {}

    @classmethod
    def open(cls, path: str | None = None, *, backend: Backend | str | None = None, **backend_options: Any) -> Device:
        """Open ``path`` (default: the first xe render node) on ``backend``.

        ``backend`` is a :class:`Backend` to share (several DRM files on one
        device: pass ``other.backend``), or a name for :func:`open_backend`, in
        which case the device owns the backend and shuts it down on close.
        Raises :class:`NoDeviceError` when there is no xe node, or the node is
        driven by another driver (the message names it).
        """
        owns = not isinstance(backend, Backend)
        be: Backend = backend if isinstance(backend, Backend) else open_backend(backend, **backend_options)
        try:
            if path is None:
                nodes = be.render_nodes()
                if not nodes:
                    raise NoDeviceError("No Xe device: no render node is bound to the xe driver")
                path = nodes[0]
            fd = be.open(path, os.O_RDWR | os.O_CLOEXEC)
            device = cls(be, fd, path, owns_backend=owns)
            try:
                version = device.version()
            except OSError:
                device.close()
                raise
            if version.name != "xe":
                device.close()
                raise NoDeviceError(
                    f"{path} is driven by {version.name!r} ({version.desc}), not by xe: it is not an Xe device"
                )
            return device
        except BaseException:
            if owns:
                shutdown = getattr(be, "shutdown", None)
                if shutdown is not None:
                    shutdown()
            raise

    # --- raw access -------------------------------------------------------------------
    def ioctl(self, request: int, cdata: Any, **context: object) -> int:
        """Issue ``request`` with struct ``cdata``; errors name the call and ``context``."""
        self._check_open()
        return struct_ioctl(self.backend, self.fd, request, cdata, dict(context))

    def series_ioctl(self, request: int, cdata: Any, context: dict[str, object]) -> int:
        """An ioctl of the series: a bare EINVAL is explained when the driver lacks it."""
        self._check_open()
        try:
            return struct_ioctl(self.backend, self.fd, request, cdata, context)
        except IoctlError as exc:
            if exc.errno == errno.EINVAL:
                features = self.features()
                name = "DRM_IOCTL_XE_VM_RESTART" if request == DRM_IOCTL_XE_VM_RESTART else "DRM_IOCTL_XE_WATCH_QUEUE"
                present = features.vm_restart if request == DRM_IOCTL_XE_VM_RESTART else features.watch_queue
                if not present:
                    raise annotate(
                        exc,
                        context,
                        SeriesMissingError,
                        f"This kernel's xe driver has no {name} (it predates the VM-error/restart series)",
                    ) from None
            raise

    # --- identification -----------------------------------------------------------------
    def version(self) -> DrmVersion:
        """DRM_IOCTL_VERSION with the length-then-copy protocol (cached)."""
        if "version" not in self._cache:
            self._check_open()
            args = ffi.new("struct drm_version *")
            struct_ioctl(self.backend, self.fd, DRM_IOCTL_VERSION, args, {})
            bufs = {f: ffi.new("char[]", int(getattr(args, f + "_len")) + 1) for f in ("name", "date", "desc")}
            for f, buf in bufs.items():
                setattr(args, f, buf)
            struct_ioctl(self.backend, self.fd, DRM_IOCTL_VERSION, args, {})
            text = {
                f: ffi.string(buf, int(getattr(args, f + "_len"))).decode(errors="replace") for f, buf in bufs.items()
            }
            self._cache["version"] = DrmVersion(
                text["name"],
                args.version_major,
                args.version_minor,
                args.version_patchlevel,
                text["date"],
                text["desc"],
            )
        return self._cache["version"]  # type: ignore[no-any-return]

    def features(self) -> Features:
        """Probe once whether VM_RESTART and WATCH_QUEUE exist (no side effect left behind).

        VM_RESTART with vm_id 0 answers ENOENT on a series kernel (id 0 never names
        a VM) and EINVAL from drm_ioctl on an older one.  WATCH_QUEUE is probed by
        subscribing a throw-away notification pipe; closing it detaches the watch.
        """
        if "features" not in self._cache:
            self._check_open()
            probe = ffi.new("struct drm_xe_vm_restart *")
            try:
                self.backend.ioctl(self.fd, DRM_IOCTL_XE_VM_RESTART, ffi.buffer(probe))
                vm_restart = True
            except OSError as exc:
                vm_restart = exc.errno != errno.EINVAL
            watch_queue = pipes = False
            try:
                rfd, wfd = self.backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
            except WatchQueueUnsupportedError:
                pass
            else:
                pipes = True
                try:
                    sub = ffi.new("struct drm_xe_watch_queue *")
                    sub.fd = rfd
                    self.backend.ioctl(self.fd, DRM_IOCTL_XE_WATCH_QUEUE, ffi.buffer(sub))
                    watch_queue = True
                except OSError as exc:
                    watch_queue = exc.errno != errno.EINVAL
                finally:
                    self.backend.close(wfd)
                    self.backend.close(rfd)
            self._cache["features"] = Features(vm_restart, watch_queue, pipes)
        return self._cache["features"]  # type: ignore[no-any-return]

    # --- queries ------------------------------------------------------------------------
    def query(self, query: int) -> bytes:
        """DEVICE_QUERY with the size-then-data protocol; the raw reply."""
        self._check_open()
        args = ffi.new("struct drm_xe_device_query *")
        args.query = query
        name = QueryType(query).name if query in QueryType._value2member_map_ else str(query)
        struct_ioctl(self.backend, self.fd, DRM_IOCTL_XE_DEVICE_QUERY, args, {"query": name})
        size = int(args.size)
        data = ffi.new("char[]", size)
        args.data = int(ffi.cast("uintptr_t", data))
        struct_ioctl(self.backend, self.fd, DRM_IOCTL_XE_DEVICE_QUERY, args, {"query": name, "size": size})
        return bytes(ffi.buffer(data, size))

    def query_config(self) -> DeviceConfig:
        if "config" not in self._cache:
            raw = self.query(QueryType.CONFIG)
            cfg = ffi.cast("struct drm_xe_query_config *", ffi.from_buffer(raw))
            info = [int(cfg.info[i]) for i in range(cfg.num_params)]
            info += [0] * (len(ConfigIndex) - len(info))
            rev_dev = info[ConfigIndex.REV_AND_DEVICE_ID]
            self._cache["config"] = DeviceConfig(
                device_id=rev_dev & 0xFFFF,
                revision=(rev_dev >> 16) & 0xFF,
                flags=ConfigFlag(info[ConfigIndex.FLAGS]),
                min_alignment=info[ConfigIndex.MIN_ALIGNMENT],
                va_bits=info[ConfigIndex.VA_BITS],
                max_exec_queue_priority=info[ConfigIndex.MAX_EXEC_QUEUE_PRIORITY],
            )
        return self._cache["config"]  # type: ignore[no-any-return]

    def query_engines(self) -> list[Engine]:
        if "engines" not in self._cache:
            raw = self.query(QueryType.ENGINES)
            q = ffi.cast("struct drm_xe_query_engines *", ffi.from_buffer(raw))
            self._cache["engines"] = [
                Engine(EngineClass(e.instance.engine_class), e.instance.engine_instance, e.instance.gt_id)
                for e in (q.engines[i] for i in range(q.num_engines))
            ]
        return list(self._cache["engines"])

    def query_gt_list(self) -> list[Gt]:
        if "gt_list" not in self._cache:
            raw = self.query(QueryType.GT_LIST)
            q = ffi.cast("struct drm_xe_query_gt_list *", ffi.from_buffer(raw))
            self._cache["gt_list"] = [
                Gt(g.type, g.tile_id, g.gt_id, g.reference_clock, g.near_mem_regions, g.far_mem_regions)
                for g in (q.gt_list[i] for i in range(q.num_gt))
            ]
        return list(self._cache["gt_list"])

    def query_mem_regions(self) -> list[MemRegion]:
        """Memory regions with live usage (never cached)."""
        raw = self.query(QueryType.MEM_REGIONS)
        q = ffi.cast("struct drm_xe_query_mem_regions *", ffi.from_buffer(raw))
        regions = [
            MemRegion(
                MemClass(r.mem_class),
                r.instance,
                r.min_page_size,
                r.total_size,
                r.used,
                r.cpu_visible_size,
                r.cpu_visible_used,
            )
            for r in (q.mem_regions[i] for i in range(q.num_mem_regions))
        ]
        self._cache["region_layout"] = [(r.mem_class, r.instance) for r in regions]
        return regions

    def vram_regions(self) -> list[MemRegion]:
        return [r for r in self.query_mem_regions() if r.mem_class == MemClass.VRAM]

    def vram_free(self) -> int:
        """Free VRAM in bytes over all VRAM regions, read now."""
        return sum(r.free for r in self.vram_regions())

    def vram_mask(self) -> int:
        return self._placement_bits(MemClass.VRAM)

    def sysmem_mask(self) -> int:
        return self._placement_bits(MemClass.SYSMEM)

    def _placement_bits(self, mem_class: MemClass) -> int:
        if "region_layout" not in self._cache:
            self.query_mem_regions()
        return sum(1 << inst for cls, inst in self._cache["region_layout"] if cls == mem_class)

    def placement_mask(self, placement: int | str) -> int:
        """Region-instance mask for "vram" (first VRAM region), "sysmem", "any", or an int."""
        if isinstance(placement, int):
            return placement
        if placement == "sysmem":
            return self.sysmem_mask()
        if placement == "any":
            return self.sysmem_mask() | self.vram_mask()
        if placement == "vram":
            vram = self.vram_mask()
            if not vram:
                raise NoDeviceError(
                    f"{self.path} has no VRAM region (an integrated part); use placement='sysmem'", errno.EINVAL
                )
            return vram & -vram
        raise ValueError(f"unknown placement {placement!r}: use 'vram', 'sysmem', 'any' or a region mask")

    # --- object factories ---------------------------------------------------------------
    def create_vm(self, flags: int = 0) -> Vm:
        from .vm import Vm

        self._check_open()
        return Vm.create(self, flags)

    def create_bo(
        self,
        size: int,
        placement: int | str = "vram",
        *,
        cpu_caching: int | None = None,
        flags: int = 0,
        vm: Vm | None = None,
    ) -> Bo:
        from .bo import Bo

        self._check_open()
        return Bo.create(self, size, placement, cpu_caching=cpu_caching, flags=flags, vm=vm)

    def create_exec_queue(
        self,
        vm: Vm,
        engine_class: int = EngineClass.COMPUTE,
        engine_instance: int = 0,
        *,
        gt_id: int = 0,
        flags: int = 0,
    ) -> ExecQueue:
        from .exec_queue import ExecQueue

        self._check_open()
        return ExecQueue.create(vm, engine_class, engine_instance, gt_id=gt_id, flags=flags)

    def watch(
        self, watch_id: int = 0, *, nr_notes: int | None = None, filters: list[TypeFilter] | str | None = "xe"
    ) -> Watch:
        """A notification pipe subscribed to this DRM file's events with ``watch_id``."""
        from .watch import Watch

        self._check_open()
        watch = Watch(self.backend, nr_notes=nr_notes, filters=filters)
        try:
            watch.subscribe(self, watch_id)
        except BaseException:
            watch.close()
            raise
        return watch

    # --- lifetime ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self!r} is closed")

    def close(self) -> None:
        """Close the DRM file (the kernel tears down its VMs, queues and BOs); idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.backend.close(self.fd)
        finally:
            if self._owns_backend:
                shutdown = getattr(self.backend, "shutdown", None)
                if shutdown is not None:
                    shutdown()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fd}"
        return f"<Device {self.path} {self.backend.name} {state}>"
