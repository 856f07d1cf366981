"""The advisor: a short questionnaire about a use case -> where to start (prompting, RAG, fine-tuning), the next
step up, the reason for each in one sentence, and what would change the answer. Then a Compare run spec that
tests the advice against its alternatives, and a check of the advice against measured results.

The rules follow the "start simple" progression of the prompt-vs-RAG-vs-fine-tuning framework:
- knowledge the base model lacks, facts that change faster than a training cycle, or required citations are a
  retrieval problem: start with prompt + RAG (facts live in an index, not in weights);
- otherwise start with the prompt alone;
- a strict output format or brand voice is behaviour: fine-tuning is the next step up, once prompting (and
  retrieval) cannot hold it, and only with enough examples and a training budget; it never carries the facts;
- cost (queries per month), latency (budget) and maintenance (how often facts change) shape the reasons.
A measured comparison outranks all of this: `check_advice` says when the numbers contradict the advice.

Nothing here imports streamlit or anything heavy.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.errors import AdvisorError, CompareError

KNOWS = ("yes", "partly", "no")
CHANGES = ("never", "yearly", "monthly", "weekly", "daily")
BUDGETS = ("none", "low", "high")
VOLATILE = ("monthly", "weekly", "daily")      # faster than a fine-tune can be redone and re-checked
FT_MIN_EXAMPLES = 100                          # below this a LoRA has too little to learn a behaviour from
FEW_SHOT_MIN_EXAMPLES = 2
HIGH_VOLUME = 100_000                          # queries / month where per-query prompt tokens dominate cost
TIGHT_LATENCY_S = 1.0                          # an end-to-end budget below this leaves little room for retrieval
MAX_QUERIES = 10**12
MAX_EXAMPLES = 10**9

RUNGS = ("prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag")   # the classic preset's names
LABELS = {"prompt_only": "Prompt engineering only", "prompt_rag": "Prompt engineering + RAG",
          "fine_tuned": "Fine-tuned model (LoRA) + prompt", "fine_tuned_rag": "Fine-tuned model (LoRA) + RAG"}
COMPLEXITY = {r: i for i, r in enumerate(RUNGS)}     # same order as ApproachSpec.complexity

PREFILL_KEY = "cmp_prefill"          # st.session_state key the Compare page reads (a dict: see compare_spec)
QUERY_PARAM = "advice"               # ?advice=<Questionnaire.to_query()> survives a browser refresh
ADVICE_FILE = "advice.json"          # in a compare run folder: the advice that run was set up to test

CHANGE_WORDS = {"never": "never", "yearly": "about once a year", "monthly": "monthly", "weekly": "weekly",
                "daily": "daily"}
BUDGET_WORDS = {"none": "no training budget", "low": "a few GPU-hours now and then",
                "high": "regular retraining runs"}


@dataclass
class Questionnaire:
    """The advisor's questions. Defaults describe the simplest case (the model knows stable facts, nothing strict)."""
    knows_facts: str = "yes"            # does the base model already know the facts it must answer with?
    facts_change: str = "yearly"        # how often those facts change
    citations: bool = False             # must answers cite or attribute their sources?
    strict_format: bool = False         # must answers follow a strict output format / schema?
    strict_voice: bool = False          # must answers keep a fixed brand voice / persona?
    examples: int = 0                   # curated examples of the desired behaviour (input -> ideal answer)
    queries_per_month: int = 10_000
    latency_budget_s: float | None = None   # end-to-end p95 the product can afford; None = no budget
    training_budget: str = "none"       # none | low (a few GPU-hours) | high (regular retraining)

    @classmethod
    def demo(cls) -> "Questionnaire":
        """The answers for the shipped Tidewave support desk: a fictional product (the model cannot know it),
        release notes that update facts, cited answers, the fixed "Pip" voice, and the scenario's own
        training transcripts as examples (fine-tuning runs on this machine's CPU: a low budget)."""
        from core.scenario import load_scenario
        from core.config import SAMPLE_DOCS

        ft = load_scenario().raw.get("finetune")
        train = ft.get("train") if isinstance(ft, dict) else None
        n = 0
        if train:
            p = SAMPLE_DOCS / str(train)
            try:
                n = sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
            except OSError:
                n = 0
        return cls(knows_facts="no", facts_change="monthly", citations=True, strict_format=False, strict_voice=True,
                   examples=n, queries_per_month=10_000, latency_budget_s=None, training_budget="low")

    def validate(self) -> "Questionnaire":
        def choice(name, value, options):
            if value not in options:
                raise AdvisorError(f"{name} must be one of {', '.join(options)} (got {value!r}).")
        choice("knows_facts", self.knows_facts, KNOWS)
        choice("facts_change", self.facts_change, CHANGES)
        choice("training_budget", self.training_budget, BUDGETS)
        for name in ("citations", "strict_format", "strict_voice"):
            if not isinstance(getattr(self, name), bool):
                raise AdvisorError(f"{name} must be true or false (got {getattr(self, name)!r}).")
        for name, top in (("examples", MAX_EXAMPLES), ("queries_per_month", MAX_QUERIES)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
                raise AdvisorError(f"{name} must be a whole number from 0 to {top:,} (got {v!r}).")
        lat = self.latency_budget_s
        if lat is not None and (isinstance(lat, bool) or not isinstance(lat, (int, float)) or not 0 < lat <= 3600):
            raise AdvisorError(f"latency_budget_s must be a number of seconds above 0 and at most 3600, or none "
                               f"(got {lat!r}).")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Questionnaire":
        if not isinstance(d, dict):
            raise AdvisorError("The advisor answers must be an object of question -> answer.")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise AdvisorError(f"Unknown advisor question(s): {', '.join(unknown)}.")
        return cls(**d).validate()

    # a compact, URL-safe form for ?advice=... (letters, digits, '.', '_', '-', ':' and ',')
    _SHORT = {"knows_facts": "knows", "facts_change": "change", "citations": "cite", "strict_format": "format",
              "strict_voice": "voice", "examples": "ex", "queries_per_month": "qpm", "latency_budget_s": "lat",
              "training_budget": "budget"}

    def to_query(self) -> str:
        parts = []
        for name, short in self._SHORT.items():
            v = getattr(self, name)
            v = "" if v is None else int(v) if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else v
            parts.append(f"{short}:{v}")
        return ",".join(parts)

    @classmethod
    def from_query(cls, text: str) -> "Questionnaire":
        long = {s: n for n, s in cls._SHORT.items()}
        d: dict = {}
        for part in (text or "").split(","):
            if not part:
                continue
            key, sep, val = part.partition(":")
            if not sep or key not in long:
                raise AdvisorError(f"advice {part!r} is not one of {', '.join(long)} as key:value.")
            name = long[key]
            try:
                if name in ("citations", "strict_format", "strict_voice"):
                    if val not in ("0", "1"):
                        raise ValueError(val)
                    d[name] = val == "1"
                elif name in ("examples", "queries_per_month"):
                    d[name] = int(val)
                elif name == "latency_budget_s":
                    d[name] = float(val) if val else None
                else:
                    d[name] = val
            except ValueError as exc:
                raise AdvisorError(f"advice {part!r}: {val!r} is not a valid value.") from exc
        return cls.from_dict(d)


@dataclass
class Step:
    approach: str                   # one of RUNGS
    reason: str                     # one sentence, from the framework
    ready: bool = True              # False: the step is the right one, but something blocks it today
    blockers: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.approach]

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


