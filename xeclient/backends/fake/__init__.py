"""The fallback backend: a pure-Python model of the xe driver (see :mod:`.backend`).

One module per driver file it models, named like the driver, so someone who
knows ``xe_vm.c`` finds ``preempt_rebind_work_func`` in ``xe_vm.py``.
"""

from __future__ import annotations

from .backend import FakeBackend

__all__ = ["FakeBackend"]
