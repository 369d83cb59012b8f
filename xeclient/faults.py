"""Fault injection for the rebind worker: ``rebind_enospc`` (series patch 2/4, spec 6.5).

A :class:`FaultInjector` arms one kernel fault attribute the way its debugfs
directory does: ``probability`` (percent), ``times`` (failures left, -1 for
unlimited), ``interval`` (fail at most every Nth call), ``space`` and
``verbose``.  When ``rebind_enospc`` fires, the preempt-rebind worker fails with
-ENOSPC, which the series treats like a real out-of-VRAM: a RESTARTABLE VM is
paused and a VM_ERR is posted.

Two implementations, picked by :func:`fault_injector`:

* :class:`FakeFaultInjector` -- the fake driver's control surface
  (``backend.inject(name, ...)``).  The fake kernel lives in the process, so
  what is armed lasts as long as the process: use it from tests, or through
  ``xeclient demo --trigger inject`` / ``xeclient inject ... --then-demo``.
* :class:`DebugfsFaultInjector` -- a real kernel's fault-attr directory.  Its
  name is not known for sure (the patch was not found; ``fail_rebind_enospc``
  or ``rebind_enospc`` are likely), so it is discovered: the first directory
  under ``/sys/kernel/debug/dri/<minor or PCI address>/`` whose name contains
  both "rebind" and "enospc" and which has a ``probability`` file.  Pass
  ``fault_dir`` to name it yourself.

Failures to find or write the directory raise :class:`FaultInjectionUnavailable`,
an ``OSError`` whose message names the path and says what to do.
"""

from __future__ import annotations

import errno
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from .errors import XeError

if TYPE_CHECKING:
    from .backends import Backend
    from .device import Device

log = logging.getLogger("xeclient.faults")

#: The series' fault attribute (``static DECLARE_FAULT_ATTR(rebind_enospc)`` in xe_vm.c).
REBIND_ENOSPC = "rebind_enospc"
DEBUGFS_ROOT = "/sys/kernel/debug"
SYSFS_ROOT = "/sys"
#: Files written to arm an attribute, in this order: ``probability`` last, so the
#: attribute is armed only once the rest is in place.
ATTR_FILES = ("interval", "times", "space", "verbose", "probability")


class FaultInjectionUnavailable(XeError):
    """Fault injection cannot be used here; the message names the path (``call``) and the fix."""

    def __init__(self, err: int, path: str, hint: str) -> None:
        super().__init__(err, path, hint)

    def __str__(self) -> str:
        return self.hint or super().__str__()


def check_settings(probability: int, times: int, interval: int, space: int) -> None:
    """The ranges ``lib/fault-inject.c`` accepts; ValueError otherwise."""
    if not 0 <= probability <= 100:
        raise ValueError(f"probability is a percentage (0..100), not {probability}")
    if times < -1:
        raise ValueError(f"times must be -1 (unlimited) or >= 0, not {times}")
    if interval < 1:
        raise ValueError(f"interval must be >= 1, not {interval}")
    if space < 0:
        raise ValueError(f"space must be >= 0, not {space}")


class FaultInjector(ABC):
    """One fault attribute of one device."""

    #: the attribute ("rebind_enospc")
    name: str
    #: where it is armed ("fake backend", or the debugfs directory)
    where: str
    #: True when arming lasts beyond this process (a real kernel)
    persistent: bool

    @abstractmethod
    def arm(
        self, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0, verbose: int | None = None
    ) -> None:
        """Arm the attribute (writing its probability/times/interval/space/verbose)."""

    def disarm(self) -> None:
        """Stop it firing: probability 0, times 0."""
        self.arm(probability=0, times=0)

    @abstractmethod
    def status(self) -> dict[str, int | None]:
        """The attribute's current settings (None for what cannot be read)."""

    @contextmanager
    def armed(
        self, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0
    ) -> Iterator[FaultInjector]:
        """Arm for the duration of a ``with`` block, then disarm."""
        self.arm(probability=probability, times=times, interval=interval, space=space)
        try:
            yield self
        finally:
            self.disarm()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self.where}>"