@dataclass
class Recommendation:
    answers: Questionnaire
    start: Step
    next_step: Step | None
    considerations: dict            # accuracy / cost / latency / maintenance -> one sentence each
    would_change: list[str]
    test_against: list[str]         # rungs a comparison should run: start, next step, and the alternative(s)

    def to_dict(self) -> dict:
        return {"answers": self.answers.to_dict(), "start": self.start.to_dict(),
                "next_step": self.next_step.to_dict() if self.next_step else None,
                "considerations": dict(self.considerations), "would_change": list(self.would_change),
                "test_against": list(self.test_against), "text": self.text()}

    def text(self) -> str:
        """Plain text (no Markdown): the page shows it with st.text / st.code, the CLI prints it."""
        lines = [f"Start with: {self.start.label} ({self.start.approach})", f"  Why: {self.start.reason}"]
        if self.next_step:
            state = "" if self.next_step.ready else " - not ready yet"
            lines += [f"Next step up: {self.next_step.label} ({self.next_step.approach}){state}",
                      f"  Why: {self.next_step.reason}"]
            lines += [f"  Blocked by: {b}" for b in self.next_step.blockers]
        else:
            lines += ["Next step up: none needed - nothing in these answers calls for more than the start."]
        lines += ["", "The four considerations:"]
        lines += [f"  {k.capitalize()}: {v}" for k, v in self.considerations.items()]
        lines += ["", "What would change the answer:"] + [f"  - {w}" for w in self.would_change]
        lines += ["", "Compare run to check it: " + ", ".join(self.test_against)]
        return "\n".join(lines)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def advise(q: Questionnaire) -> Recommendation:
    """The recommendation for these answers (pure, deterministic)."""
    q.validate()
    gap = q.knows_facts != "yes"
    volatile = q.facts_change in VOLATILE
    needs_rag = gap or volatile or q.citations
    behaviour = [w for w, on in (("a strict output format", q.strict_format), ("a fixed brand voice", q.strict_voice))
                 if on]
    high_volume = q.queries_per_month >= HIGH_VOLUME
    tight = q.latency_budget_s is not None and q.latency_budget_s < TIGHT_LATENCY_S
    few_shot_ok = q.examples >= FEW_SHOT_MIN_EXAMPLES

    # ---- where to start
    if needs_rag:
        why = []
        if gap:
            why.append("the base model lacks " + ("some of " if q.knows_facts == "partly" else "")
                       + "these facts (a prompt cannot teach new ones)")
        if volatile:
            why.append(("they" if gap else "the facts") + f" change {CHANGE_WORDS[q.facts_change]} (an index is updated in minutes, weights "
                       f"would need retraining)")
        if q.citations:
            why.append("answers must cite sources (only retrieved passages can be cited)")
        reason = "Retrieval first: " + "; ".join(why) + "."
        start = Step("prompt_rag", reason)
    else:
        reason = ("The base model already knows what it needs and the facts are stable, so better instructions "
                  + (f"(a system prompt plus a few of your {q.examples} examples) " if few_shot_ok and behaviour
                     else "(a system prompt, a few examples) ")
                  + "are the cheapest thing to try: nothing is trained or indexed and a change takes minutes.")
        start = Step("prompt_only", reason)

    # ---- the next step up
    nxt = None
    if behaviour:
        rung = "fine_tuned_rag" if needs_rag else "fine_tuned"
        blockers = []
        if q.examples < FT_MIN_EXAMPLES:
            blockers.append(f"only {q.examples} examples of the desired behaviour; a LoRA fine-tune wants at least "
                            f"{FT_MIN_EXAMPLES} clean ones, better a few hundred")
        if q.training_budget == "none":
            blockers.append("no budget for training compute")
        what = _join(behaviour)
        reason = (f"{what[0].upper()}{what[1:]} is behaviour, not knowledge: when the prompt"
                  + (" and retrieval" if needs_rag else "")
                  + f" still cannot hold it on every answer, train a LoRA adapter on "
                  + (f"your {q.examples} examples" if q.examples else "examples of it")
                  + (", which also replaces a long few-shot prompt at this volume" if high_volume else "")
                  + (" - for the behaviour only, while RAG keeps serving the facts" if needs_rag else "") + ".")
        nxt = Step(rung, reason, ready=not blockers, blockers=blockers)

    # ---- the four considerations, one sentence each
    cons = {}
    if start.approach == "prompt_rag":
        acc = "Retrieval grounds answers in your documents, so measure facts questions (did it find the evidence, did it cite it)"
    else:
        acc = "Prompting is strongest where the model already has the capability, so measure whether its answers are right as well as well-formed"
    if behaviour:
        acc += ", and count how often the " + ("format" if q.strict_format and not q.strict_voice else
                                               "voice" if q.strict_voice and not q.strict_format else
                                               "format and voice") + " holds: that is what fine-tuning would buy."
    else:
        acc += "."
    cons["accuracy"] = acc
    if high_volume:
        cost = (f"At {q.queries_per_month:,} queries a month every prompt token is paid that many times: keep "
                f"prompts and retrieved context short"
                + (", and weigh a fine-tune's one-off training against the long prompt it replaces." if behaviour
                   else "."))
    else:
        cost = (f"At {q.queries_per_month:,} queries a month per-query cost stays small, so one-off costs "
                f"(indexing, training) weigh more than prompt length.")
    cons["cost"] = cost
    if q.latency_budget_s is None:
        lat = "No latency budget given: still compare p95 latency, since retrieval and longer prompts add time before the first token."
    elif needs_rag:
        lat = (f"Retrieval adds a query embedding, a search and a longer prompt before the first token; check "
               f"the measured p95 against your {q.latency_budget_s:g} s budget"
               + (" - tight, so keep k small." if tight else "."))
    else:
        lat = (f"A prompt adds no step beyond generation; a long few-shot prompt still costs time to read, so "
               f"check the measured p95 against your {q.latency_budget_s:g} s budget.")
    cons["latency"] = lat
    if volatile and nxt:
        maint = (f"With facts changing {CHANGE_WORDS[q.facts_change]}, keep them out of any fine-tune: re-index "
                 f"changed documents, and retrain only when the wanted behaviour or the base model changes.")
    elif needs_rag:
        maint = "An index must be kept current (re-ingest changed documents, watch retrieval quality); prompts are versioned text."
    elif nxt:
        maint = "A fine-tuned adapter is an artifact to version and retrain when the behaviour or the base model changes; a prompt is cheap to change."
    else:
        maint = "A prompt is versioned text, cheap to change; give it an owner so it does not drift."
    cons["maintenance"] = maint

    # ---- what would change the answer
    change = []
    if needs_rag:
        drivers = []
        if gap:
            drivers.append("the base model knew the facts")
        if volatile:
            drivers.append("they changed less often than monthly")
        if q.citations:
            drivers.append("no citations were required")
        change.append("A prompt alone would do if " + _join(drivers) + ".")
    else:
        change.append("Start with prompt + RAG instead if the model lacks some facts, they change monthly or "
                      "faster, or answers must cite sources.")
    if not behaviour:
        change.append("If a strict output format or brand voice becomes required and prompting cannot hold it, "
                      + ("fine-tuned + RAG" if needs_rag else "a fine-tune") + " becomes the next step.")
    else:
        if q.examples < FT_MIN_EXAMPLES:
            change.append(f"With at least {FT_MIN_EXAMPLES} curated examples (you have {q.examples}), the "
                          f"fine-tune becomes a ready next step.")
        if q.training_budget == "none":
            change.append("A budget for a few GPU-hours (or CPU time for a small model) would unblock the fine-tune.")
        if not high_volume:
            change.append(f"Above {HIGH_VOLUME:,} queries a month, the shorter prompt of a fine-tuned model starts "
                          f"to pay back its training sooner.")
    if tight and needs_rag:
        change.append(f"If the measured p95 with retrieval cannot fit {q.latency_budget_s:g} s, shrink k and the "
                      f"context first: the facts still need retrieval.")
    change.append("A measured comparison outranks this advice: if a simpler approach is not clearly worse on "
                  "your questions, take the simpler one.")

    # ---- the approaches a comparison should test
    test = [start.approach]
    if nxt:
        test.append(nxt.approach)
    test.append("prompt_only" if start.approach == "prompt_rag" else "prompt_rag")   # is retrieval earned / needed?
    test = list(dict.fromkeys(test))
    return Recommendation(q, start, nxt, cons, change, test)


