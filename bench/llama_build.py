"""Tokens/s of two llama-cpp-python builds on the same work: the one set-up made (CPU features, AMX off) vs another.

Why: set-up no longer uses llama.cpp's native flags (they compile AMX kernels that fault on VMs which advertise AMX
without enabling it). The replacement must keep the vector extensions the CPU really has: no more than 5% slower
than the native build on a machine where both run.

Each build is unpacked from its wheel into a folder of its own and run in a fresh process (PYTHONPATH first, so
that process imports that build). Rounds alternate A B A B after a warm-up in every process, so machine drift
cancels. Each process counts its own tokens (llama.cpp's usage of its own completion).

    python bench/llama_build.py --old-wheel /path/to/llama_cpp_python-0.3.36-...whl [--rounds 6]
    python bench/llama_build.py                # builds the native-flags wheel once (~8 min on 2 cores), then reuses it
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_CODE = r"""
import json, sys, time
build_dir, model, n_tokens, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import llama_cpp
assert llama_cpp.__file__.startswith(build_dir), (llama_cpp.__file__, build_dir)
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_threads=int(sys.argv[5]), verbose=False, seed=7)
eos = llm.token_eos()
prompt = ("<|im_start|>user\nWrite a long, detailed story about a lighthouse keeper who finds a map in a bottle, "
          "with names, places and dialogue.<|im_end|>\n<|im_start|>assistant\n")
n_prompt = len(llm.tokenize(prompt.encode(), special=True))

def one():
    llm.reset()
    t0 = time.perf_counter(); first = None; n = 0
    for chunk in llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, stream=True,
                                       logit_bias={eos: -1e9}):
        now = time.perf_counter()
        if first is None:
            first = now
        n += 1
    end = time.perf_counter()
    return {"ttft_s": first - t0, "gen_tok_s": (n - 1) / (end - first), "tokens": n}

one()                                   # warm-up in this process
runs = [one() for _ in range(reps)]
print(json.dumps({"prompt_tokens": n_prompt, "runs": runs,
                  "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}))
"""


def unpack(wheel: Path) -> Path:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"llama-build-bench-{digest}"
    if not (target / "llama_cpp").is_dir():
        with zipfile.ZipFile(wheel) as z:
            z.extractall(target)
    return target


def run(build_dir: Path, model: Path, n_tokens: int, reps: int, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(build_dir))
    r = subprocess.run([sys.executable, "-c", RUN_CODE, str(build_dir), str(model), str(n_tokens), str(reps),
                        str(threads)], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"build at {build_dir} failed (exit {r.returncode}): {r.stderr[-600:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def build_old_wheel() -> Path:
    """The wheel pip would build by default (llama.cpp's native flags), kept under the keyed cache as 'native'."""
    from scripts.setup_llama import PACKAGE, requirement_spec, wheel_cache_root
    spec, _ = requirement_spec(ROOT / "requirements.txt")
    folder = wheel_cache_root() / PACKAGE / "native-default"
    found = sorted(folder.glob("*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CMAKE_ARGS"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary",
                    "llama-cpp-python", "-w", str(folder), spec], check=True, env=env)
    return sorted(folder.glob("*.whl"))[-1]


def main() -> int:
    from core.llm.buildinfo import build_record
    from core.llm.models import packaged_gguf_path
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-wheel", help="default: the wheel set-up built and verified (<venv>/llama-build.json)")
    ap.add_argument("--old-wheel", help="the reference build (e.g. a default native-flags build)")
    ap.add_argument("--build-old", action="store_true", help="use the native-flags reference wheel (the default)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3, help="timed generations per process")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    new = Path(a.new_wheel or build_record().get("wheel", ""))
    if not new.is_file():
        raise SystemExit("no verified build recorded: run `make setup` first, or pass --new-wheel")
    old = Path(a.old_wheel) if a.old_wheel and not a.build_old else build_old_wheel()   # cached after once
    if not old.is_file():
        raise SystemExit(f"no reference wheel at {old}")
    model = packaged_gguf_path()
    builds = {"new (set-up)": unpack(new), "old (reference)": unpack(old)}
    results: dict[str, list[dict]] = {k: [] for k in builds}
    info = {}
    for r in range(a.rounds):
        order = list(builds) if r % 2 == 0 else list(builds)[::-1]     # A B, B A, ...: drift cancels
        for name in order:
            out = run(builds[name], model, a.tokens, a.reps, a.threads)
            results[name].extend(out["runs"])
            info[name] = out["system_info"]
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"{'build':18} {'gen tok/s p50':>14} {'spread':>16} {'TTFT ms p50':>12}")
    med = {}
    for name, runs in results.items():
        g = [x["gen_tok_s"] for x in runs]
        t = [x["ttft_s"] * 1000 for x in runs]
        med[name] = (statistics.median(g), statistics.median(t))
        print(f"{name:18} {med[name][0]:14.1f} {min(g):7.1f}-{max(g):<8.1f} {med[name][1]:12.1f}")
    ratio = med["new (set-up)"][0] / med["old (reference)"][0]
    print(f"generation ratio new/old = {ratio:.3f} (target >= 0.95); TTFT ratio new/old = "
          f"{med['new (set-up)'][1] / med['old (reference)'][1]:.3f}; n = {len(results['new (set-up)'])} per build, "
          f"{a.threads} threads")
    for name, line in info.items():
        print(f"{name}: {line}")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
