"""Moved: question sets and the scenario live in `core.scenario` (the one strict parser). This alias keeps old
imports working; new code imports from core.scenario."""
from core.scenario import (MAX_QUESTIONS, Question, Scenario, VoiceCheck, load_questions, load_scenario,  # noqa: F401
                           parse_questions, scenario_questions)