# ---- from advice to a Compare run ------------------------------------------------------------------------------
def compare_spec(rec: Recommendation, collection: str | None = None, mode: str = "hybrid", k: int = 4,
                 repeats: int = 1, include_all: bool = False) -> dict:
    """The pre-filled Compare run: the classic preset's definitions of the rungs to test, the recommended one
    first. `approaches` holds `NAME=SPEC` strings exactly as `python -m core compare --approach` and
    `core.compare.approach.parse_approach` accept them; `cli` is the equivalent command line."""
    from core.compare.approach import classic_presets

    if collection is None:
        from core.scenario import load_scenario
        collection = load_scenario().collection
    if not isinstance(repeats, int) or isinstance(repeats, bool) or not 1 <= repeats <= 20:
        raise AdvisorError(f"repeats must be a whole number from 1 to 20 (got {repeats!r}).")
    by_name = {s.name: s for s in classic_presets(collection, mode, k)}
    rungs = list(rec.test_against) + ([r for r in RUNGS if r not in rec.test_against] if include_all else [])
    approaches = [by_name[r].to_string() for r in rungs]
    cli = "python -m core compare " + " ".join(f"--approach {shlex.quote(a)}" for a in approaches)
    name = f"advisor: {rec.start.approach}" + (f" then {rec.next_step.approach}" if rec.next_step else "")
    return {"kind": "compare_prefill", "version": 1, "name": name, "approaches": approaches,
            "recommended": rec.start.approach, "next_step": rec.next_step.approach if rec.next_step else None,
            "repeats": repeats, "query": rec.answers.to_query(), "advice": rec.to_dict(), "cli": cli}


