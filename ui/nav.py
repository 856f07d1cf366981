"""The one table of pages: id (also the prefix of the page's session keys), title, icon, script, URL path, heading.

app.py builds `st.navigation` from it, every page's `page_setup(id)` takes its title and icon from it and
`page_title(id)` its heading, and the home page lists it. Nothing here imports more than Streamlit.

Icons are Material names, not emoji: Streamlit checks an emoji page icon against its emoji catalog, whose
import (one large regex) cost 0.1-0.2 s of every page's first render; a Material name is a set lookup.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    id: str              # session keys of the page start with f"{id}_" (ui.common.key / ui.common.state)
    title: str
    icon: str
    script: str          # path relative to the project root ("" for the home view in ui/home.py)
    url_path: str        # "" = the app's root URL
    description: str
    heading: str = ""    # the page's h1 (ui.common.page_title), when it says more than the sidebar title


APP_NAME = "Approach Workbench"
HOME = PageInfo("home", "Home", ":material/science:", "", "",
                "What the workbench is for, live backend status, a quick generate box.", APP_NAME)
PAGES: tuple[PageInfo, ...] = (
    HOME,
    PageInfo("pl", "Prompt Lab", ":material/edit_note:", "app_pages/1_Prompt_Lab.py", "Prompt_Lab",
             "Write and version prompts (zero-shot, few-shot, chain-of-thought, guardrails) and try them on any "
             "backend."),
    PageInfo("kb", "Knowledge Base", ":material/library_books:", "app_pages/2_Knowledge_Base.py", "Knowledge_Base",
             "Ingest documents into a LanceDB collection and test retrieval (RAG)."),
    PageInfo("ft", "Fine-Tune", ":material/tune:", "app_pages/3_Fine_Tune.py", "Fine_Tune",
             "Train a LoRA adapter on support transcripts and try it as model `ft:<name>`."),
    PageInfo("cmp", "Compare", ":material/balance:", "app_pages/4_Compare.py", "Compare",
             "Run prompt-only, RAG and fine-tuned variants on the same question set: quality, latency, cost.",
             "Compare approaches"),
    PageInfo("adv", "Advisor", ":material/explore:", "app_pages/5_Advisor.py", "Advisor",
             "Answer eight questions about your use case: which approach to start with, what to test next.",
             "Advisor: prompt, RAG or fine-tune?"),
    PageInfo("uc", "Use Case", ":material/folder_open:", "app_pages/6_Use_Case.py", "Use_Case",
             "Bring your own documents and past answers: a reviewed question set, training data, a first comparison.",
             "Bring your own use case"),
    PageInfo("dr", "Drill", ":material/autorenew:", "app_pages/7_Drill.py", "Drill",
             "Change one fact in the documents: which approaches pick it up, and how long each change takes.",
             "Knowledge-update drill"),
)
BY_ID = {p.id: p for p in PAGES}


def page(page_id: str) -> PageInfo:
    try:
        return BY_ID[page_id]
    except KeyError:
        raise KeyError(f"Unknown page id {page_id!r}: one of {', '.join(BY_ID)} (ui/nav.py)") from None
