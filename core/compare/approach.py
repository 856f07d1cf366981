"""An approach = model (base or fine-tuned adapter) x prompt version x retrieval (off, or collection+mode+k).

Spec strings (CLI and stored runs):  NAME=model=MODEL,prompt=PROMPT[@VERSION],rag=COLLECTION:MODE:K
    prompt_rag=model=smollm2-135m-instruct,prompt=guardrail@1,rag=support:hybrid:4
    ft=model=ft:latest,prompt=zero_shot                  ("ft:latest" = the newest adapter)
Optional keys: backend=embedded|ollama|openai, max_tokens=N, temperature=T, profile=embedded|server (the RAG
context profile, core.rag.select.RAG_PROFILES; default: the profile of the backend that answers - selected
sentences for the embedded model, whole chunks for servers).
    retrieval_only=model=extractive,rag=support:hybrid:4   the model-free reference column: the best-matching
                                                           sentences of the retrieved chunks, cited (no model call)

Resolution pins what produced every answer: model digest or adapter sha256, prompt version, collection table
version, params, seed. An approach that cannot run (adapter deleted, collection missing, no adapter trained
yet) resolves as unavailable with a reason; the other approaches still run.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

from core.errors import CompareError, WorkbenchError
from core.llm.models import ADAPTER_PREFIX, DEFAULT_MODEL

MAX_APPROACHES = 6
RAG_MODES = ("hybrid", "vector", "fts")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}$")
LATEST_ADAPTER = "ft:latest"               # the newest adapter trained on the plain transcripts (else the newest)
LATEST_RAFT_ADAPTER = "ft:latest-raft"     # the newest adapter trained on RAFT data (core/finetune/raft.py; else newest)
NO_ADAPTER_MSG = "no fine-tuned adapter yet: train one on the Fine-Tune page (or `python -m core finetune`)"
EXTRACTIVE_MODEL = "extractive"            # no model: core.rag.select.extractive_answer over the retrieved chunks
RETRIEVAL_ONLY = "retrieval_only"          # the reference column's name


@dataclass
class RetrievalSpec:
    collection: str
    mode: str = "hybrid"
    k: int = 4

    def to_string(self) -> str:
        return f"{self.collection}:{self.mode}:{self.k}"


@dataclass
class ApproachSpec:
    name: str
    model: str = DEFAULT_MODEL
    prompt: str = "zero_shot"
    rag: RetrievalSpec | None = None
    backend: str = ""                      # "" = the configured default backend
    max_tokens: int | None = None          # overrides the run's / prompt's max_tokens
    temperature: float | None = None
    profile: str = ""                      # RAG context profile ("" = the answering backend's: core.rag.select)

    @property
    def fine_tuned(self) -> bool:
        return self.model.startswith(ADAPTER_PREFIX)

    @property
    def model_free(self) -> bool:
        """The extractive "retrieval only" reference: no model answers, so it is never recommended."""
        return self.model.strip().lower() == EXTRACTIVE_MODEL

    @property
    def kind(self) -> str:
        if self.model_free:
            return "retrieval only (no model)"
        return ("fine-tuned" if self.fine_tuned else "prompt") + (" + RAG" if self.rag else "")

    @property
    def complexity(self) -> int:
        """Simplest first (the seed article's progression): prompt < prompt+RAG < fine-tuned < fine-tuned+RAG."""
        return (2 if self.fine_tuned else 0) + (1 if self.rag else 0)

    def to_string(self) -> str:
        parts = [f"model={self.model}", f"prompt={self.prompt}"]
        if self.rag:
            parts.append(f"rag={self.rag.to_string()}")
        if self.backend:
            parts.append(f"backend={self.backend}")
        if self.max_tokens is not None:
            parts.append(f"max_tokens={self.max_tokens}")
        if self.temperature is not None:
            parts.append(f"temperature={self.temperature:g}")
        if self.profile:
            parts.append(f"profile={self.profile}")
        return f"{self.name}=" + ",".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ApproachSpec":
        d = dict(d)
        rag = d.pop("rag", None)
        spec = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        spec.rag = RetrievalSpec(**rag) if isinstance(rag, dict) else None
        return validate(spec)


def parse_rag(text: str) -> RetrievalSpec | None:
    text = (text or "").strip()
    if text.lower() in ("", "off", "none", "no", "false"):
        return None
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise CompareError(f"rag={text!r} must be COLLECTION[:MODE[:K]], e.g. support:hybrid:4, or off.")
    mode = parts[1] if len(parts) > 1 and parts[1] else "hybrid"
    try:
        k = int(parts[2]) if len(parts) > 2 and parts[2] else 4
    except ValueError as exc:
        raise CompareError(f"rag={text!r}: K must be a whole number, e.g. support:hybrid:4.") from exc
    return RetrievalSpec(parts[0], mode, k)


def validate(spec: ApproachSpec) -> ApproachSpec:
    if not NAME_RE.match(spec.name or ""):
        raise CompareError(f"Approach name {spec.name!r} must be 1-40 letters, digits, '_', '.', '+' or '-'.")
    if not (spec.model or "").strip():
        raise CompareError(f"Approach {spec.name!r} has no model.")
    if not (spec.prompt or "").strip():
        raise CompareError(f"Approach {spec.name!r} has no prompt (e.g. prompt=zero_shot or prompt=guardrail@1).")
    if spec.rag:
        if spec.rag.mode not in RAG_MODES:
            raise CompareError(f"Approach {spec.name!r}: retrieval mode {spec.rag.mode!r} is unknown; use one of "
                               f"{', '.join(RAG_MODES)}.")
        if not 1 <= int(spec.rag.k) <= 20:
            raise CompareError(f"Approach {spec.name!r}: k must be between 1 and 20 (got {spec.rag.k}).")
    if spec.max_tokens is not None and not 1 <= int(spec.max_tokens) <= 4096:
        raise CompareError(f"Approach {spec.name!r}: max_tokens must be between 1 and 4096.")
    if spec.temperature is not None and not 0 <= float(spec.temperature) <= 2:
        raise CompareError(f"Approach {spec.name!r}: temperature must be between 0 and 2.")
    if spec.profile:
        from core.rag.select import RAG_PROFILES
        if spec.profile not in RAG_PROFILES:
            raise CompareError(f"Approach {spec.name!r}: profile {spec.profile!r} is unknown; use one of "
                               f"{', '.join(RAG_PROFILES)} (or leave it out for the backend's own).")
    if spec.model_free and not spec.rag:
        raise CompareError(f"Approach {spec.name!r}: model={EXTRACTIVE_MODEL} answers from retrieved chunks, so "
                           f"it needs retrieval, e.g. rag=support:hybrid:4.")
    return spec


def parse_approach(text: str) -> ApproachSpec:
    """'NAME=key=val,key=val' -> ApproachSpec (raises CompareError with an example on bad input)."""
    example = "e.g. prompt_rag=model=smollm2-135m-instruct,prompt=guardrail@1,rag=support:hybrid:4"
    name, sep, rest = (text or "").strip().partition("=")
    if not sep or not rest:
        raise CompareError(f"Approach {text!r} must look like NAME=key=value,...; {example}.")
    spec = ApproachSpec(name=name.strip())
    for part in rest.split(","):
        key, sep, val = part.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep:
            raise CompareError(f"Approach {name!r}: {part!r} is not key=value; {example}.")
        try:
            if key == "model":
                spec.model = val
            elif key == "prompt":
                spec.prompt = val
            elif key == "rag":
                spec.rag = parse_rag(val)
            elif key == "backend":
                spec.backend = val
            elif key == "max_tokens":
                spec.max_tokens = int(val)
            elif key == "temperature":
                spec.temperature = float(val)
            elif key == "profile":
                spec.profile = val.lower()
            else:
                raise CompareError(f"Approach {name!r}: unknown key {key!r}; use model, prompt, rag, backend, "
                                   f"max_tokens, temperature or profile.")
        except ValueError as exc:
            raise CompareError(f"Approach {name!r}: {key}={val!r} is not a number.") from exc
    return validate(spec)


def classic_presets(collection: str = "support", mode: str = "hybrid", k: int = 4) -> list[ApproachSpec]:
    """The four classic columns. The fine-tuned column uses the newest adapter trained on the plain transcripts
    ("ft:latest"), the fine-tuned + RAG column the newest one trained on retrieval-augmented data ("ft:latest-raft",
    core/finetune/raft.py; the newest adapter when there is none). Prompt-only uses the long few-shot prompt, the
    fine-tuned column the short zero-shot one (what fine-tuning is meant to replace); both RAG columns use the same
    guardrail prompt."""
    rag = RetrievalSpec(collection, mode, k)
    return [
        ApproachSpec("prompt_only", DEFAULT_MODEL, "few_shot"),
        ApproachSpec("prompt_rag", DEFAULT_MODEL, "guardrail", RetrievalSpec(**asdict(rag))),
        ApproachSpec("fine_tuned", LATEST_ADAPTER, "zero_shot"),
        ApproachSpec("fine_tuned_rag", LATEST_RAFT_ADAPTER, "guardrail", RetrievalSpec(**asdict(rag))),
    ]


def retrieval_only_preset(collection: str = "support", mode: str = "hybrid", k: int = 4) -> ApproachSpec:
    """The model-free reference column: what retrieval alone finds (core.rag.select.extractive_answer: the
    best-matching sentences of the k retrieved chunks, each cited [n]). It costs no model call; the report shows
    it next to the model columns but never recommends it (it does not answer in the product's voice)."""
    return ApproachSpec(RETRIEVAL_ONLY, EXTRACTIVE_MODEL, rag=RetrievalSpec(collection, mode, k))


def check_set(specs: list[ApproachSpec]) -> list[ApproachSpec]:
    if not specs:
        raise CompareError("Add at least one approach (or use the classic preset).")
    if len(specs) > MAX_APPROACHES:
        raise CompareError(f"{len(specs)} approaches given; compare at most {MAX_APPROACHES} at once.")
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CompareError(f"Approach names must be unique; repeated: {', '.join(dup)}.")
    return [validate(s) for s in specs]


# ---- resolution ------------------------------------------------------------------------------------------
@dataclass
class Resolved:
    """An approach with everything pinned. `available=False` carries the reason instead."""
    spec: ApproachSpec
    available: bool = True
    reason: str = ""
    backend: str = ""
    model_id: str = ""
    digest: str = ""
    adapter: dict | None = None            # name, sha256, base_model, train_seconds, device, created
    prompt_name: str = ""
    prompt_version: int = 0
    prompt: dict = field(default_factory=dict)   # the PromptSpec dict actually used
    rag: dict | None = None                # collection, mode, k, table_version, embedder, ingest_seconds, n_docs
    params: dict = field(default_factory=dict)
    seed: int | None = 42

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Resolved":
        d = dict(d)
        spec = ApproachSpec.from_dict(d.pop("spec"))
        return cls(spec=spec, **{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> str:
        """One line: what produced the answers."""
        if not self.available:
            return f"{self.name}: unavailable ({self.reason})"
        model = self.model_id
        if self.adapter:
            model += f" (adapter sha256 {str(self.adapter.get('sha256', ''))[:12]})"
        elif self.digest:
            model += f" ({self.digest[:19]})"
        rag = "off"
        if self.rag:
            rag = f"{self.rag['collection']}:{self.rag['mode']}:k={self.rag['k']} (table v{self.rag.get('table_version')})"
            ctx = self.rag.get("context") or {}
            if ctx:
                rag += "; context " + describe_context(ctx)
        if self.spec.model_free:
            return f"no model (extractive: best-matching sentences, cited); retrieval {rag}"
        return f"{model}; prompt {self.prompt_name}@{self.prompt_version}; retrieval {rag}"


def describe_context(ctx: dict) -> str:
    """'embedded profile: selected sentences <= 160 tokens (<= 4)' / 'server profile: whole chunks'."""
    method = ctx.get("method")
    name = ctx.get("name") or "custom"
    if method == "sentences":
        what = f"selected sentences ≤ {ctx.get('budget_tokens')} tokens (≤ {ctx.get('max_sentences')})"
    elif method == "first_words":
        what = f"first {ctx.get('first_words')} words per chunk"
    elif method == "extractive":
        what = "best-matching sentences quoted, no model"
    else:
        what = "whole chunks"
    return f"{name} profile: {what}" if name != "extractive" else what


def _collection_info(name: str) -> dict | None:
    from core.rag import api as rag_api

    for c in rag_api.list_collections():
        if c.name == name:
            return c.to_dict()
    return None


def resolve(spec: ApproachSpec, *, max_tokens: int | None = None, temperature: float | None = None,
            seed: int | None = 42, library=None, backend_name: str | None = None) -> Resolved:
    """Pin everything about one approach. Never raises for a missing adapter/collection/prompt: the result is
    unavailable with the reason. Raises CompareError only for an invalid spec."""
    from core.config import get_settings
    from core.llm import models as llm_models

    validate(spec)
    r = Resolved(spec=spec, seed=seed, backend=spec.backend or backend_name or get_settings().backend)
    if spec.model_free:
        return _resolve_extractive(r)
    # model
    model = spec.model.strip()
    try:
        if model.startswith(ADAPTER_PREFIX):
            from core.finetune.raft import adapter_variant, newest_adapter
            if model in (LATEST_ADAPTER, LATEST_RAFT_ADAPTER):
                info = newest_adapter(llm_models.list_adapters(), "raft" if model == LATEST_RAFT_ADAPTER else "plain")
                if info is None:
                    return _unavailable(r, NO_ADAPTER_MSG)
            else:
                info = llm_models.get_adapter(model)
            r.model_id = info.model_id
            r.adapter = {"name": info.name, "sha256": info.sha256, "base_model": info.base_model,
                         "train_seconds": float(info.train_seconds or 0), "device": info.device,
                         "created": info.created, "run_id": info.run_id, "method": info.method,
                         "data_variant": adapter_variant(info)}
        else:
            r.model_id = model
    except WorkbenchError as exc:
        reason = str(exc)
        if model not in (LATEST_ADAPTER, LATEST_RAFT_ADAPTER):
            reason = f"adapter {model.removeprefix(ADAPTER_PREFIX)!r} is gone (deleted?): {reason}"
        return _unavailable(r, reason)
    # prompt
    try:
        from core.prompts.library import PromptLibrary

        lib = library or PromptLibrary()
        if not lib.names():
            lib.ensure_starter()
        pspec, version = lib.resolve(spec.prompt)
    except WorkbenchError as exc:
        return _unavailable(r, f"prompt {spec.prompt!r}: {exc}")
    r.prompt_name, r.prompt_version, r.prompt = pspec.name, version, pspec.to_dict()
    params = pspec.gen_params()
    if max_tokens is not None:
        params.max_tokens = int(max_tokens)
    if temperature is not None:
        params.temperature = float(temperature)
    if spec.max_tokens is not None:
        params.max_tokens = int(spec.max_tokens)
    if spec.temperature is not None:
        params.temperature = float(spec.temperature)
    params.seed = seed
    try:
        params.validate()
    except WorkbenchError as exc:
        return _unavailable(r, str(exc))
    r.params = params.to_dict()
    # retrieval
    if spec.rag:
        if _pin_collection(r) is None:
            return r
        # the context profile is pinned here (the backend's measured default unless the spec names one)
        from core.rag.answer import resolve_profile
        try:
            pname, prof = resolve_profile(_NamedBackend(r.backend), spec.profile or None)
        except WorkbenchError as exc:
            return _unavailable(r, str(exc))
        r.rag["context"] = {"name": pname, **prof.to_dict(), "k": int(spec.rag.k)}
    # digest of the base model (adapters are pinned by their sha256); cheap for the embedded backend
    if not r.adapter:
        r.digest = _model_digest(r.backend, r.model_id)
    return r


def _pin_collection(r: Resolved) -> dict | None:
    """Pin the approach's collection (r.rag), or mark it unavailable with the reason and return None."""
    name = r.spec.rag.collection
    try:
        info = _collection_info(name)
    except WorkbenchError as exc:
        _unavailable(r, f"collection {name!r}: {exc}")
        return None
    if info is None:
        _unavailable(r, f"collection {name!r} does not exist (deleted?): build it on the Knowledge Base page or "
                        f"pick another one")
        return None
    r.rag = _rag_info(r.spec, info)
    return r.rag


def _rag_info(spec: ApproachSpec, info: dict) -> dict:
    return {"collection": spec.rag.collection, "mode": spec.rag.mode, "k": int(spec.rag.k),
            "table_version": info.get("table_version", info.get("version")),
            "embedder": info.get("embedder", ""), "chunker": info.get("chunker", ""),
            "ingest_seconds": _num(info.get("ingest_seconds")),
            "n_docs": info.get("n_docs", info.get("documents")), "rows": info.get("rows")}


@dataclass
class _NamedBackend:
    name: str


def _resolve_extractive(r: Resolved) -> Resolved:
    """The retrieval-only column: no model, no prompt; only the collection is pinned."""
    spec = r.spec
    r.backend, r.model_id, r.prompt_name, r.prompt_version = "", EXTRACTIVE_MODEL, "-", 0
    r.params = {}
    if _pin_collection(r) is None:
        return r
    r.rag["context"] = {"name": "extractive", "method": "extractive", "k": int(spec.rag.k), "max_sentences": 2}
    return r


def _num(v):
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _model_digest(backend_name: str, model_id: str) -> str:
    """The backend's content hash of the model (embedded: sha256 of the GGUF's first 8 MB, cached)."""
    try:
        from core.llm.registry import get_backend

        return get_backend(backend_name).digest(model_id)
    except Exception:  # noqa: BLE001 - the digest is recorded per answer from Usage anyway
        return ""


def _unavailable(r: Resolved, reason: str) -> Resolved:
    r.available, r.reason = False, reason
    return r


# ---- running one question ------------------------------------------------------------------------------
def prompt_variables(pspec, question: str, extra: dict | None = None) -> dict[str, str]:
    """Template values of a prompt-only approach: the same as a RAG answer's (core.rag.answer.rag_variables)."""
    from core.rag.answer import rag_variables

    return rag_variables(pspec, question, extra)


class AnswerRun:
    """Run one question with one resolved approach. Iterate for text deltas (streaming), then read `.record`:
    answer, usage, retrieval (chunks, table version, seconds) and end-to-end timings. Errors raise from the
    iteration (typed WorkbenchError) - the caller records them."""

    def __init__(self, res: Resolved, question: str, backend, variables: dict | None = None):
        self.res, self.question, self.backend = res, question, backend
        self.variables = variables or None          # None: the scenario's values (as the Knowledge Base uses)
        self.record: dict | None = None
        self.retrieval: dict | None = None
        self.messages: list[dict] | None = None
        self._stream = None
        self._chunks: list = []                   # retrieved chunks (retrieval-only column)

    def prepare(self) -> list[dict]:
        """Retrieve (if on) and render the messages. Separate so the UI can show citations before streaming.
        A RAG approach goes through core.rag.answer.prepare_rag_messages, the Knowledge Base's own step."""
        from core.llm.base import GenParams
        from core.prompts.spec import PromptSpec

        if not self.res.available:
            raise CompareError(f"Approach {self.res.name} is unavailable: {self.res.reason}")
        if self.res.spec.model_free:
            return self._prepare_extractive()
        pspec = PromptSpec.from_dict(self.res.prompt)
        if not self.res.rag:
            self.messages = pspec.render(prompt_variables(pspec, self.question, self.variables))
            return self.messages
        from core.rag.answer import prepare_rag_messages

        rag = self.res.rag
        retr, secs = self._retrieve()
        # the profile pinned at resolution (older runs: the answering backend's own)
        ctx = {k: v for k, v in (rag.get("context") or {}).items() if v is not None and k != "k"} or None
        rp = prepare_rag_messages(self.question, retr.chunks, pspec, self.backend, self.res.model_id,
                                  GenParams.from_dict(self.res.params), self.variables, profile=ctx)
        # chunk [n] of the prompt = chunks[n-1]; `prompt_text` is what of it the prompt held (scores use it)
        chunks = [{"id": str(c.id), "text": c.text, "source": c.source, "position": c.position,
                   "score": _num(c.score), "rank": c.rank, "prompt_text": sn.text}
                  for c, sn in zip(rp.chunks, rp.snippets)]
        self.retrieval = {"collection": rag["collection"], "mode": rag["mode"], "k": int(rag["k"]),
                          "table_version": retr.table_version, "seconds": secs, "chunks": chunks,
                          "retrieved": len(retr.chunks), "dropped": rp.dropped,
                          "profile": rp.profile, "context_selected": rp.selected}
        self.messages = rp.messages
        return self.messages

    def _retrieve(self):
        """The pinned retrieval of this question (collection, mode, k, table version) and its seconds."""
        from core.rag import api as rag_api

        rag = self.res.rag
        t0 = time.perf_counter()
        retr = rag_api.retrieve(self.question, rag["collection"], mode=rag["mode"], k=int(rag["k"]),
                                version=rag.get("table_version"))
        return retr, time.perf_counter() - t0

    def _prepare_extractive(self) -> list[dict]:
        rag = self.res.rag
        retr, secs = self._retrieve()
        chunks = [{"id": str(c.id), "text": c.text, "source": c.source, "position": c.position,
                   "score": _num(c.score), "rank": c.rank} for c in retr.chunks]
        self.retrieval = {"collection": rag["collection"], "mode": rag["mode"], "k": int(rag["k"]),
                          "table_version": retr.table_version, "seconds": secs, "chunks": chunks,
                          "retrieved": len(retr.chunks), "dropped": 0,
                          "profile": dict(rag.get("context") or {}), "context_selected": False}
        self._chunks = retr.chunks
        self.messages = []
        return self.messages

    def _run_extractive(self) -> Iterator[str]:
        from core.rag.select import extractive_answer

        t0 = time.perf_counter()
        ans = extractive_answer(self.question, self._chunks)
        secs = time.perf_counter() - t0
        yield ans.text
        rsec = self.retrieval["seconds"]
        self.retrieval["quoted"] = ans.sentences
        self.record = {
            "answer": ans.text, "usage": {}, "retrieval": self.retrieval, "retrieval_s": rsec,
            "ttft_s": rsec + secs, "latency_s": rsec + secs, "prompt_tokens": 0, "completion_tokens": 0,
            "digest": "", "adapter_sha256": "", "model_free": True,
        }

    def __iter__(self) -> Iterator[str]:
        from core.llm.base import GenParams

        if self.messages is None:
            self.prepare()
        if self.res.spec.model_free:
            yield from self._run_extractive()
            return
        t0 = time.perf_counter()
        params = GenParams.from_dict(self.res.params)
        self._stream = self.backend.chat_stream(self.messages, params, model=self.res.model_id)
        first = None
        for delta in self._stream:
            if first is None:
                first = time.perf_counter()
            yield delta
        usage = self._stream.usage
        wall = time.perf_counter() - t0
        rsec = self.retrieval["seconds"] if self.retrieval else 0.0
        u = usage.to_dict() if usage is not None else {}
        self.record = {
            "answer": self._stream.text,
            "usage": u,
            "retrieval": self.retrieval,
            "retrieval_s": rsec,
            # user-perceived: retrieval happens before the first token
            "ttft_s": rsec + float(u.get("ttft_s") or ((first or time.perf_counter()) - t0)),
            "latency_s": rsec + float(u.get("latency_s") or wall),
            "prompt_tokens": int(u.get("prompt_tokens") or 0),
            "completion_tokens": int(u.get("completion_tokens") or 0),
            "digest": u.get("digest") or self.res.digest,
            "adapter_sha256": (self.res.adapter or {}).get("sha256", ""),
        }

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def run(self) -> dict:
        for _ in self:
            pass
        assert self.record is not None
        return self.record