def prefill_specs(prefill: dict) -> list:
    """The ApproachSpecs of a pre-filled Compare run (validated; CompareError on a bad one)."""
    from core.compare.approach import check_set, parse_approach

    if not isinstance(prefill, dict) or not isinstance(prefill.get("approaches"), list):
        raise CompareError("The pre-filled comparison has no list of approaches.")
    return check_set([parse_approach(str(a)) for a in prefill["approaches"]])


def prefill_from_query(text: str, collection: str | None = None) -> dict:
    """Rebuild the pre-filled Compare run from ?advice=... (e.g. after a browser refresh)."""
    return compare_spec(advise(Questionnaire.from_query(text)), collection)


APPLIED_KEY = "cmp_prefill_applied"   # session key: the ?advice=... already applied (so it applies once)


def take_prefill(session, query, collection: str | None = None) -> dict | None:
    """For the Compare page, once: the pre-filled run the Advisor stored in `session` (st.session_state), or else
    the one rebuilt from `query` (st.query_params) after a refresh or from a shared link. Returns None when there
    is nothing new, so the user's own edits to the approaches are never overwritten on a rerun. Raises
    AdvisorError for a ?advice=... that does not parse."""
    spec = session.pop(PREFILL_KEY, None) if PREFILL_KEY in session else None
    if isinstance(spec, dict):
        session[APPLIED_KEY] = spec.get("query")
        return spec
    text = query.get(QUERY_PARAM) if hasattr(query, "get") else None
    if text and session.get(APPLIED_KEY) != text:
        session[APPLIED_KEY] = text
        return prefill_from_query(text, collection)
    return None


