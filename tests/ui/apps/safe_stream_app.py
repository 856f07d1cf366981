"""A tiny Streamlit app for the tests of ui.safe (a test app, not part of the product): it streams hostile model
chunks -- a Markdown image and a link split across chunks, raw HTML, backticks -- through ui.safe in both modes,
and shows a hostile file name in a Markdown sentence, an expander label and an error."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from core.errors import IngestError  # noqa: E402
from ui import common, safe  # noqa: E402
from hostile import CHUNKS, NAME  # noqa: E402

st.session_state["plain"] = safe.stream(iter(CHUNKS))
st.session_state["md"] = safe.stream(iter(CHUNKS), markdown=True)
st.markdown(f"Ingested **{safe.md(NAME)}**")
with st.expander(safe.md(NAME)):
    safe.text(NAME)
common.show_error(IngestError(f"{NAME}: the file is empty. ![](https://evil.example/err.png)"))
