"""``xeclient demo`` on the fake: in-process through ``xeclient.cli.main`` and once as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xeclient.backends.kernel import KernelBackend
from xeclient.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XE_BACKEND", "XE_FAKE_PRESET", "XE_FAULT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_demo_default_recovers_every_incident(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(KernelBackend, "probe", lambda self: "no render node is bound to the xe driver")
    t0 = time.monotonic()
    assert main(["demo"]) == 0
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    assert out.startswith(
        "No Xe device found (no render node is bound to the xe driver); running on the bundled fake driver."
    )
    for n in (1, 2, 3):
        assert f"incident {n}/3" in out
    assert out.count("RECOVERED") == 3 and out.count("VM_RESTART  rebind worker queued") == 3
    assert out.count("running again") == 3
    assert "summary" in out and "latency p99 (us)" in out
    assert "every incident recovered" in out
    assert elapsed < 5


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "fake", "--json", "--incidents", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object, nothing else
    d = json.loads(out)
    assert d["backend"] == "fake" and d["device"] == "/dev/dri/renderD128"
    assert (d["incidents"], d["recovered"], d["fatal"]) == (2, 2, 0)
    assert d["trimmed_bytes"] == 2 * 16 << 20
    lat = d["latency_us"]
    assert set(lat) >= {"p50", "p99", "max"}
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 1_000_000
    assert d["ok"] is True and d["elapsed_s"] < 5
    for detail in d["details"]:
        assert detail["job_state"] == "running" and detail["incident"]["outcome"] == "recovered"


def test_demo_with_fault_injection(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "fake", "--inject", "--incidents", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["recovered"] == 2 and d["trimmed_bytes"] == 0  # VRAM was plentiful: restart without trimming
    assert {x["trigger"] for x in d["details"]} == {"inject"}


def test_demo_reports_an_incident_that_cannot_recover(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--backend", "fake", "--inject", "--times", "-1", "--max-attempts", "2", "--json"])
    assert code == 1
    d = json.loads(capsys.readouterr().out)
    assert d["fatal"] == 1 and d["recovered"] == 0 and d["incidents"] == 1  # it stops at the first fatal incident
    assert d["details"][0]["incident"]["attempts"][-1]["number"] == 2


@pytest.mark.parametrize("policy", ["largest", "priority"])
def test_demo_policies(policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "fake", "--policy", policy, "--incidents", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == policy


def test_demo_on_an_integrated_part(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XE_FAKE_PRESET", "mtl")
    assert main(["demo", "--backend", "fake"]) == 1
    assert "no VRAM" in capsys.readouterr().err


def test_demo_kernel_without_a_device(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(KernelBackend, "render_nodes", lambda self: [])
    monkeypatch.setattr(KernelBackend, "probe", lambda self: "no render node is bound to the xe driver")
    assert main(["demo", "--backend", "kernel"]) == 1
    assert capsys.readouterr().err == "No Xe device: no render node is bound to the xe driver.\n"


def test_demo_as_a_subprocess() -> None:
    exe = shutil.which("xeclient")
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from xeclient.cli import main; sys.exit(main())"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XE_")}
    proc = subprocess.run(
        [*cmd, "demo", "--backend", "fake", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert (d["incidents"], d["recovered"], d["fatal"]) == (3, 3, 0)
    assert d["latency_us"]["max"] is not None