def advise_cli_line(q: Questionnaire) -> str:
    """The `python -m core advise` line that gives the same answer."""
    parts = ["python -m core advise", f"--knows-facts {q.knows_facts}", f"--facts-change {q.facts_change}"]
    parts += [flag for flag, on in (("--citations", q.citations), ("--strict-format", q.strict_format),
                                    ("--strict-voice", q.strict_voice)) if on]
    parts += [f"--examples {q.examples}", f"--queries-per-month {q.queries_per_month}"]
    if q.latency_budget_s is not None:
        parts.append(f"--latency-budget {q.latency_budget_s:g}")
    parts += [f"--training-budget {q.training_budget}", "--json"]
    return " ".join(parts)


# ---- the advice stored with a run ---------------------------------------------------------------------------
def attach_advice(run_dir: Path | str, advice: dict | Recommendation) -> Path:
    """Store the advice a run was set up to test as <run>/advice.json (atomic; replaces an earlier one)."""
    from core.fileio import write_json_atomic

    d = Path(run_dir)
    if not (d / "spec.json").is_file():
        raise CompareError(f"{d} is not a comparison run (no spec.json).")
    data = advice.to_dict() if isinstance(advice, Recommendation) else dict(advice)
    Questionnaire.from_dict(data.get("answers") or {})    # must be a real advice object
    path = d / ADVICE_FILE
    write_json_atomic(path, {"advice": data})
    return path


def load_advice(run_dir: Path | str) -> Recommendation | None:
    """The advice stored with a run, recomputed from its stored answers (None when there is none)."""
    from core.fileio import read_json

    data = read_json(Path(run_dir) / ADVICE_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("advice"), dict):
        return None
    try:
        return advise(Questionnaire.from_dict(data["advice"].get("answers") or {}))
    except AdvisorError:
        return None


# ---- advice vs measurement ---------------------------------------------------------------------------------
def rung_of(fine_tuned: bool, rag: bool) -> str:
    """The classic rung an approach belongs to, from what it is (not from its name)."""
    return {(False, False): "prompt_only", (False, True): "prompt_rag", (True, False): "fine_tuned",
            (True, True): "fine_tuned_rag"}[(bool(fine_tuned), bool(rag))]


