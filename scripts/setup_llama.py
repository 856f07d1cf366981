#!/usr/bin/env python3
"""Build llama-cpp-python for the CPU it will run on, keyed by its build flags, and prove it works.

Why: llama-cpp-python ships no binary wheel, and a source build with llama.cpp's default native flags compiles
ggml's AMX kernels on CPUs that advertise AMX. Cloud VMs often advertise AMX without enabling its tile state, and
then every multi-token prompt dies with a segfault inside libggml-cpu.so. pip caches the built wheel by the sdist,
not by CMAKE_ARGS, so a crashing build keeps coming back from pip's cache.

What it does (stdlib only, runs with the venv's python):
  install  choose CMAKE_ARGS (your own CMAKE_ARGS > CUDA when `nvidia-smi -L` lists a GPU > the CPU's real vector
           extensions read from /proc/cpuinfo with AMX always off), build the wheel with pip's cache bypassed into a
           cache folder keyed by (version, flags, python), and install it. Later set-ups reuse the keyed wheel.
  smoke    generate a few tokens from the bundled model in a SUBPROCESS with a multi-token prompt. If it dies, say
           in one line what happened, then rebuild with a more conservative CPU profile (avx2, then baseline) and
           try again; fail with a clear message when nothing works. Writes <venv>/llama-build.json on success.
  ensure   install + smoke, skipping both when the recorded build matches this machine and passed its smoke check.
  show     print the recorded build as JSON.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llama-cpp-python"
RECORD_NAME = "llama-build.json"

# ggml CMake option -> the /proc/cpuinfo flags the CPU must have for it. GGML_AVX512 compiles with
# -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw, so it needs all five.
CPU_OPTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("GGML_SSE42", ("sse4_2",)),
    ("GGML_AVX", ("avx",)),
    ("GGML_F16C", ("f16c",)),
    ("GGML_FMA", ("fma",)),
    ("GGML_BMI2", ("bmi2",)),
    ("GGML_AVX2", ("avx2",)),
    ("GGML_AVX_VNNI", ("avx_vnni",)),
    ("GGML_AVX512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")),
    ("GGML_AVX512_VBMI", ("avx512vbmi",)),
    ("GGML_AVX512_VNNI", ("avx512_vnni",)),
    ("GGML_AVX512_BF16", ("avx512_bf16",)),
]
# Profiles from most to least capable; each keeps only the options the CPU really has.
PROFILE_OPTIONS = {
    "machine": [name for name, _ in CPU_OPTIONS],
    "avx2": ["GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"],
    "baseline": [],
}
AMX_OFF = ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
SMOKE_PROMPT = ("You are a helpful assistant. Answer in one short sentence: what is the capital of France, "
                "and which river runs through it?")


def log(msg: str) -> None:
    print(f"[llama.cpp set-up] {msg}", flush=True)


def requirement_spec(requirements: Path) -> tuple[str, str]:
    """(pip spec, version) of llama-cpp-python as pinned in requirements.txt: one place for the pin."""
    for line in requirements.read_text().splitlines():
        m = re.match(r"\s*llama-cpp-python(\[[^\]]*\])?\s*==\s*([0-9][^\s;#]*)", line)
        if m:
            return f"{PACKAGE}=={m.group(2)}", m.group(2)
    raise SystemExit(f"{requirements} pins no {PACKAGE}==VERSION")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    return set(m.group(1).split()) if m else set()


def has_cuda() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")


def choose_build(profile: str | None = None, flags: set[str] | None = None) -> dict:
    """The build to make here: {'profile', 'cmake_args', 'cpu_features'}. `flags` defaults to /proc/cpuinfo's."""
    user = os.environ.get("CMAKE_ARGS", "").strip()
    if user and profile is None:
        return {"profile": "user", "cmake_args": user, "cpu_features": []}
    if has_cuda() and profile is None:
        return {"profile": "cuda", "cmake_args": "-DGGML_CUDA=on", "cpu_features": []}
    if not is_x86():
        # No AMX outside x86; llama.cpp's native flags are right for the CPU it runs on.
        return {"profile": "native", "cmake_args": "-DGGML_NATIVE=ON", "cpu_features": []}
    profile = profile or "machine"
    flags = cpu_flags() if flags is None else flags
    have = [name for name, needs in CPU_OPTIONS
            if name in PROFILE_OPTIONS[profile] and all(f in flags for f in needs)]
    args = ["-DGGML_NATIVE=OFF"] + [f"-D{name}={'ON' if name in have else 'OFF'}" for name, _ in CPU_OPTIONS] + AMX_OFF
    return {"profile": profile, "cmake_args": " ".join(args), "cpu_features": have}


