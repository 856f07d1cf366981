"""Parse `python -X importtime` output: which third-party packages a process pulled in, and at what cost.

Used by bench/cold_start.py and bench/cli_startup.py to name the causes of a slow start with evidence."""
from __future__ import annotations

import re

PROJECT = {"core", "ui", "app_pages", "app", "__main__"}
_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)")


def parse(stderr: str) -> list[tuple[int, str, int, int]]:
    """[(depth, module, self us, cumulative us)] in the order Python printed them (children before parents)."""
    out = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            out.append(((len(m.group(3)) - 1) // 2, m.group(4), int(m.group(1)), int(m.group(2))))
    return out


def heaviest(stderr: str, top: int = 10) -> tuple[float, list[tuple[str, float]]]:
    """(seconds spent importing in total, [(package, cumulative ms)]) where each package is counted where it is
    first imported from project code (or from the top level): the cost our imports are responsible for."""
    rows = parse(stderr)
    total = sum(r[3] for r in rows if r[0] == 0) / 1e6
    stack: list[str] = []
    cost: dict[str, float] = {}
    for depth, mod, _self, cum in reversed(rows):      # reversed: parents come before their children
        del stack[depth:]
        stack.append(mod)
        top_pkg = mod.split(".")[0]
        if top_pkg in PROJECT:
            continue
        if all(a.split(".")[0] in PROJECT for a in stack[:-1]):
            cost[top_pkg] = cost.get(top_pkg, 0.0) + cum / 1000
    return total, sorted(cost.items(), key=lambda kv: -kv[1])[:top]


def format_top(stderr: str, top: int = 10) -> str:
    total, items = heaviest(stderr, top)
    return f"imports {total:.2f} s: " + ", ".join(f"{n} {ms:.0f} ms" for n, ms in items)
