"""Overhead of the workbench's embedded backend vs bare llama-cpp-python on the same work.

Same GGUF (packaged SmolLM2-135M-Instruct Q4_1), same n_ctx / threads, same chat, same sampling settings and seed
(so both produce the same tokens); runs are interleaved to share the machine's noise. Prints tokens/s (completion
tokens / wall time of the whole streamed request), TTFT, and the ratio ours/bare. Target: ratio >= 0.97.
Each side counts its own tokens: the bare path counts the content chunks llama-cpp-python streamed (one per
generated token), ours reports its Usage.completion_tokens; a mismatch is printed.

    .venv/bin/python bench/llm_overhead.py [--runs 7] [--max-tokens 128]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import get_settings  # noqa: E402
from core.llm.base import GenParams  # noqa: E402
from core.llm.embedded import EmbeddedBackend, default_threads  # noqa: E402
from core.llm.models import packaged_gguf_path  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful support assistant."},
            {"role": "user", "content": "Explain in a few sentences how to set up online booking for a small hair salon."}]


def bare_run(llm, params: GenParams) -> tuple[str, float, float, int]:
    """(text, wall s, TTFT s, completion tokens counted on this side: one streamed content chunk per token)."""
    t0 = time.perf_counter()
    first = None
    text = []
    for chunk in llm.create_chat_completion(messages=MESSAGES, stream=True, temperature=params.temperature,
                                            top_p=params.top_p, max_tokens=params.max_tokens, seed=params.seed):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta:
            if first is None:
                first = time.perf_counter()
            text.append(delta)
    end = time.perf_counter()
    return "".join(text), end - t0, (first or end) - t0, len(text)


def ours_run(backend: EmbeddedBackend, params: GenParams):
    t0 = time.perf_counter()
    stream = backend.chat_stream(MESSAGES, params)
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return stream.text, end - t0, (first or end) - t0, stream.usage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()

    from llama_cpp import Llama

    s = get_settings()
    threads = default_threads(s.n_threads)
    params = GenParams(temperature=0.7, top_p=0.95, max_tokens=args.max_tokens, seed=1234)
    bare = Llama(model_path=str(packaged_gguf_path()), n_ctx=s.n_ctx, n_threads=threads, n_threads_batch=threads,
                 verbose=False)
    backend = EmbeddedBackend()
    backend.load()
    bare_run(bare, params)                    # warm both (first decode pays page-in of the mmapped weights)
    ours_run(backend, params)

    rows = {"bare": [], "ours": []}
    counts = {"bare": [], "ours": []}
    for _ in range(args.runs):
        text_b, wall_b, ttft_b, n_b = bare_run(bare, params)
        text_o, wall_o, ttft_o, usage = ours_run(backend, params)
        n_o = usage.completion_tokens            # our own counter; the bare side counted its stream itself
        if text_b != text_o:
            print("warning: outputs differ between the two paths", file=sys.stderr)
        if n_b != n_o:
            print(f"warning: token counts differ: bare streamed {n_b}, ours reports {n_o}", file=sys.stderr)
        rows["bare"].append((n_b / wall_b, ttft_b))
        rows["ours"].append((n_o / wall_o, ttft_o))
        counts["bare"].append(n_b)
        counts["ours"].append(n_o)

    med = {k: (statistics.median(v[0] for v in rows[k]), statistics.median(v[1] for v in rows[k])) for k in rows}
    ratio = med["ours"][0] / med["bare"][0]
    print(f"model: {packaged_gguf_path().name}  n_ctx={s.n_ctx}  threads={threads}  max_tokens={args.max_tokens}  "
          f"runs={args.runs}  completion tokens/run: bare {statistics.median(counts['bare']):.0f}, "
          f"ours {statistics.median(counts['ours']):.0f}")
    print(f"{'path':<28}{'tokens/s (median)':>20}{'TTFT ms (median)':>20}")
    print(f"{'bare llama_cpp.Llama':<28}{med['bare'][0]:>20.1f}{med['bare'][1] * 1000:>20.1f}")
    print(f"{'workbench embedded backend':<28}{med['ours'][0]:>20.1f}{med['ours'][1] * 1000:>20.1f}")
    print(f"ratio ours/bare tokens/s: {ratio:.3f}  (target >= 0.97: {'OK' if ratio >= 0.97 else 'BELOW'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