@dataclass
class Measured:
    """One measured approach: its rung and its per-question values (a list per question when repeated)."""
    name: str
    rung: str
    values: dict                   # qid -> float | [floats]
    available: bool = True
    reason: str = ""


@dataclass
class AdviceCheck:
    verdict: str                   # supported | contradicted | next step justified | inconclusive | not measured
    text: str
    start: str | None = None       # the measured approach standing for the advised start
    comparisons: list = field(default_factory=list)    # PairedDiff.to_dict(), other - start

    def to_dict(self) -> dict:
        return asdict(self)


def _pick(measured: list[Measured], rung: str) -> Measured | None:
    cands = [m for m in measured if m.rung == rung and m.available and m.values]
    return next((m for m in cands if m.name == rung), cands[0] if cands else None)


def check_advice(rec: Recommendation, measured: list[Measured], label: str = "all questions",
                 margin: float | None = None) -> AdviceCheck:
    """Does the measurement agree with the advice? Every other measured approach is compared with the advised
    start by a paired bootstrap (d = other - start, per question). The measurement contradicts the advice when
    - an approach other than the advised next step is clearly better than the start (d's interval above 0), or
    - a simpler approach is shown to be about as good: d's interval lies above -margin (the start's advantage is
      below the decision margin at 95%), so the start's extra complexity is not earned.
    When the advised next step is clearly better, the advice's own condition for moving up is met. Overlapping
    intervals that fit neither case are inconclusive, with the questions needed to separate the pair."""
    from core.compare.stats import paired_bootstrap

    if margin is None:
        from core.compare.summary import QUALITY_MARGIN
        margin = QUALITY_MARGIN
    start = _pick(measured, rec.start.approach)
    if start is None:
        m = next((m for m in measured if m.rung == rec.start.approach), None)
        why = f" ({m.reason})" if m and m.reason else ""
        return AdviceCheck("not measured", f"The advised start, {rec.start.approach}, was not measured in this run"
                                            f"{why}, so the run cannot confirm or contradict the advice.")
    nxt = rec.next_step.approach if rec.next_step else None
    cx = COMPLEXITY[rec.start.approach]
    comps, better, not_earned, up, open_ = [], [], [], None, []
    for m in measured:
        if m is start or not m.available or not m.values:
            continue
        d = paired_bootstrap(start.values, m.values, start.name, m.name, label)
        comps.append(d.to_dict())
        if d.n == 0 or d.mean is None:
            continue
        simpler = COMPLEXITY.get(m.rung, 9) < cx
        if d.separated and d.mean > 0:
            if m.rung == nxt:
                up = d
            else:
                better.append((m, d))
        elif simpler and d.lo is not None and d.lo > -margin:
            not_earned.append((m, d))
        elif not d.separated:
            open_.append(d)
    if better:
        m, d = better[0]
        who = "a simpler approach" if COMPLEXITY.get(m.rung, 9) < cx else "an approach the advice did not point to"
        return AdviceCheck("contradicted", f"Measurement contradicts the advice: {who} is clearly better. "
                                           f"{d.fmt()}.", start.name, comps)
    if not_earned:
        m, d = not_earned[0]
        return AdviceCheck("contradicted",
                           f"Measurement contradicts the advice: the simpler {m.name} is about as good as "
                           f"{start.name} (at 95% {start.name} is at most {-d.lo:.2f} better, within the "
                           f"{margin:.2f} margin), so its extra complexity is not earned. {d.fmt()}.",
                           start.name, comps)
    if up is not None:
        return AdviceCheck("next step justified",
                           f"The advice holds and its next step is due: {up.fmt()}. Moving up to "
                           f"{rec.next_step.approach} is what the advice says to do when the start is not enough.",
                           start.name, comps)
    if open_:
        d = open_[0]
        return AdviceCheck("inconclusive", f"Not enough evidence either way yet: {d.fmt()}.", start.name, comps)
    if not comps:
        return AdviceCheck("inconclusive", f"Only {start.name} was measured: nothing to compare the advice with.",
                           start.name, comps)
    return AdviceCheck("supported", f"Measurement supports the advice: {start.name} is clearly ahead of every "
                                    f"simpler approach measured, and nothing measured is clearly better.",
                       start.name, comps)


def dumps(rec: Recommendation) -> str:
    return json.dumps(rec.to_dict(), ensure_ascii=False, indent=1)
