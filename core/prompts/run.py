"""Running prompt variants: pre-flight checks (tokens, context window), streaming several variants together,
batch runs over a table of inputs, and JSON-schema validation of structured output.

No Streamlit here. The Prompt Lab page prepares every variant in its script thread (so warnings show before
anything runs), then consumes `stream_variants(...)` events and writes each delta into that variant's column.
Worker threads only talk to the backend and a queue; the embedded llama.cpp model serialises them behind its lock.
"""
from __future__ import annotations

import json
import queue
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from core.errors import ContextOverflow, PromptError, WorkbenchError
from core.jsonout import NotJSON, extract_json, loads, schema_problem, validate_json_output  # noqa: F401 - re-exported
from core.llm.base import GenParams, Message, Usage, check_messages
from core.prompts.spec import PromptSpec

WARN_FRACTION = 0.9      # warn when prompt + max_tokens uses more than this share of the context window


class InvalidSchema(PromptError):
    """The JSON schema of a prompt is not a valid JSON Schema."""


# ---- JSON schema / structured output (the extractor and the output check live in core.jsonout) ------------------
def check_schema(schema: Any) -> dict:
    """Return the schema if it is a valid JSON Schema, else raise InvalidSchema saying where and why."""
    if not isinstance(schema, dict):
        raise InvalidSchema(f"A JSON schema must be a JSON object like {{\"type\": \"object\", ...}} "
                            f"(got {type(schema).__name__}).")
    problem = schema_problem(schema)
    if problem:
        raise InvalidSchema(f"The JSON schema is {problem}")
    return schema


def parse_schema_text(text: str | None) -> dict | None:
    """The JSON-schema text area of a variant -> schema dict (None when blank). Raises InvalidSchema."""
    if text is None or not text.strip():
        return None
    try:
        data = loads(text)
    except NotJSON:
        raise InvalidSchema("The JSON schema is nested too deeply to read.") from None
    except json.JSONDecodeError as exc:
        raise InvalidSchema(f"The JSON schema is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}).") from None
    return check_schema(data)


# ---- variants ----------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """One column of the Prompt Lab: a spec plus where to run it."""
    label: str
    spec: PromptSpec
    backend: str = ""          # "" = the configured default backend
    model: str = ""            # "" = that backend's default model
    ref: str = ""              # library reference it came from (e.g. "few_shot@2"), for the CLI line


@dataclass
class Prepared:
    """A variant rendered and measured before anything runs."""
    variant: Variant
    backend: Any                # a core.llm.base.Backend
    messages: list[Message]
    params: GenParams
    prompt_tokens: int
    n_ctx: int

    @property
    def needed_tokens(self) -> int:
        return self.prompt_tokens + self.params.max_tokens

    @property
    def context_fraction(self) -> float:
        return self.needed_tokens / self.n_ctx if self.n_ctx else 0.0

    @property
    def overflow(self) -> bool:
        return bool(self.n_ctx) and self.needed_tokens > self.n_ctx

    @property
    def warning(self) -> str | None:
        """Shown before running: the request would be cut off, or is close to the window."""
        if not self.n_ctx:
            return None
        if self.overflow:
            return (f"Prompt ({self.prompt_tokens} tokens) + max_tokens ({self.params.max_tokens}) = "
                    f"{self.needed_tokens} tokens exceeds the {self.n_ctx}-token context window of "
                    f"{self.variant.model or 'the model'}: shorten the prompt or few-shot examples, or lower max_tokens.")
        if self.context_fraction > WARN_FRACTION:
            return (f"Prompt + max_tokens use {self.context_fraction:.0%} of the {self.n_ctx}-token context window: "
                    f"a longer input may not fit.")
        return None

    def overflow_error(self) -> ContextOverflow:
        return ContextOverflow(self.prompt_tokens, self.params.max_tokens, self.n_ctx, self.variant.model)