class FakeFaultInjector(FaultInjector):
    """Arms the fake driver's attribute through ``backend.inject`` (lasts for the process)."""

    persistent = False

    def __init__(self, backend: Backend, name: str = REBIND_ENOSPC) -> None:
        if not callable(getattr(backend, "inject", None)):
            raise TypeError(f"{backend!r} has no fault-injection control surface")
        self.backend = backend
        self.name = name
        self.where = f"{backend.name} backend"

    def arm(
        self, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0, verbose: int | None = None
    ) -> None:
        check_settings(probability, times, interval, space)
        try:
            self.backend.inject(self.name, probability=probability, times=times, interval=interval, space=space)  # type: ignore[attr-defined]
        except KeyError as exc:
            raise FaultInjectionUnavailable(
                errno.ENOENT, self.where, str(exc.args[0]) if exc.args else str(exc)
            ) from None

    def status(self) -> dict[str, int | None]:
        # The fake's registry is the only place its settings live; read it if it is there.
        attr: Any = None
        registry = getattr(getattr(self.backend, "device", None), "faults", None)
        if registry is not None:
            try:
                attr = registry[self.name]
            except KeyError:
                attr = None
        keys = ("probability", "times", "interval", "space", "fired")
        return {k: (int(getattr(attr, k)) if attr is not None and hasattr(attr, k) else None) for k in keys}


