"""Voice/format checks and refusal patterns of a use case.

A check is the Compare runner's VoiceCheck (name, regex pattern, description, tags, flags): the answer must match
it (re.search). `derive_checks` looks at imported past answers and proposes a check only where the pattern is
obvious: the same opening (greeting) or the same closing line (sign-off) in at least 90% of the answers, or
numbered steps in at least 90% of them. Each proposal carries its measured support; nothing is applied until
the user accepts it (`accept`).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from core.errors import UseCaseError

THRESHOLD = 0.9
MIN_ANSWERS = 5                 # fewer answers than this prove nothing
MAX_WORDS = 8                   # a greeting / sign-off is short
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
NUMBERED_STEPS = r"(?ms)^\s*1[.)]\s+\S.*?^\s*2[.)]\s+\S"
# What a polite refusal or "not in the docs" answer looks like (used to score out-of-scope questions).
DEFAULT_REFUSAL_PATTERNS = [
    r"(?i)\b(?:sorry|unfortunately)\b.{0,60}\b(?:only|can(?:no|')t|unable|not able)\b",
    r"(?i)\bI (?:can only|only) help with\b",
    r"(?i)\bI (?:don't|do not) know\b",
    r"(?i)\b(?:can(?:no|')t|unable to) (?:help|answer|advise|give)\b",
]


@dataclass
class ProposedCheck:
    name: str
    pattern: str
    description: str
    support: float                   # fraction of the answers the pattern matches (measured with the regex)
    matched: int
    total: int
    kind: str = ""                   # greeting | signoff | format
    example: str = ""                # the literal text the pattern was built from
    flags: str = ""
    tags: list[str] = field(default_factory=list)

    def to_check(self) -> dict:
        return {"name": self.name, "pattern": self.pattern, "description": self.description, "tags": list(self.tags),
                "flags": self.flags}

    def to_dict(self) -> dict:
        return asdict(self)


def default_checks() -> dict:
    return {"voice_checks": [], "refusal_patterns": list(DEFAULT_REFUSAL_PATTERNS)}


def _compile(pattern: str, flags: str = "") -> re.Pattern:
    from core.compare.scores import _flags   # the same flag letters the scorer applies
    return re.compile(pattern, _flags(flags))


def validate_checks(data, where: str = "checks") -> dict:
    """{"voice_checks": [...], "refusal_patterns": [...]} with every regex compiled; UseCaseError names the bad one."""
    if not isinstance(data, dict):
        raise UseCaseError(f"{where} must be a mapping with voice_checks and refusal_patterns.")
    out = {"voice_checks": [], "refusal_patterns": []}
    seen = set()
    for i, c in enumerate(data.get("voice_checks") or [], start=1):
        if not isinstance(c, dict) or not str(c.get("pattern") or "").strip():
            raise UseCaseError(f"{where}: voice check {i} needs a `pattern` (a regular expression).")
        name = str(c.get("name") or f"check{i}").strip()
        if not NAME_RE.match(name):
            raise UseCaseError(f"{where}: voice check name {name!r} must be lowercase letters, digits and '_'.")
        if name in seen:
            raise UseCaseError(f"{where}: two voice checks are named {name!r}.")
        seen.add(name)
        flags = str(c.get("flags") if c.get("flags") is not None else "")
        if set(flags) - set("ims"):
            raise UseCaseError(f"{where}: voice check {name!r} has flags {flags!r}; use only i, m and s.")
        try:
            _compile(str(c["pattern"]), flags)
        except re.error as exc:
            raise UseCaseError(f"{where}: voice check {name!r} has an invalid regex ({exc}).") from exc
        tags = c.get("tags") or []
        out["voice_checks"].append({"name": name, "pattern": str(c["pattern"]),
                                    "description": str(c.get("description") or ""),
                                    "tags": [str(t) for t in (tags if isinstance(tags, list) else [tags])],
                                    "flags": flags})
    for i, p in enumerate(data.get("refusal_patterns") or [], start=1):
        try:
            re.compile(str(p))
        except re.error as exc:
            raise UseCaseError(f"{where}: refusal pattern {i} is an invalid regex ({exc}).") from exc
        out["refusal_patterns"].append(str(p))
    return out


# --- deriving checks from past answers ---------------------------------------------------------------------------
def _lines(answer: str) -> list[str]:
    return [ln.strip() for ln in (answer or "").strip().splitlines() if ln.strip()]


def _literal_regex(text: str) -> str:
    """re.escape, with any run of spaces matching any whitespace."""
    return r"\s+".join(re.escape(w) for w in text.split())


def _word_prefixes(line: str) -> list[str]:
    words = line.split()
    return [" ".join(words[:k]) for k in range(min(len(words), MAX_WORDS), 0, -1)]


def _best_prefix(lines: list[str], total: int, threshold: float) -> tuple[str, int] | None:
    """The longest word-prefix shared by >= threshold of `lines` (one per answer)."""
    counts: dict[str, int] = {}
    for ln in lines:
        for pref in set(_word_prefixes(ln)):
            counts[pref] = counts.get(pref, 0) + 1
    best = None
    for pref, n in counts.items():
        if n / total >= threshold and len(pref) >= 2 and re.search(r"[^\W\d_]", pref):
            if best is None or len(pref.split()) > len(best[0].split()) or (
                    len(pref.split()) == len(best[0].split()) and n > best[1]):
                best = (pref, n)
    return best


def _support(pattern: str, answers: list[str], flags: str = "") -> int:
    rx = _compile(pattern, flags)
    return sum(1 for a in answers if rx.search(a or ""))


def derive_checks(answers: list[str], threshold: float = THRESHOLD) -> list[ProposedCheck]:
    """Checks the past answers obviously follow (greeting, sign-off, numbered steps), each with its measured
    support; empty when there are fewer than MIN_ANSWERS answers or no pattern reaches `threshold`."""
    answers = [a for a in answers if (a or "").strip()]
    total = len(answers)
    if total < MIN_ANSWERS:
        return []
    out: list[ProposedCheck] = []
    firsts = [_lines(a)[0] for a in answers]
    best = _best_prefix(firsts, total, threshold)
    if best:
        pattern = r"^\s*" + _literal_regex(best[0])
        n = _support(pattern, answers)
        if n / total >= threshold:
            out.append(ProposedCheck("greeting", pattern, f'Opens with "{best[0]}".', n / total, n, total,
                                     "greeting", best[0]))
    lasts = [_lines(a)[-1] for a in answers]
    best = _best_prefix(lasts, total, threshold)
    if best and not (out and best[0] == out[0].example and all(len(_lines(a)) == 1 for a in answers)):
        pattern = r"(?m)^\s*" + _literal_regex(best[0]) + r"[^\n]*\s*\Z"
        n = _support(pattern, answers)
        if n / total >= threshold:
            out.append(ProposedCheck("signoff", pattern, f'Ends with a line starting "{best[0]}".', n / total, n,
                                     total, "signoff", best[0]))
    n = _support(NUMBERED_STEPS, answers)
    if n / total >= threshold:
        out.append(ProposedCheck("numbered_steps", NUMBERED_STEPS,
                                 'Gives at least two numbered steps, each on its own line ("1." then "2.").',
                                 n / total, n, total, "format", "1. … 2. …"))
    return out


def accept(current: dict, proposals: list[dict], names: list[str] | None = None) -> dict:
    """`current` checks plus the named proposals (all when names is None); an accepted check replaces one of the
    same name. Returns the validated checks."""
    chosen = [p for p in proposals if names is None or p["name"] in names]
    missing = sorted(set(names or []) - {p["name"] for p in proposals})
    if missing:
        raise UseCaseError(f"No proposed check named {', '.join(missing)}; proposed: "
                           f"{', '.join(p['name'] for p in proposals) or 'none'}.")
    checks = {c["name"]: c for c in current.get("voice_checks", [])}
    for p in chosen:
        checks[p["name"]] = {"name": p["name"], "pattern": p["pattern"], "description": p.get("description", ""),
                             "tags": list(p.get("tags") or []), "flags": p.get("flags", "")}
    return validate_checks({"voice_checks": list(checks.values()),
                            "refusal_patterns": current.get("refusal_patterns", [])})
