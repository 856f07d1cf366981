"""AppTest: the sidebar use-case selector (ui/usecase_select.py) bound to ?usecase=, and what Compare, the
Knowledge Base, Prompt Lab and Fine-Tune read from the selected use case. The demo (`tidewave`) stays the default
and gives exactly the scenario's inputs."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.usecase import workspace

PAGES = PROJECT_ROOT / "app_pages"
QUESTIONS = [
    {"id": "acme-q1", "question": "How long is the Acme pairing code valid?", "reference": "10 minutes.",
     "evidence": "The pairing code is valid for 10 minutes.", "source": "app.txt", "keywords": ["10"],
     "tags": ["fact_lookup"]},
    {"id": "acme-q2", "question": "How many lamps does the Acme hub connect?", "reference": "Up to 50 lamps.",
     "evidence": "The Acme hub connects up to 50 lamps.", "source": "faq.html", "keywords": ["50"],
     "tags": ["fact_lookup"]},
]
TRAIN = [{"messages": [{"role": "system", "content": "You are the Acme assistant."},
                       {"role": "user", "content": f"Question {i}: how do I reset lamp {i}?"},
                       {"role": "assistant", "content": f"Hello! Hold the button of lamp {i} for 5 seconds. — Acme"}]}
         for i in range(12)]


def acme():
    """A use case with its own collection name, question set, training rows and a voice check."""
    uc = workspace.create_usecase("acme", title="Acme desk", product="Acme", collection="acme_docs",
                                  system_prompt="You are the Acme assistant.")
    workspace.write_jsonl_atomic(uc.writable("questions"), QUESTIONS)
    workspace.write_jsonl_atomic(uc.writable("train"), TRAIN)
    checks = workspace.load_checks(uc)
    checks["voice_checks"] = [{"name": "signoff", "pattern": r"— Acme\s*$", "description": "Acme sign-off"}]
    workspace.save_checks(uc, checks)
    return workspace.get_usecase("acme")


def run_page(name: str, query: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def approaches(at: AppTest) -> dict[str, tuple[str, str]]:
    """{approach name: (prompt, retrieval)} as the Compare builder holds them."""
    out = {}
    for a in at.session_state["cmp_approaches"]:
        u = a["uid"]
        out[at.session_state[f"cmp_{u}_name"]] = (at.session_state[f"cmp_{u}_prompt"], at.session_state[f"cmp_{u}_rag"])
    return out


def test_page_inputs_of_the_demo_are_the_scenario(data_dir):
    from core.scenario import load_scenario, scenario_questions

    pi = workspace.page_inputs()
    sc = load_scenario()
    assert pi.name == "tidewave" and pi.builtin and pi.collection == sc.collection
    assert [q.id for q in pi.question_set()] == [q.id for q in scenario_questions()]
    assert pi.scenario.raw == sc.raw and pi.scenario.voice_checks == sc.voice_checks
    from core.compare.approach import classic_presets
    assert workspace.classic_approaches(workspace.get_usecase("tidewave")) == classic_presets(sc.collection)


def test_page_inputs_of_a_use_case(data_dir):
    uc = acme()
    pi = workspace.page_inputs("acme")
    assert (pi.collection, pi.train, pi.questions) == ("acme_docs", uc.file("train"), uc.file("questions"))
    assert [q.id for q in pi.question_set()] == ["acme-q1", "acme-q2"]
    assert [v.name for v in pi.scenario.voice_checks] == ["signoff"]
    assert set(pi.prompts) == {"acme__few_shot", "acme__guardrail", "acme__zero_shot"}


def test_compare_follows_the_query_parameter(data_dir):
    acme()
    demo = run_page("4_Compare.py")
    assert demo.selectbox(key="uc_name").value == "tidewave" and demo.query_params["usecase"] == "tidewave"
    assert approaches(demo)["prompt_rag"] == ("guardrail", "support")
    assert approaches(demo)["prompt_only"] == ("few_shot", "off")
    opts = demo.selectbox(key="cmp_single_pick").options
    assert len(opts) == 1 + 57

    at = run_page("4_Compare.py", {"usecase": "acme"})
    assert at.selectbox(key="uc_name").value == "acme"
    got = approaches(at)
    assert got["prompt_only"] == ("acme__few_shot", "off")
    assert got["prompt_rag"] == ("acme__guardrail", "acme_docs")
    assert "fine_tuned" not in got                       # no adapter trained for acme: left out, as in the CLI
    assert at.selectbox(key="cmp_single_pick").options == ["(write your own)"] + [
        f"{q['id']}: {q['question']}" for q in QUESTIONS]
    assert at.radio(key="cmp_src").options[0] == "Questions of use case acme"
    assert any("collection **acme\\_docs** is not" in i.value for i in at.sidebar.info)
    # the use case's prompts are in the prompt library now (what the approaches name)
    from core.prompts.library import PromptLibrary
    names = set(PromptLibrary().names())
    assert {"acme__few_shot", "acme__guardrail", "acme__zero_shot"} <= names
    assert {"few_shot", "guardrail", "zero_shot"} <= names     # a use case first still leaves the demo's starters

    # picking the demo in the sidebar switches the approaches back and rewrites the link
    at.selectbox(key="uc_name").set_value("tidewave").run()
    assert not at.exception
    assert at.query_params["usecase"] == "tidewave"
    assert approaches(at)["prompt_rag"] == ("guardrail", "support")


def test_compare_batch_run_uses_the_use_case_questions_and_checks(data_dir):
    """Creating the run (not running it): its pinned questions and voice checks are the use case's."""
    from core.compare import runner
    from core.scenario import Question

    acme()
    pi = workspace.page_inputs("acme")
    specs = workspace.classic_approaches(workspace.get_usecase("acme"))
    run_id = runner.create_run(specs, pi.question_set(), questions_source="usecase:acme", scenario=pi.scenario)
    spec = json.loads((runner.run_dir(run_id) / "spec.json").read_text())
    assert [q["id"] for q in spec["questions"]] == ["acme-q1", "acme-q2"]
    assert [v["name"] for v in spec["scenario"]["voice_checks"]] == ["signoff"]
    assert all(isinstance(q, Question) for q in pi.question_set())