@dataclass
class VariantResult:
    label: str
    text: str = ""
    usage: Usage | None = None
    error: str | None = None
    error_type: str | None = None
    json_ok: bool | None = None        # None when the variant asks for no JSON
    json_error: str | None = None
    parsed: Any = None
    prompt_tokens: int = 0
    n_ctx: int = 0

    def to_dict(self) -> dict:
        return {"label": self.label, "text": self.text, "usage": self.usage.to_dict() if self.usage else None,
                "error": self.error, "error_type": self.error_type, "json_ok": self.json_ok,
                "json_error": self.json_error, "parsed": self.parsed}


def prepare(variant: Variant, variables: dict[str, str], backend, context: str | None = None) -> Prepared:
    """Render the messages, validate params and schema, count prompt tokens and read the context window.
    Raises MissingVariable / PromptError / InvalidSchema / EmptyPrompt / InvalidParams / ModelNotFound."""
    spec = variant.spec
    if not spec.template.strip():
        raise PromptError(f"Variant {variant.label}: the user template is empty; write at least {{question}}.")
    if spec.json_schema is not None:
        check_schema(spec.json_schema)
    messages = spec.render(variables, context=context)
    check_messages(messages)
    params = spec.gen_params().validate()
    model = variant.model or None
    report = backend.check_context(messages, params, model)
    return Prepared(variant, backend, messages, params, report.prompt_tokens, report.n_ctx)


def _finish(p: Prepared, text: str, usage: Usage | None) -> VariantResult:
    res = VariantResult(p.variant.label, text=text, usage=usage, prompt_tokens=p.prompt_tokens, n_ctx=p.n_ctx)
    if p.variant.spec.json_schema is not None:
        res.json_ok, res.json_error, res.parsed = validate_json_output(text, p.variant.spec.json_schema)
    return res


def _error_result(label: str, exc: BaseException, p: Prepared | None = None) -> VariantResult:
    msg = str(exc) if isinstance(exc, WorkbenchError) else f"Unexpected error ({type(exc).__name__}): {exc}"
    return VariantResult(label, error=msg, error_type=type(exc).__name__,
                         prompt_tokens=p.prompt_tokens if p else 0, n_ctx=p.n_ctx if p else 0)


def run_prepared(p: Prepared) -> VariantResult:
    """Run one prepared variant to completion (no streaming). Errors become a result with `error` set."""
    try:
        if p.overflow:
            raise p.overflow_error()
        stream = p.backend.chat_stream(p.messages, p.params, model=p.variant.model or None)
        r = stream.result()
        return _finish(p, r.text, r.usage)
    except Exception as exc:  # noqa: BLE001 - reported per variant, never kills the others
        return _error_result(p.variant.label, exc, p)


@dataclass
class Event:
    """What happened to variant `index`: 'waiting' | 'start' | 'delta' (text) | 'done' (result) | 'error' (result)."""
    index: int
    kind: str
    text: str = ""
    result: VariantResult | None = None


def stream_variants(prepared: list[Prepared], parallel: bool = True) -> Iterator[Event]:
    """Stream several prepared variants; yields Events in arrival order (consume from ONE thread, e.g. the
    Streamlit script thread, and write each into its own column).

    Variants on the same backend run one after another (the embedded model serves one request at a time, and
    queueing behind a sibling variant would inflate its measured TTFT and latency). With parallel=True each
    backend gets its own worker thread feeding a queue, so a variant on Ollama streams while one on the embedded
    model does. Closing the iterator early (a Streamlit rerun) cancels the workers at their next token.
    """
    if not parallel:
        yield from _stream_sequential(prepared)
        return
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prepared):
        groups.setdefault(id(p.backend), []).append(i)
    q: queue.Queue[Event | None] = queue.Queue()
    cancel = threading.Event()

    def run_one(i: int, p: Prepared) -> None:
        try:
            if p.overflow:
                raise p.overflow_error()
            stream = p.backend.chat_stream(p.messages, p.params, model=p.variant.model or None)
            it = iter(stream)
            q.put(Event(i, "start"))
            try:
                for delta in it:
                    if cancel.is_set():
                        return
                    if delta:
                        q.put(Event(i, "delta", delta))
            finally:
                if cancel.is_set():
                    it.close()
            q.put(Event(i, "done", result=_finish(p, stream.text, stream.usage)))
        except Exception as exc:  # noqa: BLE001 - one variant's failure is shown in its column only
            q.put(Event(i, "error", result=_error_result(p.variant.label, exc, p)))

    def work(indices: list[int]) -> None:
        try:
            for i in indices:
                if cancel.is_set():
                    return
                run_one(i, prepared[i])
        finally:
            q.put(None)

    threads = [threading.Thread(target=work, args=(idx,), daemon=True, name=f"pl-backend-{k}")
               for k, idx in enumerate(groups.values())]
    for i in range(len(prepared)):
        yield Event(i, "waiting")
    for t in threads:
        t.start()
    remaining = len(threads)
    try:
        while remaining:
            ev = q.get()
            if ev is None:
                remaining -= 1
                continue
            yield ev
    finally:
        cancel.set()


