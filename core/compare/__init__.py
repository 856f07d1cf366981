"""Compare: run several approaches (model x prompt version x retrieval) over one question set, score every
answer, aggregate with bootstrap confidence intervals, and turn the measured numbers into a decision report.

Modules: approach (specs, presets, resolution), questions (question sets, scenario), scores, judge, stats,
cost, runner (run folders + background worker), charts, report, cli. Nothing here imports streamlit.
"""
