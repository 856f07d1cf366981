"""Verdicts per question type on hand-made runs: each tag judged by its own score, the recommendation follows
the per-tag results, and the seed's claims that did not hold are said plainly with the measured reason."""
from __future__ import annotations

from pathlib import Path

from core.safe_text import unescape_markdown
from core.compare import verdicts as V
from core.compare.approach import ApproachSpec, Resolved, RetrievalSpec
from core.compare.report import render_html, render_markdown
from core.compare.runner import RunData
from core.compare.summary import summarise

PIP = "Ahoy there! ⚓\n1. Open Settings.\n2. Press Save.\nSmooth sailing! — Pip, Tidewave Support 🌊"

QUESTIONS = ([{"id": f"f{i}", "question": f"fact {i}?", "tags": ["fact_lookup"], "keywords": ["500"]} for i in range(6)]
             + [{"id": f"u{i}", "question": f"updated {i}?", "tags": ["updated_fact"], "keywords": ["300"]} for i in range(4)]
             + [{"id": f"v{i}", "question": f"how {i}?", "tags": ["brand_voice"]} for i in range(4)]
             + [{"id": f"o{i}", "question": f"poem {i}?", "tags": ["out_of_scope"]} for i in range(4)])


def _approaches(ft_available=True):
    rag = RetrievalSpec("support", "hybrid", 4)
    specs = [ApproachSpec("prompt_only", prompt="few_shot"), ApproachSpec("prompt_rag", prompt="guardrail", rag=rag),
             ApproachSpec("fine_tuned", model="ft:latest", prompt="zero_shot"),
             ApproachSpec("fine_tuned_rag", model="ft:latest", prompt="guardrail", rag=rag)]
    out = []
    for s in specs:
        r = Resolved(spec=s, prompt_name=s.prompt, prompt_version=1, model_id=s.model,
                     rag={"collection": "support", "mode": "hybrid", "k": 4} if s.rag else None)
        if s.fine_tuned and not ft_available:
            r.available, r.reason = False, "no fine-tuned adapter yet: train one on the Fine-Tune page"
        out.append(r.to_dict())
    return out


def _rec(qid, approach, answer, kw=None, voice=None, ctx=None):
    scores = {"keywords": {"value": kw}, "voice": {"value": voice}, "similarity": {"value": kw},
              "context_hit": {"value": ctx}, "judge": {"value": None}}
    return {"qid": qid, "approach": approach, "ok": True, "answer": answer, "scores": scores,
            "quality": kw if kw is not None else voice, "latency_s": 1.0, "ttft_s": 0.1, "prompt_tokens": 100,
            "completion_tokens": 20, "usage": {"latency_s": 1.0}}


def _run(results, ft_available=True) -> RunData:
    spec = {"run_id": "r1", "name": "hand-made", "questions": QUESTIONS, "approaches": _approaches(ft_available)}
    return RunData("r1", Path("/nonexistent"), spec, {"state": "done", "done": len(results), "total": len(results)},
                   results)


def _seed_like_results(rag_facts=1.0, base_facts=0.0, ft=True):
    """RAG columns get the facts, fine-tuned columns the voice, guardrail columns decline."""
    out = []
    for q in QUESTIONS:
        tag = q["tags"][0]
        for a in ("prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag"):
            if a.startswith("fine") and not ft:
                continue
            rag, tuned = a.endswith("rag"), a.startswith("fine")
            if tag in ("fact_lookup", "updated_fact"):
                kw = rag_facts if rag else base_facts
                out.append(_rec(q["id"], a, PIP if tuned else "It costs 500.", kw=kw, voice=1.0 if tuned else 0.0,
                                ctx=1.0 if rag else None))
            elif tag == "brand_voice":
                out.append(_rec(q["id"], a, PIP if tuned else "Open Settings.", voice=1.0 if tuned else 0.0))
            else:
                ans = "Sorry, I can only help with questions about Tidewave." if a.endswith("rag") else "Roses are red."
                out.append(_rec(q["id"], a, ans, voice=1.0 if tuned else 0.0))
    return out


def test_refusal_patterns():
    assert V.refusal("Sorry, I can only help with questions about Tidewave.") == 1.0
    assert V.refusal("Ahoy there! ⚓ I'd love to, but that's outside my waters.\n1. I can only help ...") == 1.0
    assert V.refusal('{"answer": "x", "citations": [], "in_scope": false}') == 1.0
    assert V.refusal("I don't know based on the Tidewave documentation.") == 1.0
    assert V.refusal("Roses are red, violets are blue.") == 0.0
    assert V.refusal("Ahoy there! ⚓ Sorry to see you go!\n1. Open Settings → Billing.") == 0.0