def _stream_sequential(prepared: list[Prepared]) -> Iterator[Event]:
    for i in range(len(prepared)):
        yield Event(i, "waiting")
    for i, p in enumerate(prepared):
        try:
            if p.overflow:
                raise p.overflow_error()
            stream = p.backend.chat_stream(p.messages, p.params, model=p.variant.model or None)
            yield Event(i, "start")
            for delta in stream:
                if delta:
                    yield Event(i, "delta", delta)
            yield Event(i, "done", result=_finish(p, stream.text, stream.usage))
        except Exception as exc:  # noqa: BLE001
            yield Event(i, "error", result=_error_result(p.variant.label, exc, p))


def run_variants(prepared: list[Prepared], parallel: bool = True) -> list[VariantResult]:
    """All variants to completion; results in the variants' order."""
    out: list[VariantResult | None] = [None] * len(prepared)
    for ev in stream_variants(prepared, parallel=parallel):
        if ev.kind in ("done", "error"):
            out[ev.index] = ev.result
    return [r for r in out if r is not None]


# ---- batch over a table of inputs --------------------------------------------------------------------------
def row_variables(spec: PromptSpec, row: dict, fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Variables for one table row: the row's columns fill same-named {variables}; `fixed` fills the rest."""
    values = dict(fixed or {})
    for name in spec.variables():
        if name in row and row[name] is not None:
            values[name] = str(row[name])
    return values


def run_batch(variant: Variant, rows: Iterable[dict], backend, fixed: dict[str, str] | None = None,
              limit: int | None = None, progress: Callable[[int, int, dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Run one variant over table rows, one after another. Returns one record per row (an error in one row
    is recorded and the batch goes on). `progress(done, total, record)` is called after each row."""
    rows = list(rows)[: limit or None]
    total = len(rows)
    records: list[dict] = []
    for i, row in enumerate(rows):
        if should_stop and should_stop():
            break
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"variant": variant.label, "prompt": variant.ref or variant.spec.name,
                               "model": variant.model, "id": row.get("id", i + 1),
                               "input": str(row.get("question", "") or json.dumps(row, ensure_ascii=False))[:200]}
        try:
            p = prepare(variant, row_variables(variant.spec, row, fixed), backend)
            res = run_prepared(p)
        except Exception as exc:  # noqa: BLE001
            res = _error_result(variant.label, exc)
        u = res.usage
        rec.update({
            "output": res.text, "error": res.error or "",
            "prompt_tokens": u.prompt_tokens if u else res.prompt_tokens,
            "completion_tokens": u.completion_tokens if u else 0,
            "total_tokens": (u.total_tokens if u else res.prompt_tokens),
            "ttft_s": round(u.ttft_s, 4) if u else None,
            "latency_s": round(u.latency_s, 4) if u else round(time.perf_counter() - t0, 4),
            "tokens_per_s": round(u.tokens_per_s, 2) if u else None,
            "json_ok": res.json_ok,
        })
        if "reference" in row:
            rec["reference"] = row.get("reference")
        records.append(rec)
        if progress:
            progress(i + 1, total, rec)
    return records


def batch_summary(records: list[dict]) -> list[dict]:
    """Per variant: rows, errors, mean/median latency, mean tokens, JSON-valid rate."""
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["variant"], []).append(r)
    out = []
    for label, rs in by.items():
        ok = [r for r in rs if not r["error"]]
        lat = sorted(r["latency_s"] for r in ok)
        js = [r["json_ok"] for r in rs if r.get("json_ok") is not None]
        out.append({
            "variant": label, "prompt": rs[0]["prompt"], "model": rs[0]["model"], "rows": len(rs),
            "errors": len(rs) - len(ok),
            "mean_latency_s": round(sum(lat) / len(lat), 3) if lat else None,
            "median_latency_s": round(lat[len(lat) // 2], 3) if lat else None,
            "mean_prompt_tokens": round(sum(r["prompt_tokens"] for r in ok) / len(ok), 1) if ok else None,
            "mean_completion_tokens": round(sum(r["completion_tokens"] for r in ok) / len(ok), 1) if ok else None,
            "json_valid_rate": round(sum(js) / len(js), 3) if js else None,
        })
    return out


def batch_figure(records: list[dict]):
    """Plotly figure: latency per row (box) and mean prompt/completion tokens (stacked bars) per variant."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Latency per input (s)", "Mean tokens per input"))
    summary = batch_summary(records)
    for s in summary:
        lat = [r["latency_s"] for r in records if r["variant"] == s["variant"] and not r["error"]]
        fig.add_trace(go.Box(y=lat, name=s["variant"], boxpoints="all", showlegend=False), row=1, col=1)
    names = [s["variant"] for s in summary]
    fig.add_trace(go.Bar(x=names, y=[s["mean_prompt_tokens"] or 0 for s in summary], name="prompt tokens"),
                  row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[s["mean_completion_tokens"] or 0 for s in summary], name="completion tokens"),
                  row=1, col=2)
    fig.update_layout(barmode="stack", height=380, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig


# ---- helpers for the page and the CLI ----------------------------------------------------------------------
def all_variables(specs: Iterable[PromptSpec]) -> list[str]:
    """Union of the {variables} of several specs, in first-seen order ({context} excluded: RAG fills it).
    Specs whose template does not parse are skipped (their column shows the error)."""
    out: list[str] = []
    for s in specs:
        try:
            names = s.variables()
        except PromptError:
            continue
        for n in names:
            if n != "context" and n not in out:
                out.append(n)
    return out


def cli_line(ref: str, variables: dict[str, str], backend: str = "", model: str = "",
             overrides: dict[str, Any] | None = None, json_out: bool = False) -> str:
    """The `python -m core generate` line that runs this prompt version with these inputs."""
    parts = ["python", "-m", "core", "generate", "--prompt", ref]
    for k, v in variables.items():
        parts += ["--var", f"{k}={v}"]
    if backend:
        parts += ["--backend", backend]
    if model:
        parts += ["--model", model]
    for k, v in (overrides or {}).items():
        flag = "--" + k.replace("_", "-")
        if k == "stop":
            for s in v or []:
                parts += ["--stop", s]
        elif v is not None:
            parts += [flag, str(v)]
    if json_out:
        parts.append("--json")
    return shlex.join(parts)


PARAM_FLAGS = ("temperature", "top_p", "max_tokens", "seed", "stop")


def param_overrides(current: GenParams, saved: GenParams | None) -> dict[str, Any]:
    """The generation params that differ from the saved version (they become CLI flags)."""
    out: dict[str, Any] = {}
    for k in PARAM_FLAGS:
        cur = getattr(current, k)
        if saved is None or getattr(saved, k) != cur:
            if k == "stop" and not cur and saved is None:
                continue
            out[k] = cur
    return out


__all__ = ["InvalidSchema", "check_schema", "parse_schema_text", "extract_json", "validate_json_output", "Variant",
           "Prepared", "VariantResult", "Event", "prepare", "run_prepared", "stream_variants", "run_variants",
           "row_variables", "run_batch", "batch_summary", "batch_figure", "all_variables",
           "cli_line", "param_overrides"]
