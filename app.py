"""Approach Workbench: `streamlit run app.py`. Navigation and the sidebar every page shares; nothing else.

The pages and their titles/icons come from the one table in ui/nav.py; the home page's body is ui/home.py.
Kept light on purpose: no torch / llama_cpp / lancedb import here.
"""
from __future__ import annotations

import streamlit as st

from core.config import get_settings
from ui import home, nav
from ui.safe import md

st.set_page_config(page_title=nav.APP_NAME, page_icon=nav.HOME.icon, layout="wide")
pages = [st.Page(home.render, title=p.title, icon=p.icon, default=True) if not p.script else
         st.Page(p.script, title=p.title, icon=p.icon, url_path=p.url_path) for p in nav.PAGES]
current = st.navigation(pages)

with st.sidebar:
    settings = get_settings()
    st.caption(f"Default backend: **{md(settings.backend)}** · data folder: {md(settings.data_dir)}")

current.run()