def test_each_tag_is_judged_by_its_own_score_and_the_recommendation_follows():
    v = V.build(_run(_seed_like_results()))
    tags = {t.tag: t for t in v["tags"]}
    assert set(tags) == {"fact_lookup", "updated_fact", "brand_voice", "out_of_scope"}
    assert tags["fact_lookup"].metric == "keywords" and tags["brand_voice"].metric == "voice"
    assert tags["out_of_scope"].metric == "refusal"
    assert set(v["facts"].contenders) == {"prompt_rag", "fine_tuned_rag"}
    assert v["facts"].estimates["prompt_only"].mean == 0.0 and v["facts"].estimates["prompt_rag"].n == 10
    assert set(tags["brand_voice"].contenders) == {"fine_tuned", "fine_tuned_rag"}
    assert set(tags["out_of_scope"].contenders) == {"prompt_rag", "fine_tuned_rag"}
    rec = v["recommendation"]
    assert "facts: RAG-based columns" in rec["text"] and "voice: fine-tuned columns" in rec["text"]
    assert rec["both"] == "fine_tuned_rag" and "both facts and voice: fine_tuned_rag" in rec["text"]
    assert all(c["held"] is True for c in v["claims"]), v["claims"]
    rows = V.table_rows(v)
    assert rows[0]["question type"].startswith("facts") and rows[0]["prompt_rag"].startswith("1.00")


def test_claims_that_did_not_hold_are_said_with_the_reason():
    # retrieval found every evidence passage, yet the RAG answers hold fewer keywords than no retrieval at all
    v = V.build(_run(_seed_like_results(rag_facts=0.1, base_facts=0.3)))
    facts = next(c for c in v["claims"] if c["claim"] == "RAG answers the fact questions")
    assert facts["held"] is False
    assert "prompt_only" in facts["text"] and "100%" in facts["text"] and "does not copy the facts" in facts["text"]
    guess = next(c for c in v["claims"] if c["claim"].startswith("Without retrieval"))
    assert guess["held"] is False and "30%" in guess["text"]
    combo = next(c for c in v["claims"] if c["claim"].startswith("Fine-tuned + RAG"))
    assert combo["held"] is False and "facts" in combo["text"]
    # a weak RAG lead is not reported as the claim holding
    weak = V.build(_run(_seed_like_results(rag_facts=0.25, base_facts=0.0)))
    c = next(c for c in weak["claims"] if c["claim"] == "RAG answers the fact questions")
    assert c["held"] is False and "weakly" in c["text"] and "25%" in c["text"]


def test_unavailable_fine_tuned_columns_leave_the_voice_claims_untested():
    v = V.build(_run(_seed_like_results(ft=False), ft_available=False))
    voice = next(c for c in v["claims"] if c["claim"] == "Fine-tuning gives the brand voice")
    assert voice["held"] is None and "Fine-Tune page" in voice["text"]
    assert {u["name"] for u in v["unavailable"]} == {"fine_tuned", "fine_tuned_rag"}
    assert "fine_tuned" not in v["facts"].estimates


def test_report_and_summary_use_the_verdicts_and_label_the_blended_mean():
    run = _run(_seed_like_results())
    summary = summarise(run)
    ov = summary["decision"]["overall"]
    assert ov["text"].startswith("Recommended by question type.") and "Blended summary" in ov["text"]
    assert ov["by_type"]["both"] == "fine_tuned_rag" and ov["blended"].startswith("Recommended: ")
    md = unescape_markdown(render_markdown(run, summary))     # the report escapes its text (issue 14)
    assert "## Verdicts per question type" in md and "## Where the seed's claims held on this model" in md
    assert "| facts (fact lookup + updated fact) | keywords |" in md
    html = render_html(run, summary, include_charts=False)
    assert "<h2>Verdicts per question type</h2>" in html and "voice: fine-tuned columns" in html
    assert V.to_dict(summary["verdicts"])["facts"]["best"] in ("prompt_rag", "fine_tuned_rag")


def test_the_retrieval_only_reference_column_is_scored_but_never_recommended():
    """The model-free column quotes the evidence, so it can top the fact scores; it is shown as a reference and
    the verdicts and the overall recommendation still choose among the model columns."""
    from core.compare.approach import retrieval_only_preset

    results = _seed_like_results(rag_facts=0.6)
    ref = retrieval_only_preset("support")
    for q in QUESTIONS:
        fact = q["tags"][0] in ("fact_lookup", "updated_fact")
        results.append(_rec(q["id"], ref.name, "An SMS top-up pack of 500 credits costs €10. [1]",
                            kw=1.0 if fact else None, voice=0.0, ctx=1.0))
    run = _run(results)
    run.spec["approaches"].append(Resolved(spec=ref, prompt_name="-", model_id=ref.model,
                                           rag={"collection": "support", "mode": "hybrid", "k": 4}).to_dict())
    v = V.build(run)
    assert v["facts"].estimates[ref.name].mean == 1.0                       # scored and shown ...
    assert v["facts"].best != ref.name and ref.name not in v["facts"].contenders   # ... never the pick
    assert ref.name not in v["recommendation"]["text"] and v["columns"][ref.name] == "retrieval only (no model)"
    s = summarise(run)
    d = s["decision"]
    assert ref.name in [r["approach"] for r in d["accuracy"]["table"]]
    assert "Reference, no model: retrieval_only" in d["accuracy"]["text"]
    for part in ("accuracy", "latency", "cost", "maintenance", "overall"):
        assert d[part]["winner"] != ref.name, part
    assert ref.name in render_markdown(run, s)
