"""Export parity: the same prompts through the trained model in-process (transformers + PEFT) and through the exported
GGUF in llama.cpp, greedy, side by side, with a similarity score. The base GGUF without the adapter is run too, as
the reference for "the adapter made it through": parity should be high and clearly above the base's similarity.

Both sides get the *same prompt token ids* (rendered with the tokenizer's chat template), so only the weights and
the runtime differ. The in-process model runs on the dequantised Q4_1 weights in fp32, llama.cpp on Q4_1 blocks,
so long greedy continuations can drift apart after a while: the score is a text similarity, not an exact match.
"""
from __future__ import annotations

import difflib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.errors import ExportError
from core.fileio import read_json, write_json_atomic

PASS_SCORE = 0.6


@dataclass
class ParityRow:
    prompt: str
    in_process: str
    exported: str
    base: str
    similarity: float            # in_process vs exported
    base_similarity: float       # in_process vs base-without-adapter (reference)


@dataclass
class ParityReport:
    rows: list[ParityRow] = field(default_factory=list)
    score: float = 0.0
    base_score: float = 0.0
    passed: bool = False
    exported_file: str = ""
    seconds: float = 0.0
    verdict: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def similarity(a: str, b: str) -> float:
    """0..1 character-level similarity (difflib ratio) of two answers."""
    if not a and not b:
        return 1.0
    return round(difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


def _prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(out, dict) or hasattr(out, "input_ids"):
        out = out["input_ids"]
    return [int(i) for i in out]


def hf_generate(base_dir: Path, peft_dir: Path | None, prompts: list[list[dict]], max_new_tokens: int = 48,
                threads: int | None = None) -> tuple[list[str], list[list[int]]]:
    """Greedy answers of base + PEFT adapter in transformers. Returns (texts, prompt id lists)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True)
    if peft_dir is not None:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(peft_dir))
    model.eval()
    texts, ids_all = [], []
    with torch.inference_mode():
        for msgs in prompts:
            ids = _prompt_ids(tok, msgs)
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id)
            texts.append(tok.decode(out[0, len(ids):], skip_special_tokens=True).strip())
            ids_all.append(ids)
    return texts, ids_all


def gguf_generate(model_path: Path, lora_path: Path | None, prompt_ids: list[list[int]], max_new_tokens: int = 48,
                  threads: int | None = None) -> list[str]:
    """Greedy answers from llama.cpp for the same prompt token ids."""
    from llama_cpp import Llama

    kwargs = dict(model_path=str(model_path), n_ctx=2048, verbose=False, seed=0, n_threads=threads or None)
    if lora_path is not None:
        kwargs["lora_path"] = str(lora_path)
    llm = Llama(**{k: v for k, v in kwargs.items() if v is not None})
    out = []
    try:
        for ids in prompt_ids:
            res = llm.create_completion(prompt=ids, max_tokens=max_new_tokens, temperature=0.0, top_k=1,
                                        repeat_penalty=1.0)
            out.append(res["choices"][0]["text"].strip())
    finally:
        llm.close() if hasattr(llm, "close") else None
    return out


def parity_check(peft_dir: Path | None, base_dir: Path, base_gguf: Path, exported: Path, prompts: list[list[dict]],
                 kind: str = "gguf-lora", max_new_tokens: int = 48, threads: int | None = None,
                 stage: Callable[[str, float], None] | None = None) -> ParityReport:
    """kind "gguf-lora": exported is a LoRA file loaded on base_gguf; "gguf-merged": exported is a full model.
    A full fine-tune has no adapter: peft_dir None and base_dir its saved model folder.
    `stage(message, fraction)` is called before each of the three generation passes."""
    if not prompts:
        raise ExportError("The parity check needs at least one prompt.")
    if not Path(exported).is_file():
        raise ExportError(f"Exported file {exported} does not exist: export first.")
    stage = stage or (lambda message, fraction: None)
    t0 = time.perf_counter()
    stage("generating in-process (transformers" + (" + PEFT)" if peft_dir is not None else ", the trained model)"), 0.1)
    hf_texts, ids = hf_generate(base_dir, peft_dir, prompts, max_new_tokens, threads)
    stage("generating with the exported file (llama.cpp)", 0.5)
    if kind == "gguf-merged":
        exp_texts = gguf_generate(exported, None, ids, max_new_tokens, threads)
    else:
        exp_texts = gguf_generate(base_gguf, exported, ids, max_new_tokens, threads)
    stage("generating with the base model without the adapter", 0.8)
    base_texts = gguf_generate(base_gguf, None, ids, max_new_tokens, threads)
    rows = [ParityRow(prompt=p[-1]["content"], in_process=h, exported=e, base=b, similarity=similarity(h, e),
                      base_similarity=similarity(h, b))
            for p, h, e, b in zip(prompts, hf_texts, exp_texts, base_texts)]
    score = round(sum(r.similarity for r in rows) / len(rows), 4)
    base_score = round(sum(r.base_similarity for r in rows) / len(rows), 4)
    passed = score >= PASS_SCORE and score > base_score
    verdict = (f"Export parity {score:.2f} (base model without the adapter: {base_score:.2f}). "
               + ("The exported file reproduces the fine-tuned model." if passed else
                  "The exported file does NOT reproduce the fine-tuned model: do not ship it."))
    return ParityReport(rows, score, base_score, passed, str(exported), round(time.perf_counter() - t0, 2), verdict)


def heldout_prompts(path: Path, n: int = 3) -> list[list[dict]]:
    """The first n held-out conversations without their final assistant answer."""
    from core.finetune.datasets import load_file
    ds = load_file(path)
    return [r["messages"][:-1] for r in ds.rows[:n]]


def run_parity(ref: str, kind: str = "gguf-lora", exported: Path | None = None, n_prompts: int = 3,
               max_new_tokens: int = 48, settings=None,
               stage: Callable[[str, float], None] | None = None) -> ParityReport:
    """Parity check of an adapter (run id / adapter name) against its exported file (exported the GGUF LoRA first if
    needed). Prompts: the scenario's held-out transcripts, else the run's validation rows. The report is saved to
    <run>/export/parity-<kind>.json so the page shows it again after a refresh."""
    from core.config import SAMPLE_DOCS
    from core.finetune.convert import resolve_base_model
    from core.finetune.datasets import read_jsonl
    from core.finetune.export import export_adapter, resolve_adapter
    from core.llm.models import DEFAULT_MODEL, packaged_gguf_path

    from core.finetune.export import merged_file

    a = resolve_adapter(ref, settings)
    base_model = a.spec.get("base_model") or DEFAULT_MODEL
    if a.is_full and kind != "gguf-merged":
        raise ExportError(f"Run {a.name} is a full fine-tune (no adapter): check its standalone GGUF, kind "
                          "'gguf-merged'.")
    if exported is None:
        default = (a.run_dir / "export" / ("adapter.gguf" if kind == "gguf-lora" else merged_file(a))
                   if a.run_dir else None)
        exported = default if default and default.is_file() else Path(export_adapter(ref, kind, settings=settings).path)
    heldout = SAMPLE_DOCS / "finetune" / "heldout.chat.jsonl"
    if heldout.is_file():
        prompts = heldout_prompts(heldout, n_prompts)
    elif a.run_dir and (a.run_dir / "data" / "val.jsonl").is_file():
        prompts = [r["messages"][:-1] for r in read_jsonl(a.run_dir / "data" / "val.jsonl")[:n_prompts]]
    else:
        raise ExportError("No held-out prompts for the parity check: add sample_docs/finetune/heldout.chat.jsonl.")
    peft_dir, hf_dir = (None, a.peft_dir) if a.is_full else (a.peft_dir, resolve_base_model(base_model, settings))
    report = parity_check(peft_dir, hf_dir, packaged_gguf_path(base_model), exported, prompts, kind=kind,
                          max_new_tokens=max_new_tokens, stage=stage)
    if a.run_dir:
        out = a.run_dir / "export" / f"parity-{kind}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, report.to_dict(), indent=2)
    return report


def saved_parity(run_dir: Path, kind: str = "gguf-lora") -> dict | None:
    report = read_json(Path(run_dir) / "export" / f"parity-{kind}.json")
    return report if isinstance(report, dict) else None


# --- the "parity" job kind: the check loads a full fp32 model, so it runs in a job process, never in the UI -------
def start_job(ref: str, kind: str = "gguf-lora", n_prompts: int = 3, max_new_tokens: int = 48) -> str:
    """Start a parity check in its own worker process. Returns the job id; the report is saved next to the
    exported file (saved_parity) and kept as the job's result."""
    from core import jobs

    if kind not in ("gguf-lora", "gguf-merged"):
        raise ExportError(f"The parity check compares a GGUF export: 'gguf-lora' or 'gguf-merged', not {kind!r}.")
    return jobs.create("parity", {"ref": ref, "kind": kind, "n_prompts": n_prompts, "max_new_tokens": max_new_tokens},
                       name=f"parity check of {ref} ({kind})", message="starting the parity check").id


def run_job(spec: dict, report) -> dict:
    def stage(message: str, fraction: float) -> None:
        report(message=message, progress=fraction, force=True)
        report.log(message)

    stage("preparing the exported file", 0.02)
    rep = run_parity(spec["ref"], spec.get("kind") or "gguf-lora", n_prompts=int(spec.get("n_prompts") or 3),
                     max_new_tokens=int(spec.get("max_new_tokens") or 48), stage=stage)
    report(message=rep.verdict, progress=1.0, check=False)
    return {"score": rep.score, "base_score": rep.base_score, "passed": rep.passed, "verdict": rep.verdict,
            "exported_file": rep.exported_file, "seconds": rep.seconds}


def latest_job(ref: str, kind: str) -> dict | None:
    """The newest parity job of this adapter and file kind: id, state, error, active."""
    from core import jobs

    for job in jobs.list_jobs("parity", where=lambda j: j.spec.get("ref") == ref and j.spec.get("kind") == kind,
                              limit=1):
        return {"id": job.id, "state": job.state, "error": job.error, "active": job.active, "result": job.result}
    return None
