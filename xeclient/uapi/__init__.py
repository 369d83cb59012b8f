"""The binding layer: one ffi holding every UAPI struct, constants, request codes.

``ffi`` comes from an out-of-line ABI module generated from ``cdefs/*.h`` by
``tools/gen_ffi.py``: importing it needs no C compiler and costs a few ms.
Nothing here touches a device; this is the vocabulary both backends share.
"""

from __future__ import annotations

from . import constants, ioc, requests
from ._ffi_abi import ffi
from .constants import *  # noqa: F403 -- the constants are the public vocabulary
from .requests import REQUESTS, Request, request_name

__all__ = ["ffi", "constants", "ioc", "requests", "REQUESTS", "Request", "request_name"]
__all__ += [n for n in dir(constants) if n.isupper() or (n[0].isupper() and not n.startswith("_"))]
