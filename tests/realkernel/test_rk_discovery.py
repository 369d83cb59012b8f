"""Device discovery on a kernel with DRM drivers but no xe: vgem and vkms in the QEMU guest.

Only the live kernel can answer these (the fake always has an xe node), so every test is marked
``realkernel`` and skipped outside the guest.  The guest kernel has vgem and vkms built in;
``modprobe`` succeeds through the ``modules.builtin`` the harness installs.
"""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

from xeclient.backends.kernel import KernelBackend
from xeclient.cli import main as cli_main
from xeclient.device import Device
from xeclient.errors import NoDeviceError

pytestmark = pytest.mark.realkernel


@pytest.fixture(scope="module")
def drm_nodes() -> list[str]:
    """``modprobe vgem vkms``, then the DRM nodes they created."""
    if os.environ.get("XECLIENT_REALKERNEL") != "1":
        pytest.skip("needs the QEMU guest of tools/realkernel (vgem, vkms); run tools/realkernel/ci.sh")
    for module in ("vgem", "vkms"):
        done = subprocess.run(["modprobe", module], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"modprobe {module}: {done.stderr.strip()}"
    nodes = sorted(glob.glob("/dev/dri/card*") + glob.glob("/dev/dri/renderD*"))
    assert nodes, "vgem/vkms created no /dev/dri node"
    return nodes


def test_drm_version_reads_vgem_and_vkms(drm_nodes: list[str]) -> None:
    """DRM_IOCTL_VERSION through the binding (``Device.version``) on every node."""
    backend = KernelBackend()
    drivers: dict[str, tuple[str, int, str]] = {}
    for path in drm_nodes:
        fd = backend.open(path, os.O_RDWR | os.O_CLOEXEC)
        with Device(backend, fd, path) as dev:
            v = dev.version()
            drivers[os.path.basename(path)] = (v.name, v.major, v.desc)
    names = {name for name, _, _ in drivers.values()}
    assert names == {"vgem", "vkms"}, drivers
    render = {node: d for node, d in drivers.items() if node.startswith("renderD")}
    assert render == {"renderD128": ("vgem", 1, "Virtual GEM provider")}, drivers
    assert ("vkms", 1, "Virtual Kernel Mode Setting") in drivers.values()


def test_kernel_backend_lists_no_xe_node(drm_nodes: list[str]) -> None:
    backend = KernelBackend()
    assert backend.render_nodes() == []
    assert backend.probe() == "no render node is bound to the xe driver"


def test_opening_vgem_as_xe_names_the_driver(drm_nodes: list[str]) -> None:
    """One clear sentence that names the driver found, and no descriptor left open."""
    with pytest.raises(NoDeviceError) as info:
        Device.open("/dev/dri/renderD128", backend=KernelBackend())
    message = str(info.value)
    assert "'vgem'" in message, message
    assert "not by xe" in message, message
    assert "\n" not in message, message
    with pytest.raises(NoDeviceError, match="No Xe device"):
        Device.open(backend=KernelBackend())


def test_cli_info_says_no_xe_device(drm_nodes: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``xeclient info --backend kernel`` (the console script's ``main``) on a machine without xe."""
    rc = cli_main(["info", "--backend", "kernel"])
    out, errtext = capsys.readouterr()
    assert rc != 0
    assert "no xe device" in (out + errtext).lower(), (out, errtext)
