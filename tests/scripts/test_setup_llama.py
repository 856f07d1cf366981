"""Set-up's llama.cpp build: flags from the CPU with AMX off, keyed wheels, a subprocess smoke check, fallbacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from scripts import setup_llama as sl  # noqa: E402

SAPPHIRE = {"sse4_2", "avx", "f16c", "fma", "bmi2", "avx2", "avx_vnni", "avx512f", "avx512cd", "avx512vl",
            "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}
HASWELL = {"sse4_2", "avx", "f16c", "fma", "bmi2", "avx2"}


@pytest.fixture(autouse=True)
def _no_user_flags(monkeypatch):
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.setattr(sl, "has_cuda", lambda: False)
    monkeypatch.setattr(sl, "is_x86", lambda: True)


def test_amx_cpu_keeps_its_vector_extensions_and_never_compiles_amx():
    b = sl.choose_build(flags=SAPPHIRE)
    args = b["cmake_args"].split()
    assert "-DGGML_NATIVE=OFF" in args
    for opt in ("AVX2", "AVX512", "AVX512_VNNI", "AVX512_BF16", "AVX512_VBMI", "AVX_VNNI", "FMA", "F16C"):
        assert f"-DGGML_{opt}=ON" in args
    for amx in ("AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{amx}=OFF" in args and f"-DGGML_{amx}=ON" not in args


def test_avx512_needs_all_five_subsets_and_absent_features_are_off():
    partial = HASWELL | {"avx512f", "avx512cd"}          # no vl/dq/bw: -mavx512vl etc. would fault
    args = sl.choose_build(flags=partial)["cmake_args"].split()
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX2=ON" in args and "-DGGML_AVX_VNNI=OFF" in args


def test_fallback_profiles_drop_extensions():
    avx2 = sl.choose_build("avx2", flags=SAPPHIRE)["cmake_args"].split()
    assert "-DGGML_AVX2=ON" in avx2 and "-DGGML_AVX512=OFF" in avx2
    base = sl.choose_build("baseline", flags=SAPPHIRE)["cmake_args"].split()
    assert "-DGGML_AVX=OFF" in base and "-DGGML_AMX_INT8=OFF" in base


def test_build_key_follows_the_flags():
    a = sl.choose_build(flags=SAPPHIRE)["cmake_args"]
    b = sl.choose_build(flags=HASWELL)["cmake_args"]
    assert sl.build_key("0.3.36", a) != sl.build_key("0.3.36", b)
    assert sl.build_key("0.3.36", a) == sl.build_key("0.3.36", a)
    assert sl.build_key("0.3.36", a) != sl.build_key("0.3.37", a)


def test_user_flags_and_cuda_are_respected(monkeypatch):
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=89")
    assert sl.choose_build(flags=SAPPHIRE) == {"profile": "user", "cmake_args": "-DGGML_CUDA=on "
                                               "-DCMAKE_CUDA_ARCHITECTURES=89", "cpu_features": []}
    monkeypatch.delenv("CMAKE_ARGS")
    monkeypatch.setattr(sl, "has_cuda", lambda: True)
    assert sl.choose_build(flags=SAPPHIRE)["cmake_args"] == "-DGGML_CUDA=on"


def test_requirement_pin_is_read_from_requirements():
    spec, version = sl.requirement_spec(ROOT / "requirements.txt")
    assert spec == f"llama-cpp-python=={version}" and version[0].isdigit()


def _fake_python(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "python"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return p


def test_smoke_reports_a_crash_by_signal_name(tmp_path):
    ok, why, details = sl.smoke(_fake_python(tmp_path, "kill -SEGV $$"))
    assert not ok and "SIGSEGV" in why and "crashed" in why and details["crashed"] is True


def test_smoke_reports_an_error_exit_with_its_last_line(tmp_path):
    ok, why, _ = sl.smoke(_fake_python(tmp_path, "echo 'ImportError: no llama_cpp' >&2; exit 3"))
    assert not ok and "exit 3" in why and "no llama_cpp" in why


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    """ensure() with the expensive steps replaced: records what it built and what the smoke checks answered."""
    rec = tmp_path / "llama-build.json"
    monkeypatch.setattr(sl, "record_path", lambda py: rec)
    monkeypatch.setattr(sl, "cpu_flags", lambda: SAPPHIRE)
    monkeypatch.setattr(sl, "installed_version", lambda py: "0.3.36")
    req = tmp_path / "requirements.txt"
    req.write_text("numpy\nllama-cpp-python[server]==0.3.36\n")
    built: list[str] = []

    def fake_build(py, spec, version, build):
        built.append(build["profile"])
        return tmp_path / f"{build['profile']}.whl"

    monkeypatch.setattr(sl, "build_and_install", fake_build)
    return {"rec": rec, "req": req, "built": built}


def test_a_crashing_build_is_replaced_by_a_conservative_one(fake_env, monkeypatch, capsys):
    answers = iter([(False, "generation crashed the process with SIGSEGV", {"crashed": True}),
                    (True, "ok", {"prompt_tokens": 20, "completion_tokens": 8, "seconds": 0.5, "system_info": "x"})])
    monkeypatch.setattr(sl, "smoke", lambda py: next(answers))
    record = sl.ensure(Path("python"), fake_env["req"])
    assert fake_env["built"] == ["machine", "avx2"]
    assert record["profile"] == "avx2" and json.loads(fake_env["rec"].read_text())["ok"] is True
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if "FAILED" in ln]
    assert len(line) == 1 and "SIGSEGV" in line[0] and "rebuilding" in line[0] and "avx2" in line[0]
    # A verified record for this machine makes the next set-up instant: nothing is built again.
    sl.ensure(Path("python"), fake_env["req"])
    assert fake_env["built"] == ["machine", "avx2"]


def test_when_nothing_works_setup_fails_with_one_clear_line(fake_env, monkeypatch):
    monkeypatch.setattr(sl, "smoke", lambda py: (False, "generation crashed the process with SIGILL",
                                                  {"crashed": True}))
    with pytest.raises(SystemExit) as exc:
        sl.ensure(Path("python"), fake_env["req"])
    assert fake_env["built"] == ["machine", "avx2", "baseline"]
    assert "SIGILL" in str(exc.value) and "cannot generate" in str(exc.value)
    assert not fake_env["rec"].exists()


def test_a_failure_that_is_not_a_crash_stops_without_rebuilding(fake_env, monkeypatch):
    monkeypatch.setattr(sl, "smoke", lambda py: (False, "generation failed (exit 1): ModuleNotFoundError", {}))
    with pytest.raises(SystemExit) as exc:
        sl.ensure(Path("python"), fake_env["req"])
    assert fake_env["built"] == ["machine"] and "ModuleNotFoundError" in str(exc.value)


def test_a_cuda_machine_never_gets_a_cpu_build_forced_on_it(fake_env, monkeypatch):
    monkeypatch.setattr(sl, "has_cuda", lambda: True)
    monkeypatch.setattr(sl, "smoke", lambda py: (False, "generation failed (exit 1): CUDA error", {}))
    with pytest.raises(SystemExit) as exc:
        sl.ensure(Path("python"), fake_env["req"])
    assert fake_env["built"] == ["cuda"] and "CUDA" in str(exc.value)


@pytest.mark.slow
def test_the_installed_build_generates_in_a_subprocess_and_is_recorded():
    """The build this environment runs passes the smoke check, and the CLI reports its CPU features."""
    ok, why, details = sl.smoke(Path(sys.executable))
    assert ok, why
    assert details["prompt_tokens"] >= 8 and details["completion_tokens"] >= 1
    r = subprocess.run([sys.executable, "-m", "core", "backends", "--json"], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, WORKBENCH_TEST="1"), timeout=120)
    assert r.returncode == 0, r.stderr
    build = json.loads(r.stdout)["llama_cpp_build"]
    assert "AVX" in build["system_info"] and "AMX_INT8 = 1" not in build["system_info"]
    assert build["smoke_ok"] is True
    if build["profile"] in ("machine", "avx2", "baseline"):
        assert "-DGGML_AMX_INT8=OFF" in build["cmake_args"] and "-DGGML_NATIVE=OFF" in build["cmake_args"]