def test_a_link_to_an_unknown_use_case_shows_the_demo(data_dir):
    at = run_page("4_Compare.py", {"usecase": "nope"})
    assert at.selectbox(key="uc_name").value == "tidewave"
    assert any("No use case named" in w.value for w in at.sidebar.warning)


def test_knowledge_base_defaults_to_the_use_case_collection(data_dir):
    acme()
    at = run_page("2_Knowledge_Base.py", {"usecase": "acme"}, {"kb_sample_checked": True})
    box = at.selectbox(key="kb_collection_select")
    assert box.value == "acme_docs" and at.query_params["collection"] == "acme_docs"
    assert "acme_docs (not indexed yet)" in box.options
    # another use case: the collection chosen for the first one is not kept
    at.selectbox(key="uc_name").set_value("tidewave").run()
    assert not at.exception
    assert at.session_state["kb_usecase"] == "tidewave"
    assert "acme_docs" not in str(at.query_params.get("collection"))
    assert not any(b.key == "kb_collection_select" and b.value == "acme_docs" for b in at.selectbox)


def test_selection_survives_a_page_without_the_selector(data_dir):
    """The choice is kept in the session: the next page shows it even without ?usecase= in the URL."""
    acme()
    at = run_page("4_Compare.py", {"usecase": "acme"})
    assert at.session_state["uc_selected"] == "acme"
    at.query_params.clear()
    at.run()
    assert at.selectbox(key="uc_name").value == "acme" and at.query_params["usecase"] == "acme"


def test_prompt_lab_loads_the_use_case_prompts_and_questions(data_dir):
    acme()
    at = run_page("1_Prompt_Lab.py", {"usecase": "acme"})
    refs = [at.session_state[f"pl_{i}_ref"] for i in range(3)]
    assert all(r.split("@")[0].startswith("acme__") for r in refs), refs
    assert at.selectbox(key="pl_question_pick").options[1:] == [f"{q['id']}: {q['question']}" for q in QUESTIONS]
    demo = run_page("1_Prompt_Lab.py")
    assert not any(at_ref.startswith("acme__") for at_ref in [demo.session_state[f"pl_{i}_ref"] for i in range(3)])


def test_fine_tune_offers_the_use_case_dataset(data_dir):
    uc = acme()
    at = run_page("3_Fine_Tune.py", {"usecase": "acme"})
    assert at.radio(key="ft_source").value == "Sample transcripts"
    assert at.selectbox(key="ft_sample").value == "Use case acme: training rows (chat messages)"
    assert at.session_state["ft_data_path"] == str(uc.file("train"))
    code = "\n".join(c.value for c in at.code)
    assert f"--data {uc.file('train')}" in code
    demo = run_page("3_Fine_Tune.py")
    assert demo.selectbox(key="ft_sample").value == "Tidewave transcripts (chat messages)"
    assert "--data sample_docs/finetune/train.chat.jsonl" in "\n".join(c.value for c in demo.code)