class DebugfsFaultInjector(FaultInjector):
    """Arms a kernel fault-attr directory (``/sys/kernel/debug/dri/<minor>/<dir>``)."""

    persistent = True

    def __init__(self, directory: str, name: str = REBIND_ENOSPC) -> None:
        self.directory = directory
        self.name = name
        self.where = directory

    @classmethod
    def discover(
        cls,
        device_path: str | None = None,
        *,
        name: str = REBIND_ENOSPC,
        fault_dir: str | None = None,
        debugfs: str = DEBUGFS_ROOT,
        sysfs: str = SYSFS_ROOT,
    ) -> DebugfsFaultInjector:
        """Find the attribute's directory for the device at ``device_path`` (a render node).

        ``fault_dir`` is a path (absolute, or relative to the device's debugfs
        directory) or a directory name to look for; without it the name is found
        by the words of ``name`` ("rebind", "enospc").
        """
        if fault_dir and os.path.isabs(fault_dir):
            cls._check_dir(fault_dir)
            return cls(fault_dir, name)
        dri = os.path.join(debugfs, "dri")
        entries = _list_dri(debugfs, dri)
        preferred = _device_debugfs_names(device_path, sysfs) if device_path else []
        ordered = [n for n in preferred if n in entries] + [n for n in entries if n not in preferred]
        searched: list[str] = []
        words = [w for w in name.lower().replace("-", "_").split("_") if w and w != "fail"]
        for entry in ordered:
            base = os.path.join(dri, entry)
            if not os.path.isdir(base):
                continue
            searched.append(base)
            if fault_dir:
                candidate = os.path.join(base, fault_dir)
                if os.path.isfile(os.path.join(candidate, "probability")):
                    return cls(candidate, name)
                continue
            try:
                subdirs = sorted(os.listdir(base))
            except OSError:
                continue
            for sub in subdirs:
                low = sub.lower()
                if all(w in low for w in words) and os.path.isfile(os.path.join(base, sub, "probability")):
                    return cls(os.path.join(base, sub), name)
        where = ", ".join(searched) or dri
        what = (
            f"a directory named {fault_dir!r}"
            if fault_dir
            else f"a fault-attr directory whose name contains {' and '.join(repr(w) for w in words)}"
        )
        raise FaultInjectionUnavailable(
            errno.ENOENT,
            dri,
            f"found no {what} under {where}: the kernel needs CONFIG_FAULT_INJECTION_DEBUG_FS=y and the series' patch 2/4 "
            '("drm/xe: Add fault injection for rebind worker -ENOSPC"); if the directory has another name, pass --fault-dir',
        )

    @staticmethod
    def _check_dir(path: str) -> None:
        if not os.path.isdir(path):
            raise FaultInjectionUnavailable(
                errno.ENOENT, path, f"{path} does not exist: check the --fault-dir path (and that debugfs is mounted)"
            )
        if not os.path.isfile(os.path.join(path, "probability")):
            raise FaultInjectionUnavailable(
                errno.ENOENT, path, f"{path} is not a fault-attr directory (it has no 'probability' file)"
            )

    def _write(self, key: str, value: int) -> None:
        path = os.path.join(self.directory, key)
        try:
            with open(path, "w") as f:
                f.write(f"{value}\n")
        except PermissionError:
            raise FaultInjectionUnavailable(
                errno.EACCES, path, f"cannot write {path}: run this as root (sudo xeclient inject ...)"
            ) from None
        except FileNotFoundError:
            raise FaultInjectionUnavailable(
                errno.ENOENT, path, f"{path} does not exist: {self.directory} is not a fault-attr directory"
            ) from None
        except OSError as exc:
            raise FaultInjectionUnavailable(
                exc.errno or errno.EIO, path, f"writing {value} to {path} failed: {exc.strerror}"
            ) from None

    def arm(
        self, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0, verbose: int | None = None
    ) -> None:
        check_settings(probability, times, interval, space)
        values = {"interval": interval, "times": times, "space": space, "verbose": verbose, "probability": probability}
        for key in ATTR_FILES:
            value = values[key]
            if value is None:
                continue
            if key == "verbose" and not os.path.exists(os.path.join(self.directory, key)):
                continue
            self._write(key, value)
        log.info(
            "armed %s: probability=%d times=%d interval=%d space=%d",
            self.directory,
            probability,
            times,
            interval,
            space,
        )

    def status(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for key in ("probability", "times", "interval", "space", "verbose"):
            try:
                with open(os.path.join(self.directory, key)) as f:
                    out[key] = int(f.read().strip() or 0)
            except (OSError, ValueError):
                out[key] = None
        return out


def _root_hint(path: str) -> FaultInjectionUnavailable:
    return FaultInjectionUnavailable(
        errno.EACCES, path, f"{path} is readable only by root: run this as root (sudo xeclient inject ...)"
    )


def _list_dri(debugfs: str, dri: str) -> list[str]:
    """The entries of ``<debugfs>/dri``, or an error saying why they cannot be read."""
    if not os.path.isdir(debugfs):
        raise FaultInjectionUnavailable(
            errno.ENOENT,
            debugfs,
            f"{debugfs} does not exist: this kernel has no debugfs (CONFIG_DEBUG_FS), so no fault injection",
        )
    try:
        top = os.listdir(debugfs)
    except PermissionError:
        raise _root_hint(debugfs) from None
    if not top and not os.path.ismount(debugfs):
        raise FaultInjectionUnavailable(
            errno.ENOENT,
            debugfs,
            f"debugfs is not mounted at {debugfs}: mount it (mount -t debugfs none {debugfs}) and run as root",
        )
    try:
        return sorted(os.listdir(dri))
    except PermissionError:
        raise _root_hint(dri) from None
    except FileNotFoundError:
        raise FaultInjectionUnavailable(
            errno.ENOENT,
            dri,
            f"there is no {dri}: no DRM driver has registered debugfs entries (is the xe module loaded?)",
        ) from None


def _device_debugfs_names(device_path: str, sysfs: str = SYSFS_ROOT) -> list[str]:
    """Debugfs directory names of the device behind a render node: card minors, PCI address."""
    node = os.path.basename(device_path)
    dev_dir = os.path.join(sysfs, "class", "drm", node, "device")
    names: list[str] = []
    try:
        for entry in sorted(os.listdir(os.path.join(dev_dir, "drm"))):
            if entry.startswith("card") and entry[4:].isdigit():
                names.append(entry[4:])
    except OSError:
        pass
    try:
        names.append(os.path.basename(os.path.realpath(dev_dir)))
    except OSError:
        pass
    return names


def fault_injector(
    target: Device | Backend,
    *,
    name: str = REBIND_ENOSPC,
    fault_dir: str | None = None,
    debugfs: str = DEBUGFS_ROOT,
    sysfs: str = SYSFS_ROOT,
) -> FaultInjector:
    """The injector for a device (or backend): the fake's control surface, else debugfs."""
    backend = cast("Backend", getattr(target, "backend", target))
    if callable(getattr(backend, "inject", None)):
        return FakeFaultInjector(backend, name)
    path = getattr(target, "path", None)
    if path is None:
        nodes = backend.render_nodes()
        path = nodes[0] if nodes else None
    return DebugfsFaultInjector.discover(path, name=name, fault_dir=fault_dir, debugfs=debugfs, sysfs=sysfs)
