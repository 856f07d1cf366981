"""What a 135M model makes of retrieved context: keyword share of the answers on the scenario's fact questions as a
function of the context budget, the prompt's shape and the decoding.

    .venv/bin/python bench/small_model_rag.py [--data DIR] [--only NAME,...] [--model MODEL] [--limit N]
                                              [--max-tokens 120] [--out results.json]

Questions: the scenario's `fact_lookup` and `updated_fact` questions that are not also `reasoning` (31). Every
config uses the real embedded backend (core.llm.registry, SmolLM2-135M in llama.cpp unless --model names another
model or a fine-tune `ft:NAME`) and the real hybrid retriever over the sample collection `support`; retrieval is
done once per (question, k) and reused by every config. A config is: k, context selection (first-N-words of each
chunk, whole chunks, or core.rag.select's sentence selection under a token budget), prompt shape and decoding.

Columns: keyword share (core.compare.scores.keywords, the Compare page's score), the share of answers with every
keyword, answers citing a valid [n], the voice checks passed (core.compare.scores.voice: Pip's greeting, numbered
steps, sign-off), the share of questions whose evidence sentence is inside the prompt, mean prompt tokens and
seconds per answer. Two reference rows need no configuration: prompt-only (the few-shot prompt,
no retrieval: what the model knows) and retrieval-only (core.rag.select.extractive_answer: no model at all).
A quality benchmark, not a timing one: the seconds are for orientation (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TAGS = {"fact_lookup", "updated_fact"}

# ---- prompt shapes -------------------------------------------------------------------------------------------------
SHORT_SYSTEM = "Answer the question with the facts from the numbered sources. Cite the source number like [1]."
EXAMPLE_USER = ("Sources:\n[1] (museum-guide.md) Opening hours: The museum opens at 09:00 and closes at 17:00 on "
                "weekdays.\n\n[2] (tickets.md) Tickets: An adult ticket costs €12.\n\n"
                "Question: When does the museum close on weekdays?")
EXAMPLE_ANSWER = "The museum closes at 17:00 on weekdays [1]."


def shapes() -> dict:
    import yaml

    from core.prompts.spec import FewShot, PromptSpec

    def lib(name):
        return PromptSpec.from_dict(yaml.safe_load((ROOT / "sample_docs" / "prompts" / f"{name}.yaml").read_text()))

    out = {
        "guardrail": lib("guardrail"),
        "short_after": PromptSpec(name="short_after", system=SHORT_SYSTEM,
                                  template="Sources:\n{context}\n\nQuestion: {question}"),
        "short_before": PromptSpec(name="short_before", system=SHORT_SYSTEM,
                                   template="Question: {question}\n\nSources:\n{context}\n\n"
                                            "Answer the question from the sources above."),
        "unnumbered": PromptSpec(name="unnumbered", system="Answer the question with the facts from the text.",
                                 template="Text:\n{context}\n\nQuestion: {question}"),
        "example": PromptSpec(name="example", system=SHORT_SYSTEM,
                              template="Sources:\n{context}\n\nQuestion: {question}",
                              examples=[FewShot(EXAMPLE_USER, EXAMPLE_ANSWER)]),
        "few_shot": lib("few_shot"),
        "zero_shot": lib("zero_shot"),
    }
    if (ROOT / "sample_docs" / "prompts" / "rag_small.yaml").is_file():
        out["rag_small"] = lib("rag_small")
    return out


@dataclass
class Config:
    name: str
    k: int = 4
    method: str = "sentences"        # sentences | first_words | chunks | none (no retrieval) | extractive (no model)
    #                                  | prepare (the product's RAG prepare step, core.rag.answer, with `profile`)
    profile: str = ""                # for method "prepare": a RAG_PROFILES name (embedded | server)
    budget: int = 160
    max_sentences: int = 4
    first_words: int = 70
    shape: str = "example"
    temperature: float = 0.0
    repeat_penalty: float | None = None


GRID = [
    # references: what the model knows without retrieval, and what retrieval alone finds (no model)
    Config("prompt_only", method="none", shape="few_shot", temperature=0.2),
    Config("zero_shot_only", method="none", shape="zero_shot", temperature=0.2),
    Config("retrieval_only", method="extractive"),
    # which part of the chunks goes in
    Config("probe_first70_k2", k=2, method="first_words", budget=10_000, shape="short_after"),
    Config("guardrail_chunks_k4", k=4, method="chunks", budget=1500, shape="guardrail"),
    Config("guardrail_first70_k4", k=4, method="first_words", budget=10_000, shape="guardrail"),
    Config("sent160_guardrail", shape="guardrail"),
    # context budget
    Config("sent100_guardrail", budget=100, max_sentences=2, shape="guardrail"),
    Config("sent250_guardrail", budget=250, max_sentences=6, shape="guardrail"),
    # prompt shape
    Config("sent160_short_after", shape="short_after"),
    Config("sent160_short_before", shape="short_before"),
    Config("sent160_unnumbered", shape="unnumbered"),
    Config("sent160_example", shape="example"),
    # decoding
    Config("sent160_guardrail_rp1.1", shape="guardrail", repeat_penalty=1.1),
    # the product's own path (core.rag.answer.prepare_rag_messages, what Ask / `core ask` / Compare send):
    # the embedded profile (selected sentences) vs the server profile (whole chunks) on the same model
    Config("product_embedded_profile", method="prepare", profile="embedded", shape="guardrail"),
    Config("product_whole_chunks", method="prepare", profile="server", shape="guardrail"),
]


def fact_questions():
    from core.compare.questions import scenario_questions

    return [q for q in scenario_questions() if TAGS & set(q.tags) and "reasoning" not in q.tags]


def retrieval_cache(questions, ks, collection: str, path: Path) -> dict:
    """(qid, k) -> retrieved chunks as dicts, cached on disk per table version."""
    from core.rag import api as rag_api

    version = rag_api.get_collection(collection).table_version
    cache = {}
    if path.is_file():
        try:
            cache = json.loads(path.read_text())
        except ValueError:
            cache = {}
    if cache.get("table_version") != version:
        cache = {"table_version": version, "items": {}}
    for q in questions:
        for k in ks:
            key = f"{q.id}:{k}"
            if key not in cache["items"]:
                r = rag_api.retrieve(q.question, collection, mode="hybrid", k=k)
                cache["items"][key] = [{"id": c.id, "text": c.text, "source": c.source, "heading": c.heading,
                                        "rank": c.rank} for c in r.chunks]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache))
    return cache["items"]


def run_config(cfg: Config, questions, chunks_of, backend, model, counter, max_tokens: int, shape_specs,
               voice_checks=()) -> dict:
    from core.compare.scores import keywords, voice
    from core.llm.base import GenParams
    from core.rag.context import check_citations
    from core.rag.select import contains_evidence, extractive_answer, render_context, select_context

    rows = []
    for q in questions:
        t0 = time.perf_counter()
        chunks = chunks_of[f"{q.id}:{cfg.k}"]
        snippets, prompt_tokens = [], 0
        if cfg.method == "prepare":
            from core.rag.answer import prepare_rag_messages

            spec = shape_specs[cfg.shape]
            params = GenParams(temperature=cfg.temperature, top_p=1.0 if cfg.temperature == 0 else 0.95,
                               max_tokens=max_tokens, seed=42, repeat_penalty=cfg.repeat_penalty)
            rp = prepare_rag_messages(q.question, chunks, spec, backend, model, params, profile=cfg.profile)
            res = backend.chat(rp.messages, params, model=model)
            text, prompt_tokens, n_sources = res.text, res.usage.prompt_tokens, len(rp.chunks)
            evidence_in = bool(q.evidence) and bool(rp.snippets) and contains_evidence(q.evidence, rp.snippets)
        elif cfg.method == "extractive":
            ans = extractive_answer(q.question, chunks)
            text, n_sources = ans.text, len(chunks)
            evidence_in = bool(q.evidence) and contains_evidence(q.evidence, "\n".join(c["text"] for c in chunks))
        else:
            spec = shape_specs[cfg.shape]
            context = None
            if cfg.method != "none":
                snippets = select_context(q.question, chunks, cfg.budget, counter, method=cfg.method,
                                          max_sentences=cfg.max_sentences, first_words=cfg.first_words)
                context = render_context(snippets)
            values = {"question": q.question}
            messages = spec.render(values, context=context)
            params = GenParams(temperature=cfg.temperature, top_p=1.0 if cfg.temperature == 0 else 0.95,
                               max_tokens=max_tokens, seed=42, repeat_penalty=cfg.repeat_penalty)
            res = backend.chat(messages, params, model=model)
            text, prompt_tokens = res.text, res.usage.prompt_tokens
            n_sources = len(snippets)
            evidence_in = bool(q.evidence) and bool(snippets) and contains_evidence(q.evidence, snippets)
        kw = keywords(text, q.keywords)
        cc = check_citations(text, n_sources)
        vc = voice(text, voice_checks).value if voice_checks else None
        rows.append({"qid": q.id, "answer": text, "keywords": kw.value, "all": kw.value == 1.0, "voice": vc,
                     "cites": cc.ok, "evidence_in_prompt": evidence_in, "prompt_tokens": prompt_tokens,
                     "seconds": time.perf_counter() - t0})
    n = len(rows)
    return {"config": asdict(cfg), "model": model, "n": n,
            "keyword_share": sum(r["keywords"] or 0 for r in rows) / n,
            "all_keywords": sum(r["all"] for r in rows) / n,
            "cites": sum(r["cites"] for r in rows) / n,
            "voice": sum(r["voice"] or 0 for r in rows) / n,
            "evidence_in_prompt": sum(r["evidence_in_prompt"] for r in rows) / n,
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows) / n,
            "seconds": sum(r["seconds"] for r in rows) / n, "rows": rows}


def describe(cfg: dict) -> str:
    m = cfg["method"]
    if m == "none":
        return "no retrieval"
    if m == "extractive":
        return f"k={cfg['k']}, best 2 sentences, no model"
    if m == "prepare":
        from core.rag.select import RAG_PROFILES
        p = RAG_PROFILES[cfg["profile"]]
        sel = ("whole chunks" if p.method == "chunks" else
               f"sentences ≤{p.budget_tokens} tok (≤{p.max_sentences})")
        return f"product prepare step, {cfg['profile']} profile: k={cfg['k']}, {sel}, {cfg['shape']}, greedy"
    sel = {"first_words": f"first {cfg['first_words']} words/chunk", "chunks": "whole chunks",
           "sentences": f"sentences ≤{cfg['budget']} tok (≤{cfg['max_sentences']})"}[m]
    dec = "greedy" if cfg["temperature"] == 0 else f"T={cfg['temperature']}"
    if cfg.get("repeat_penalty"):
        dec += f", rp {cfg['repeat_penalty']}"
    return f"k={cfg['k']}, {sel}, {cfg['shape']}, {dec}"


def print_table(results: list[dict]) -> None:
    print("\n| config | model | setting | keyword share | all keywords | cites [n] | voice | evidence in prompt "
          "| prompt tok | s/answer |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        model = "-" if r["config"]["method"] == "extractive" else r["model"]
        print(f"| {r['config']['name']} | {model} | {describe(r['config'])} | {r['keyword_share']:.2f} | "
              f"{r['all_keywords']:.2f} | {r['cites']:.2f} | {r['voice']:.2f} | {r['evidence_in_prompt']:.2f} | "
              f"{r['prompt_tokens']:.0f} | {r['seconds']:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data folder (default WORKBENCH_DATA); the sample collection is built if missing")
    ap.add_argument("--only", help="comma-separated config names (default: the whole grid)")
    ap.add_argument("--model", default="", help="model id (default: the backend's default; ft:NAME for an adapter)")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--out", help="write every answer and the table as JSON here")
    ap.add_argument("--list", action="store_true", help="list the configs and exit")
    args = ap.parse_args()
    if args.list:
        for c in GRID:
            print(c.name, "-", describe(asdict(c)))
        return 0
    if args.data:
        os.environ["WORKBENCH_DATA"] = args.data

    from core.config import get_settings
    from core.llm.registry import get_backend
    from core.rag import api as rag_api
    from core.rag.select import text_token_counter

    grid = GRID
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in want if w not in {c.name for c in GRID}]
        if unknown:
            print(f"unknown config(s): {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        grid = [c for c in GRID if c.name in want]
    collection = rag_api.ensure_sample_collection()
    questions = fact_questions()
    if args.limit:
        questions = questions[: args.limit]
    cache_path = get_settings().data_dir / "cache" / "bench_small_model_rag_retrieval.json"
    chunks_of = retrieval_cache(questions, sorted({c.k for c in grid}), collection, cache_path)
    backend = get_backend("embedded")
    model = args.model or None
    counter = text_token_counter(backend, model)
    specs = shapes()
    from core.compare.questions import load_scenario
    voice_checks = load_scenario().voice_checks
    print(f"{len(questions)} questions ({', '.join(sorted(TAGS))}, not reasoning); model {model or 'default'}",
          file=sys.stderr)
    results = []
    for cfg in grid:
        t0 = time.perf_counter()
        r = run_config(cfg, questions, chunks_of, backend, model, counter, args.max_tokens, specs, voice_checks)
        r["model"] = model or backend.default_model()
        results.append(r)
        print(f"{cfg.name}: keyword share {r['keyword_share']:.2f}, evidence in prompt {r['evidence_in_prompt']:.2f} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print_table(results)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
