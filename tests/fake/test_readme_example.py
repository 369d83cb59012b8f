"""README's Python example, executed: on the fake, with an ENOSPC injected as its workload."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

WORKLOAD = """\
        be = dev.backend
        be.inject("rebind_enospc", probability=100, times=1)
        be.evict(dev.fd, vm.id)                    # the rebind worker fails -> VM_ERR
        import time
        deadline = time.monotonic() + 5
        while be.device.vm_state(dev.fd, vm.id) != "active" and time.monotonic() < deadline:
            time.sleep(0.01)
        RESULT["state"] = be.device.vm_state(dev.fd, vm.id)
        RESULT["bindings"] = dict(vm.bindings)
"""


def test_readme_example_recovers_a_vm(monkeypatch: object) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no python example"
    code = block.group(1)
    marker = re.search(r"^        \.\.\..*$", code, re.M)
    assert marker, "the example's workload placeholder (an indented '...') is gone"
    code = code[: marker.start()] + WORKLOAD + code[marker.end() + 1 :]
    result: dict[str, object] = {}
    monkeypatch.setenv("XE_BACKEND", "fake")  # type: ignore[attr-defined]
    exec(compile(code, str(README), "exec"), {"RESULT": result, "__name__": "readme"})
    assert result["state"] == "active", result  # paused by the injected ENOSPC, restarted by the handler
    assert result["bindings"] == {}  # the handler gave the buffer back
