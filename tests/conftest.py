"""Configuration shared by every test directory.

Hygiene: each test fails (at teardown) if it leaves a thread running or a
descriptor open -- the plugin's ``xe_no_leaks`` check, made autouse here.
Backend selection, markers and the xe fixtures come from the xeclient plugin
(``xeclient.pytest_plugin``, loaded through its ``pytest11`` entry point, or with
``-p xeclient`` when plugin autoloading is disabled).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_leaks(xe_no_leaks: None) -> None:
    """Every test: no leaked thread, no leaked descriptor (see ``xe_no_leaks``)."""