def build_key(version: str, cmake_args: str) -> str:
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return hashlib.sha256(f"{PACKAGE}=={version}|{cmake_args}|{py}|{platform.machine()}".encode()).hexdigest()[:16]


def wheel_cache_root() -> Path:
    env = os.environ.get("WORKBENCH_WHEEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "approach-workbench" / "wheels"


def record_path(venv_python: Path) -> Path:
    prefix = subprocess.run([str(venv_python), "-c", "import sys; print(sys.prefix)"], capture_output=True,
                            text=True, check=True).stdout.strip()
    return Path(prefix) / RECORD_NAME


def read_record(venv_python: Path) -> dict | None:
    try:
        return json.loads(record_path(venv_python).read_text())
    except (OSError, ValueError):
        return None


def write_record(venv_python: Path, record: dict) -> None:
    path = record_path(venv_python)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def installed_version(venv_python: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"
    r = subprocess.run([str(venv_python), "-c", code], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def build_and_install(venv_python: Path, spec: str, version: str, build: dict) -> Path:
    key = build_key(version, build["cmake_args"])
    folder = wheel_cache_root() / PACKAGE / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        log(f"reusing the {build['profile']} build {key} from {folder}")
    else:
        log(f"building {spec} for profile '{build['profile']}' (key {key}): about 5-8 minutes on 2 cores")
        log(f"CMAKE_ARGS={build['cmake_args']}")
        tmp = folder.with_name(key + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        env = dict(os.environ, CMAKE_ARGS=build["cmake_args"],
                   CMAKE_BUILD_PARALLEL_LEVEL=os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2)))
        t0 = time.time()
        # --no-cache-dir: never take pip's cached wheel, which may be a build made with other flags.
        cmd = [str(venv_python), "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE,
               "-w", str(tmp), spec]
        r = subprocess.run(cmd, env=env)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit(f"building {spec} failed (exit {r.returncode}); the compiler output is above. "
                             "A C/C++ compiler and CMake are needed (Debian: apt-get install build-essential cmake).")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
        log(f"built in {time.time() - t0:.0f} s")
    wheel = wheels[-1]
    # Replace whatever is installed (maybe an old crashing build), then let pip add missing dependencies.
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    return wheel


SMOKE_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import llama_cpp
from core.llm.models import packaged_gguf_path
t0 = time.time()
llm = llama_cpp.Llama(model_path=str(packaged_gguf_path()), n_ctx=512, n_threads=2, verbose=False, seed=1)
prompt = sys.argv[2]
n_prompt = len(llm.tokenize(prompt.encode()))
# End-of-text is banned so that the decode loop really runs: the check is about the build, not the reply.
out = llm.create_completion(prompt, max_tokens=8, temperature=0.0, logit_bias={llm.token_eos(): -1e9})
print(json.dumps({"prompt_tokens": n_prompt, "completion_tokens": out["usage"]["completion_tokens"],
                  "seconds": round(time.time() - t0, 2),
                  "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}))
"""


def smoke(venv_python: Path, timeout: float = 300) -> tuple[bool, str, dict]:
    """Generate from a multi-token prompt in a child process. (ok, one-line reason, details).

    details["crashed"] is True when the child died by a signal (SIGSEGV, SIGILL...): the CPU rejected an
    instruction of the build, which a more conservative build can fix. Any other failure is not about CPU flags."""
    try:
        r = subprocess.run([str(venv_python), "-c", SMOKE_CODE, str(ROOT), SMOKE_PROMPT], capture_output=True,
                           text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return False, f"the smoke generation did not finish within {timeout:.0f} s", {}
    if r.returncode < 0:
        try:
            name = signal.Signals(-r.returncode).name
        except ValueError:
            name = f"signal {-r.returncode}"
        return False, f"generation crashed the process with {name} (the build uses CPU instructions this machine " \
                      f"faults on)", {"stderr_tail": r.stderr[-800:], "crashed": True}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"generation failed (exit {r.returncode}): {last}", {"stderr_tail": r.stderr[-800:]}
    try:
        details = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"the smoke check printed no result: {r.stdout[-200:]!r}", {}
    if details.get("prompt_tokens", 0) < 8 or details.get("completion_tokens", 0) < 1:
        return False, f"the smoke check generated nothing ({details})", details
    return True, "ok", details


def ensure(venv_python: Path, requirements: Path, force: bool = False) -> dict:
    spec, version = requirement_spec(requirements)
    first = choose_build()
    rec = read_record(venv_python)
    if (not force and rec and rec.get("ok") and rec.get("version") == version
            and installed_version(venv_python) == version
            and (rec.get("requested_key") == build_key(version, first["cmake_args"]))):
        log(f"build {rec['key']} ({rec['profile']}) already verified on this machine")
        return rec
    # Profiles to try, in order: what this machine asks for, then (x86 CPU builds only) safer fallbacks.
    attempts = [first]
    if first["profile"] == "machine":
        attempts += [choose_build("avx2"), choose_build("baseline")]
    seen: set[str] = set()
    for build in attempts:
        if build["cmake_args"] in seen:
            continue
        seen.add(build["cmake_args"])
        wheel = build_and_install(venv_python, spec, version, build)
        ok, why, details = smoke(venv_python)
        if ok:
            record = {"ok": True, "version": version, "profile": build["profile"], "cmake_args": build["cmake_args"],
                      "key": build_key(version, build["cmake_args"]),
                      "requested_key": build_key(version, first["cmake_args"]),
                      "cpu_features": build["cpu_features"], "wheel": str(wheel),
                      "amx_advertised": any(f.startswith("amx") for f in cpu_flags()),
                      "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **details}
            write_record(venv_python, record)
            log(f"smoke check passed: {details['prompt_tokens']}-token prompt, {details['completion_tokens']} tokens "
                f"generated in {details['seconds']} s ({build['profile']} build)")
            log(f"system info: {details['system_info']}")
            return record
        nxt = [b for b in attempts if b["cmake_args"] not in seen] if details.get("crashed") else []
        if nxt:
            log(f"smoke check FAILED with the '{build['profile']}' build: {why}; rebuilding with the more "
                f"conservative '{nxt[0]['profile']}' profile.")
        else:
            hint = ("unset CMAKE_ARGS to let set-up choose the flags" if build["profile"] == "user" else
                    "check the CUDA toolkit/driver, or set CMAKE_ARGS to a CPU build" if build["profile"] == "cuda"
                    else "please report this with the line above and `grep flags /proc/cpuinfo | head -1`")
            raise SystemExit(f"[llama.cpp set-up] smoke check FAILED with the '{build['profile']}' build: {why}. "
                             f"The app cannot generate on this machine; {hint}.")
    raise SystemExit("[llama.cpp set-up] no build to try")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["ensure", "install", "smoke", "show", "plan"])
    ap.add_argument("--venv-python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    ap.add_argument("--force", action="store_true", help="rebuild and re-check even if a verified build is recorded")
    a = ap.parse_args(argv)
    py, req = Path(a.venv_python), Path(a.requirements)
    if a.action == "plan":
        spec, version = requirement_spec(req)
        b = choose_build()
        print(json.dumps({**b, "spec": spec, "key": build_key(version, b["cmake_args"]),
                          "cache": str(wheel_cache_root() / PACKAGE)}, indent=2))
    elif a.action == "install":
        spec, version = requirement_spec(req)
        build_and_install(py, spec, version, choose_build())
    elif a.action == "smoke":
        ok, why, details = smoke(py)
        print(json.dumps({"ok": ok, "reason": why, **details}, indent=2))
        return 0 if ok else 1
    elif a.action == "show":
        print(json.dumps(read_record(py) or {}, indent=2))
    else:
        ensure(py, req, force=a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
