"""Cost model and maintenance table, computed from measured numbers.

Per query, either a hosted-API price (measured prompt/completion tokens x $ per 1M tokens) or local compute
(measured seconds x $ per GPU-hour). Retrieval time is charged at the compute rate in both modes.
One-off costs: fine-tuning (adapter train_seconds x $/hour of the training device) and RAG indexing (the
collection's measured ingest seconds, recorded per document at ingest, x compute $/hour). Break-even volume where a fine-tuned approach with a short prompt beats a
long-prompt approach = one-off training cost / per-query saving (None with a reason when there is no saving).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CostModel:
    mode: str = "api"                    # "api": $ per token | "gpu": $ per GPU-second of measured latency
    price_in_per_m: float = 0.15         # $ per 1M input tokens (a small hosted model; edit to your provider)
    price_out_per_m: float = 0.60        # $ per 1M output tokens
    gpu_per_hour: float = 1.20           # $ per hour of the machine that serves the model (mode "gpu")
    compute_per_hour: float = 0.10       # $ per hour of the CPU box that embeds queries / ingests documents
    train_per_hour: float = 1.20         # $ per hour of the device that trained the adapter
    volume_per_month: int = 100_000      # queries per month, for the monthly line of the report

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "CostModel":
        d = d or {}
        out = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        if out.mode not in ("api", "gpu"):
            raise ValueError("cost mode must be 'api' or 'gpu'")
        for k in ("price_in_per_m", "price_out_per_m", "gpu_per_hour", "compute_per_hour", "train_per_hour"):
            if float(getattr(out, k)) < 0:
                raise ValueError(f"{k} must not be negative")
        return out

    def describe(self) -> str:
        if self.mode == "api":
            return (f"hosted API: ${self.price_in_per_m:g}/1M input + ${self.price_out_per_m:g}/1M output tokens; "
                    f"retrieval at ${self.compute_per_hour:g}/h; training at ${self.train_per_hour:g}/h")
        return (f"self-hosted: measured latency x ${self.gpu_per_hour:g}/GPU-hour; retrieval at "
                f"${self.compute_per_hour:g}/h; training at ${self.train_per_hour:g}/h")


@dataclass
class ApproachUsage:
    """Measured means for one approach (from a run), the inputs of the cost model."""
    name: str
    n: int = 0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    llm_seconds: float = 0.0             # mean generation latency
    retrieval_seconds: float = 0.0       # mean retrieval time (0 without RAG)
    fine_tuned: bool = False
    rag: bool = False
    train_seconds: float = 0.0           # adapter training time (fine-tuned only)
    train_device: str = ""
    ft_method: str = ""                  # "lora" | "full" (a full fine-tune: a whole model per version)
    ingest_seconds: float | None = None  # measured ingest time of the collection (RAG only), None = unknown
    n_docs: int | None = None


@dataclass
class ApproachCost:
    name: str
    per_query: float
    per_1k: float
    per_month: float
    one_off_training: float
    one_off_indexing: float
    breakdown: str

    def to_dict(self) -> dict:
        return asdict(self)


def approach_cost(u: ApproachUsage, m: CostModel) -> ApproachCost:
    retrieval = u.retrieval_seconds * m.compute_per_hour / 3600
    if m.mode == "api":
        llm = u.prompt_tokens * m.price_in_per_m / 1e6 + u.completion_tokens * m.price_out_per_m / 1e6
        how = f"{u.prompt_tokens:.0f} in + {u.completion_tokens:.0f} out tokens"
    else:
        llm = u.llm_seconds * m.gpu_per_hour / 3600
        how = f"{u.llm_seconds:.2f} GPU-s"
    if u.rag:
        how += f" + {u.retrieval_seconds * 1000:.0f} ms retrieval"
    per_q = llm + retrieval
    training = u.train_seconds * m.train_per_hour / 3600 if u.fine_tuned else 0.0
    indexing = (u.ingest_seconds or 0.0) * m.compute_per_hour / 3600 if u.rag else 0.0
    return ApproachCost(u.name, per_q, per_q * 1000, per_q * m.volume_per_month, training, indexing, how)


@dataclass
class BreakEven:
    fine_tuned: str
    versus: str
    saving_per_query: float
    training_cost: float
    queries: float | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def break_even(usages: list[ApproachUsage], m: CostModel) -> list[BreakEven]:
    """For each fine-tuned approach, against the non-fine-tuned approach with the same retrieval setting and
    the longest prompt (the 'long prompt' fine-tuning is meant to replace)."""
    costs = {u.name: approach_cost(u, m) for u in usages}
    out = []
    for f in (u for u in usages if u.fine_tuned and u.n):
        peers = [u for u in usages if not u.fine_tuned and u.n and u.rag == f.rag] or \
                [u for u in usages if not u.fine_tuned and u.n]
        if not peers:
            out.append(BreakEven(f.name, "-", 0.0, costs[f.name].one_off_training, None,
                                 "no base-model approach in this run to compare against"))
            continue
        r = max(peers, key=lambda u: u.prompt_tokens)
        saving = costs[r.name].per_query - costs[f.name].per_query
        training = costs[f.name].one_off_training
        if saving <= 0:
            reason = (f"no saving: {f.name} costs ${costs[f.name].per_1k:.4f}/1k queries vs ${costs[r.name].per_1k:.4f} "
                      f"for {r.name} ({f.prompt_tokens:.0f} vs {r.prompt_tokens:.0f} prompt tokens), so the "
                      f"training cost is never paid back")
            out.append(BreakEven(f.name, r.name, saving, training, None, reason))
        elif training <= 0:
            out.append(BreakEven(f.name, r.name, saving, 0.0, 0.0,
                                 "training time unknown (0 s recorded): cheaper from the first query"))
        else:
            q = training / saving
            out.append(BreakEven(f.name, r.name, saving, training, q,
                                 f"${training:.4f} training / ${saving * 1000:.4f} saved per 1k queries"))
    return out


@dataclass
class MaintenanceRow:
    name: str
    docs_change: str
    model_change: str
    docs_redo_s: float | None
    model_redo_s: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _dur(s: float | None) -> str:
    if s is None:
        return "time not measured"
    if s < 1:
        return "<1 s"
    if s < 90:
        return f"~{s:.0f} s"
    if s < 5400:
        return f"~{s / 60:.0f} min"
    return f"~{s / 3600:.1f} h"


def maintenance(usages: list[ApproachUsage], recheck_seconds: dict[str, float]) -> list[MaintenanceRow]:
    """What must be redone when the docs or the base model change, with measured times where we have them.
    `recheck_seconds[name]`: measured time to re-run this comparison for that approach."""
    rows = []
    for u in usages:
        recheck = recheck_seconds.get(u.name)
        per_doc = (u.ingest_seconds / u.n_docs) if (u.ingest_seconds and u.n_docs) else None
        if u.rag:
            docs = (f"re-ingest the changed documents ({_dur(per_doc)} per document, whole collection "
                    f"{_dur(u.ingest_seconds)}: measured when its documents were ingested)"
                    if u.ingest_seconds else
                    "re-ingest the changed documents (ingest time not recorded for this collection: re-ingest it "
                    "once to measure it)")
            docs_s = per_doc if per_doc is not None else u.ingest_seconds
        else:
            docs = "edit the facts into the prompt by hand, then re-run this comparison " + f"({_dur(recheck)})"
            docs_s = recheck
        what = "model (full fine-tune: every weight, a whole new model file)" if u.ft_method == "full" else "adapter"
        if u.fine_tuned and not u.rag:
            docs = f"retrain the {what} if the changed facts were trained in ({_dur(u.train_seconds or None)}), re-run the comparison"
            docs_s = (u.train_seconds or 0) + (recheck or 0)
        if u.fine_tuned:
            model = (f"retrain the {what} on the new base ({_dur(u.train_seconds or None)} on "
                     f"{u.train_device or 'the training device'}) and re-export it, then re-run the comparison")
            model_s = (u.train_seconds or 0) + (recheck or 0)
        elif u.rag:
            model = ("re-check the prompt by re-running the comparison " + f"({_dur(recheck)}); the index stays "
                     "(re-embed only if the embedder changes: " + _dur(u.ingest_seconds) + ")")
            model_s = recheck
        else:
            model = "re-check the prompt by re-running the comparison " + f"({_dur(recheck)})"
            model_s = recheck
        rows.append(MaintenanceRow(u.name, docs, model, docs_s, model_s))
    return rows
