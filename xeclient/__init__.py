"""xeclient: the Intel Xe driver's VM-error notifications and VM restart, from Python.

The typed layer (``Device``, ``Vm``, ``Bo``, ``ExecQueue``, ``Watch``) is imported
eagerly; heavier layers (listener, recovery) load on first attribute access so
that ``import xeclient`` stays cheap (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

from .backends import Backend, open_backend
from .bo import Bo
from .device import Device, DeviceConfig, DrmVersion, Engine, Features, Gt, MemRegion
from .errors import IoctlError, NoDeviceError, SeriesMissingError, WatchQueueUnsupportedError, XeError
from .exec_queue import ExecQueue
from .uapi.constants import BindFlag, BindOp, CpuCaching, EngineClass, MemClass, VmCreateFlag, WatchType
from .vm import Binding, Vm
from .watch import TypeFilter, Watch

__version__ = "0.1.0"

_LAZY = {
    "parse_records": "events",
    "Event": "events",
    "VmError": "events",
    "Loss": "events",
    "Removal": "events",
    "KeyNotification": "events",
    "Unknown": "events",
    "MalformedRecord": "events",
    "Listener": "listener",
    "ListenerStats": "listener",
    "EndReason": "listener",
    "ForkedListenerError": "listener",
    "VmSupervisor": "recovery",
    "WorkingSet": "recovery",
    "RecoveryAgent": "recovery",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xeclient' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Backend",
    "Binding",
    "BindFlag",
    "BindOp",
    "Bo",
    "CpuCaching",
    "Device",
    "DeviceConfig",
    "DrmVersion",
    "Engine",
    "EngineClass",
    "ExecQueue",
    "Features",
    "Gt",
    "IoctlError",
    "MemClass",
    "MemRegion",
    "NoDeviceError",
    "SeriesMissingError",
    "TypeFilter",
    "Vm",
    "VmCreateFlag",
    "Watch",
    "WatchQueueUnsupportedError",
    "WatchType",
    "XeError",
    "open_backend",
    *_LAZY,
]
