"""Candidate questions from a collection's chunks.

Two generators, one output (`Candidate`, always with its source chunk id, document and verbatim evidence):

- `extractive` (model-free; the default on the built-in model, which cannot write good questions): picks
  fact-bearing sentences (prices, percentages, dates, durations, counts, error codes, definitions) and turns each
  into a lookup question about the sentence's own subject ("How much does an SMS top-up pack cost?"). The
  sentence is the evidence (a verbatim substring of the chunk) and the reference answer; its facts are the
  keywords. Labelled `generator: "extractive"`.
- `llm` (a capable backend: Ollama or an OpenAI-compatible server, through core.llm.registry): the model writes
  question, answer and evidence under a JSON schema; the evidence must appear verbatim in the chunk (exactly, or
  after normalising case/punctuation/whitespace), otherwise that item is dropped with its reason. Every chunk
  has a time limit; a failed chunk gets a clear error and the rest go on; nothing is NaN, nothing hangs.

`run(spec, report)` is the job entry point (the `report(progress=..., message=...)` call of core.jobs); the CLI
calls it in the foreground with a console reporter.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from core.compare.scores import normalise
from core.errors import BackendUnavailable, UseCaseError, WorkbenchError

GENERATORS = ("auto", "extractive", "llm")
DEFAULT_PER_CHUNK = 3
DEFAULT_TIMEOUT_S = 60.0
MIN_WORDS, MAX_WORDS = 5, 45
STATUSES = ("pending", "accepted", "rejected")


@dataclass
class Candidate:
    id: str
    question: str
    reference: str
    evidence: str
    chunk_id: str
    doc_id: str = ""
    source: str = ""                     # document name (the question set's `source`)
    heading: str = ""
    chunk_text: str = ""                 # the chunk as it was when the candidate was made (shown in review)
    keywords: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=lambda: ["fact_lookup"])
    generator: str = "extractive"        # extractive | llm | manual
    template: str = ""                   # extractive: which question form; llm: the model id
    subject: str = ""                    # extractive: what the question is about
    status: str = "pending"              # pending | accepted | rejected
    edited: bool = False
    evidence_match: str = "exact"        # exact | normalised | missing (set by the review re-check)
    note: str = ""
    created: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_question(self):
        from core.scenario import Question
        return Question(id=self.id, question=self.question, reference=self.reference, tags=list(self.tags),
                        source=self.source or None, evidence=self.evidence or None, keywords=list(self.keywords))


def candidate_id(chunk_id: str, question: str) -> str:
    return "c-" + hashlib.sha256(f"{chunk_id}\x00{normalise(question)}".encode()).hexdigest()[:12]


def evidence_match(evidence: str, text: str) -> str:
    """exact | normalised | missing: is `evidence` in `text` verbatim (or after case/punctuation/space folding)?"""
    if not (evidence or "").strip():
        return "missing"
    if evidence.strip() in text:
        return "exact"
    e = normalise(evidence)
    return "normalised" if e and e in normalise(text) else "missing"


# --- chunks ------------------------------------------------------------------------------------------------------
def collection_chunks(collection: str) -> list[dict]:
    """Every chunk of the collection's active index, by document then position (reads LanceDB; no embedder)."""
    from core.rag import store

    table = store.open_table(store.get_active(collection).table_name)
    if table.count_rows() == 0:
        return []
    rows = table.search().select(store.CHUNK_COLUMNS).limit(None).to_arrow().to_pylist()   # one scan
    return sorted(rows, key=lambda r: (r["doc_id"].lower(), r["doc_id"], r["position"]))


# --- the extractive generator ------------------------------------------------------------------------------------
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[`])|\n+")
MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
          "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec")
UNITS_TIME = r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|business days?|working days?)"
NUM = r"\d{1,3}(?:[,\u202f]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                "sixty|hundred")
FACT_PATTERNS = [   # (kind, regex) in priority order; the first match in the sentence is the focus
    ("money", re.compile(rf"(?:[€$£¥]\s?(?:{NUM})(?:\s?(?:k|m|million|thousand))?|(?:{NUM})\s?(?:EUR|USD|GBP|euros?|dollars?|pounds?)\b)")),
    ("percent", re.compile(rf"(?:{NUM})\s?(?:%|percent\b|per cent\b|percentage points?\b)")),
    ("date", re.compile(rf"\b(?:\d{{1,2}}\s(?:{MONTHS})\.?,?\s\d{{4}}|(?:{MONTHS})\.?\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|(?:{MONTHS})\s\d{{4}})\b")),
    ("duration", re.compile(rf"\b(?:{NUM}|{NUMBER_WORDS}|an?)(?:[\s-]+(?:full\s)?){UNITS_TIME}\b", re.I)),
    ("code", re.compile(r"\b[A-Z]{2,6}-\d{2,6}\b|\bHTTP\s\d{3}\b")),
    ("count", re.compile(rf"\b(?:{NUM})\b(?!\s?(?:%|percent))")),
]
AUX = {"is", "are", "was", "were", "can", "may", "must", "will", "should", "could", "has", "have", "had", "does",
       "do", "did", "cannot", "can't", "won't", "might"}
BE = {"is", "are", "was", "were"}
MODAL = {"can", "may", "must", "will", "should", "could", "might", "cannot"}
# lexical verbs (3rd person -> base); the base form alone is also accepted (plural subjects)
VERBS = {"costs": "cost", "includes": "include", "allows": "allow", "gets": "get", "returns": "return",
         "keeps": "keep", "stays": "stay", "expires": "expire", "takes": "take", "holds": "hold", "lasts": "last",
         "starts": "start", "sends": "send", "charges": "charge", "offers": "offer", "gives": "give",
         "supports": "support", "requires": "require", "needs": "need", "means": "mean", "refunds": "refund",
         "counts": "count", "runs": "run", "syncs": "sync", "retries": "retry", "shows": "show", "lets": "let",
         "limits": "limit", "contains": "contain", "covers": "cover", "applies": "apply", "pays": "pay",
         "receives": "receive", "provides": "provide", "remains": "remain", "works": "work", "becomes": "become",
         "uses": "use", "deletes": "delete", "removes": "remove", "stores": "store", "lists": "list",
         "accepts": "accept", "blocks": "block", "reaches": "reach", "waits": "wait", "ends": "end",
         "begins": "begin", "arrives": "arrive", "renews": "renew", "bills": "bill", "caps": "cap",
         "saves": "save", "sets": "set", "creates": "create", "imports": "import", "exports": "export",
         "rejects": "reject", "adds": "add", "reminds": "remind", "goes": "go", "comes": "come",
         "answers": "answer", "responds": "respond", "processes": "process", "launched": "launch",
         "changed": "change", "costed": "cost", "rose": "rise", "dropped": "drop", "moved": "move",
         "stands": "stand", "refers": "refer", "grants": "grant", "earns": "earn", "triggers": "trigger",
         "connects": "connect", "controls": "control", "ships": "ship", "delivers": "deliver",
         "handles": "handle", "lights": "light", "reports": "report"}
PAST = {"launched", "changed", "rose", "dropped", "moved"}
BAD_SUBJECT_START = {"it", "they", "this", "that", "these", "those", "you", "we", "he", "she", "there", "if", "when",
                     "after", "before", "because", "so", "and", "but", "or", "then", "also", "here", "which", "what",
                     "once", "while", "until", "since", "for", "in", "on", "at", "by", "with", "from", "to", "as",
                     "i", "our", "its", "their", "otherwise", "however", "note", "only", "both", "either", "under",
                     "over", "according", "per", "during", "without", "within", "about", "unlike", "like", "see",
                     "click", "open", "go", "press", "choose", "select", "add", "use", "make", "set", "check"}
SUBJECT_PRONOUNS = {"you", "we", "they", "it", "i", "he", "she"}
QUALIFIERS = re.compile(r"\b(?:up to|at most|at least|a maximum of|a minimum of|maximum of|minimum of|no more than|"
                        r"more than|less than|fewer than|over|under|about|around|only|just|exactly|roughly|"
                        r"approximately|now|also|still|each|every)\s*$", re.I)
TRAILING_PREP = re.compile(r"\s*\b(?:for|within|in|after|until|till|by|on|at|of|to|from|before|since|up to|"
                           r"at most|at least|under|over)\s*$", re.I)
DEFINITION = [
    (re.compile(r"^(?P<term>(?:[A-Z][\w'-]*|`[^`]+`|[A-Z]{2,6}-\d+)(?:\s[\w'-]+){0,4}?)\s(?P<verb>means|stands for|"
                r"refers to|is short for)\s(?P<rest>.{8,})$"), "definition"),
    (re.compile(r"^(?P<art>An?|The)\s(?P<term>[a-z][\w'-]*(?:\s[a-z][\w'-]*){0,3})\s(?:is|are)\s(?:an?|the)\s"
                r"(?P<rest>.{8,})$"), "definition"),
]
STOP_UNIT = {"and", "or", "of", "to", "for", "in", "on", "at", "with", "that", "which", "is", "are", "a", "an",
             "the", "by", "from", "after", "before", "per", "if", "when", "than", "as", "each", "every", "you",
             "your", "our", "their", "it", "can", "may", "must", "will", "be", "has", "have", "was", "were", "not",
             "only", "so", "but", "into", "out", "up", "all", "over", "under", "within", "during", "ahead", "late",
             "later", "long", "old", "once", "instead", "down", "total", "more", "less", "including", "like",
             "such", "until", "since", "before", "about"}


_HARD_LINE = re.compile(r"(?:[.!?:)]|\*\*)\s*$")
_SOFT_NEXT = re.compile(r"^\s*(?:[-*•>|#]|\d+[.)]\s)")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[`])")
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•>])\s+")


def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of runs of lines that belong together: a line ends a block when it is blank, ends with . ! ?
    : or ), is short (a heading), or the next line starts a list item, table row or heading."""
    lines = []
    pos = 0
    for ln in text.split("\n"):
        lines.append((pos, pos + len(ln)))
        pos += len(ln) + 1
    blocks, start = [], None
    for i, (a, b) in enumerate(lines):
        line = text[a:b]
        if not line.strip():
            if start is not None:
                blocks.append((start, lines[i - 1][1]))
                start = None
            continue
        if start is None:
            start = a
        nxt = text[lines[i + 1][0]:lines[i + 1][1]] if i + 1 < len(lines) else ""
        if (not nxt.strip() or _HARD_LINE.search(line) or len(line.split()) <= 5 or _SOFT_NEXT.match(nxt)
                or "|" in line):
            blocks.append((start, b))
            start = None
    if start is not None:
        blocks.append((start, lines[-1][1]))
    return blocks


def sentence_spans(text: str) -> list[str]:
    """Candidate sentences of a chunk, each a verbatim substring of it (list markers stripped). A wrapped line
    (PDF, plain text) continues its sentence, so such a sentence keeps its line break inside."""
    text = text or ""
    out = []
    for start, end in _blocks(text):
        block = text[start:end]
        cur = 0
        pieces = []
        for m in _SENT_END.finditer(block):
            pieces.append((cur, m.start()))
            cur = m.end()
        pieces.append((cur, len(block)))
        for a, b in pieces:
            piece = block[a:b]
            mark = _LIST_MARK.match(piece)
            if mark:
                piece = piece[mark.end():]
            piece = piece.strip()
            if piece:
                out.append(piece)
    return out


def lowercase_vocabulary(texts: Iterable[str]) -> set[str]:
    """Common nouns: words written in lowercase somewhere and never capitalised in mid-sentence (so 'Bookings'
    at a sentence start becomes 'bookings', while 'Current' in "the Current plan" stays a name)."""
    lower: set[str] = set()
    named: set[str] = set()
    for t in texts:
        t = t or ""
        lower.update(re.findall(r"(?<![\w./@-])[a-z][a-z'-]+\b", t))
        named.update(w.lower() for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z'-]+\b", t))
    return lower - named


def _words(s: str) -> list[str]:
    return s.split()


def _facts(sentence: str) -> list[tuple[str, re.Match]]:
    found = []
    taken: list[tuple[int, int]] = []
    for kind, rx in FACT_PATTERNS:
        for m in rx.finditer(sentence):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            if kind == "count":
                after = sentence[m.end():m.end() + 1]
                before = sentence[max(0, m.start() - 1):m.start()]
                if before in ("v", "V", ".", "-", "#") or after in (".",) and sentence[m.end() + 1:m.end() + 2].isdigit():
                    continue            # versions (4.4.1, v2), codes
            found.append((kind, m))
            taken.append((m.start(), m.end()))
    return sorted(found, key=lambda f: f[1].start())


def _is_good_sentence(s: str) -> bool:
    n = len(_words(s))
    if not MIN_WORDS <= n <= MAX_WORDS or s.endswith("?") or s.endswith(":"):
        return False
    if not re.match(r"^[A-Z0-9`\"']", s) or not re.search(r"[.!)`\"']$", s):
        return False
    if s.count("`") > 6 or "http" in s.lower() and n < 10 or "**" in s or s.count("|") >= 2:
        return False
    return True


def _tidy_subject(words: list[str]) -> str:
    s = " ".join(words).strip(" ,;:")
    if words and words[0] in ("The", "A", "An", "All", "Each", "Every", "Your", "Any", "Some", "Most", "New", "Old",
                              "List", "Live", "Test"):
        if not (len(words) > 1 and words[1][:1].isupper() and words[0] not in ("The", "A", "An", "All", "Each",
                                                                                "Every", "Your", "Any")):
            s = s[0].lower() + s[1:]
    return s


def _unit_after(sentence: str, end: int) -> str:
    """The noun phrase after a number: '120 requests per minute' -> 'requests per minute'."""
    rest = sentence[end:]
    words = re.findall(r"[A-Za-z][\w'-]*|[^\sA-Za-z]+", rest)
    out = []
    i = 0
    while i < len(words) and len(out) < 3:
        w = words[i]
        if not re.match(r"^[A-Za-z]", w) or w.lower() in STOP_UNIT:
            break
        out.append(w)
        i += 1
    while out and i + 1 < len(words) and words[i].lower() == "per" and re.match(r"^[A-Za-z]", words[i + 1]):
        out.append("per")
        i += 1
        j = 0
        while i < len(words) and j < 2 and re.match(r"^[A-Za-z]", words[i]) and words[i].lower() not in STOP_UNIT:
            out.append(words[i])
            i += 1
            j += 1
    return " ".join(out)


def _find_verb(words: list[str]) -> int | None:
    """Index of the main verb or auxiliary after a simple subject (None when the sentence does not start so)."""
    for i, w in enumerate(words[1:11], start=1):
        prev = words[i - 1]
        if re.search(r"[,;:()]$", prev) or re.search(r"[,;:()]", prev):
            return None              # "In 2024, ..." / "Client import: ..." - not a simple subject
        lw = w.lower()
        if lw in AUX or lw in VERBS:
            return i
        if lw in VERBS.values() and prev.lower().endswith("s") and prev.lower() not in ("is", "was", "has"):
            return i                 # a base-form verb after a plural subject ("List endpoints return ...")
    return None


def _do(verb: str) -> tuple[str, str]:
    lw = verb.lower()
    if lw in PAST:
        return "did", VERBS[lw]
    if lw in VERBS:
        return "does", VERBS[lw]
    return "do", lw


def _strip_prep(s: str) -> tuple[str, str]:
    m = TRAILING_PREP.search(s)
    if m:
        return s[:m.start()].rstrip(), m.group(0).strip().lower()
    return s.rstrip(), ""


LABEL_PREFIX = re.compile(r"^(?:New|Changed|Fixed|Improved|Removed|Deprecated|Added|Updated|Security|Note|Tip)"
                          r":?\s+(?=[A-Z])")
SUBJECT_TRAIL = re.compile(r"(?:\s+(?:now|also|still|only|always|currently|already|usually|normally|then))+$", re.I)
LABEL_SENTENCE = re.compile(r"^(?P<label>[A-Z][\w'&/ -]{2,40}?):\s+(?P<rest>\S.+)$")
DANGLING = {"a", "an", "the", "of", "with", "and", "or", "but", "last", "next", "first", "any", "your", "our",
            "their", "its", "this", "that", "to"}
SECOND_VERB = AUX | {"but", "so", "which", "who", "while", "when", "if", "because", "then"}


def _time_unit(text: str) -> str:
    m = re.search(UNITS_TIME, text, re.I)
    u = (m.group(0).lower() if m else "days").split()[-1]
    return u if u.endswith("s") else u + "s"


def _from_label(body: str) -> tuple[str, str, str, str] | None:
    """'Booking window: clients can book at most 365 days ahead' -> 'How long is the booking window?'"""
    m = LABEL_SENTENCE.match(body)
    if not m:
        return None
    label, rest = m.group("label").strip(), m.group("rest")
    facts = _facts(rest)
    verbs = AUX | set(VERBS) | set(VERBS.values())
    if not facts or len(label.split()) > 4 or _facts(label) or any(w.lower() in verbs for w in label.split()):
        return None
    kind, f = facts[0]
    lab = label if label.isupper() or label.split()[0].isupper() and len(label.split()[0]) > 1 else \
        label[0].lower() + label[1:]
    if kind == "money":
        q = f"How much is {lab}?"
    elif kind == "percent":
        q = f"What percentage applies to the {lab}?"
    elif kind == "duration":
        q = f"How long is the {lab}?"
    elif kind == "date":
        q = f"When is the {lab}?"
    elif kind == "count":
        unit = _unit_after(rest, f.end())
        if not unit:
            return None
        q = f"How many {unit} are allowed for {lab}?"
    else:
        q = f"Which code is given for the {lab}?"
    return q, f"label-{kind}", label, f.group(0)


def _question_from(sentence: str, heading: str, vocab: set[str] | None = None) -> tuple[str, str, str, str] | None:
    """(question, template, subject, focus text) for a fact-bearing sentence, or None when no question form fits
    (a bad question is worse than none: the reviewer's time is the cost)."""
    body = LABEL_PREFIX.sub("", sentence.rstrip(".!").strip())
    for rx, tmpl in DEFINITION:
        m = rx.match(body)
        if m and all(k == "code" for k, _ in _facts(m.group("term"))):
            term = m.group("term").strip()
            if term.split()[0].lower() in BAD_SUBJECT_START:
                continue
            t0 = term.split()[0]
            if t0[:1].isupper() and not t0.isupper() and t0.lower() in (vocab or ()):
                term = t0.lower() + term[len(t0):]
            verb = m.groupdict().get("verb")
            if verb:
                base = {"means": "mean", "stands for": "stand for", "refers to": "refer to",
                        "is short for": "is short for"}[verb]
                q = f"What is {term} short for?" if base == "is short for" else f"What does {term} {base}?"
            else:
                art = m.group("art")
                q = f"What is {art.lower()} {term}?"
            return q, tmpl, term, m.group("rest")
    labelled = _from_label(body)
    if labelled:
        return labelled
    facts = _facts(body)
    if not facts:
        return None
    words = _words(body)
    vi = _find_verb(words)
    if vi is None:
        return None
    subj_words = words[:vi]
    first = subj_words[0].lower() if subj_words else ""
    if not subj_words or first in BAD_SUBJECT_START or first.endswith("ing") or len(subj_words) > 9:
        return None
    if subj_words[-1].lower() in DANGLING or any(w.lower() in SUBJECT_PRONOUNS for w in subj_words):
        return None
    subject = SUBJECT_TRAIL.sub("", _tidy_subject(subj_words))
    w0 = subject.split()[0]
    if w0[:1].isupper() and not w0.isupper() and w0.lower() in (vocab or ()):
        subject = w0.lower() + subject[len(w0):]      # a common noun capitalised only because it starts the sentence
    if not subject or (_facts(subject) and not all(k == "count" for k, _ in _facts(subject))):
        return None
    verb = words[vi]
    head_end = len(" ".join(words[:vi + 1]))
    after = [(k, m) for k, m in facts if m.start() >= head_end]
    if not after:
        return None
    kind, m = after[0]
    focus = m.group(0)
    if kind == "duration" and "-" in focus:
        return None                  # "a 14-day trial": the duration qualifies a noun, no clean question
    tail_stop = re.search(r";|,|\.\s|\s(?:and|but|so|which|while|then|instead)\b", body[m.end():])
    tail = " ".join((body[m.end(): m.end() + tail_stop.start()] if tail_stop else body[m.end():]).split())
    mid = " ".join(body[head_end:m.start()].split())
    if re.search(r"[,;:()]", mid) or any(w.lower() in SECOND_VERB for w in mid.split()):
        return None
    if re.search(r"\band\s+[a-z]+s\b", mid):
        return None                  # "is confirmed by email and completes ...": two verbs
    mid = re.sub(r"\s*\b(?:now|also|still|already|always)\b", "", mid).strip()
    freq = bool(re.search(r"\b(?:every|once|twice)\s*$", mid) or re.match(r"^(?:once|twice)\b", focus))
    lw = verb.lower()
    aux_q, main = "", ""
    if lw in BE or lw in MODAL:
        aux_q = lw
        rest_words = mid.split()
        if lw in MODAL:
            if not rest_words:
                return None
            main, mid = rest_words[0], " ".join(rest_words[1:])
    elif lw in ("has", "have", "had"):
        aux_q, main = {"has": "does", "have": "do", "had": "did"}[lw], "have"
    else:
        aux_q, main = _do(verb)
    mid = re.sub(r"\s*\b(?:every|once|twice)\s*$", "", mid).strip() if freq else QUALIFIERS.sub("", mid).strip()
    mid_noprep, prep = _strip_prep(mid)
    if kind == "percent" and ("percent" in mid.lower() or "percent" in subject.lower()):
        return None
    if kind == "duration" and freq:
        mid_noprep, prep = mid, "every"
    for part in (mid_noprep if kind in ("date", "duration") else mid,):
        if part and part.split()[-1].lower() in DANGLING:
            return None
    if len(tail.split()) > 8 or _facts(tail) and kind not in ("count",):
        tail = ""
    unit = ""
    if kind == "count" or (kind == "duration" and not prep and not mid and lw not in BE):
        unit = _unit_after(body, m.end()) if kind == "count" else _time_unit(focus)
        if not unit:
            return None
        if kind == "count" and tail.lower().startswith(unit.lower()):
            tail = tail[len(unit):].strip()
        if kind == "duration":
            raw_tail = body[m.end():]
            tail = " ".join((raw_tail[:tail_stop.start()] if tail_stop else raw_tail).split())
        if tail.lower().startswith("of "):
            unit, tail = f"{unit} {tail}", ""
        kind = "count"
    verb_part = " ".join(x for x in (main, mid) if x)
    verb_noprep = " ".join(x for x in (main, mid_noprep) if x)
    if kind == "money":
        if main == "cost" and not mid:
            q = f"How much {aux_q} {subject} cost"
        else:
            q = f"How much {aux_q} {subject} {verb_part}"
    elif kind == "percent":
        q = f"What percentage {aux_q} {subject} {verb_part}"
    elif kind == "date":
        q = f"{'Until when' if prep in ('until', 'till') else 'When'} {aux_q} {subject} {verb_noprep}"
    elif kind == "duration":
        if prep == "every":
            q = f"How often {aux_q} {subject} {verb_noprep}"
        elif prep in ("within", "in"):
            q = f"Within how many {_time_unit(focus)} {aux_q} {subject} {verb_noprep}"
        elif prep == "after":
            q = f"After how long {aux_q} {subject} {verb_noprep}"
        else:
            q = f"How long {aux_q} {subject} {verb_noprep}"
    elif kind == "code":
        wh = "Which error code" if re.search(r"\b(?:error|code|returns?)\b", body, re.I) else "What"
        q = f"{wh} {aux_q} {subject} {verb_part}"
    else:
        q = f"How many {unit} {aux_q} {subject} {verb_part}"
    if kind in ("money", "percent", "count", "code") and tail and not re.match(r"^(?:and|or|but)\b", tail):
        q += " " + tail
    q = re.sub(r"\s+", " ", q).strip(" ,") + "?"
    if len(q.split()) < 4 or len(q.split()) > 24:
        return None
    q = q[0].upper() + q[1:]
    return q, f"svo-{kind}", subject, focus


LEAD_CLAUSE = re.compile(r"^(?P<conj>When|If|Once|After|Before|While)\s(?P<clause>[^,;]{4,80}),\s(?P<main>\S.+)$")
PARTICIPLE = re.compile(r"^(?P<subj>(?:[A-Z][\w'-]*)(?:\s[\w'-]+){0,4}?)\s(?P<part>kept|limited|capped|stored|included|"
                        r"charged|billed|priced|retained|valid|available|refunded|deleted|sent|shown)\s(?P<rest>.+)$")
VERBLESS = re.compile(rf"^(?:Up to|At most|Maximum of|Max\.?)?\s*(?P<num>{NUM})\s(?P<rest>[A-Za-z].*)$", re.I)


def _question_variants(sentence: str, heading: str, vocab: set[str] | None = None) -> tuple[str, str, str, str] | None:
    """_question_from on the sentence, else on its clauses: the part after a leading When/If clause (which moves
    to the end of the question), each '; ' clause, a participle fragment ('Audit log kept for 30 days') or a
    verbless list item under a heading ('600 SMS credits per staff member per month.' under 'Surge')."""
    made = _question_from(sentence, heading, vocab)
    if made:
        return made
    body = LABEL_PREFIX.sub("", sentence.rstrip(".!").strip())
    m = LEAD_CLAUSE.match(body)
    if m:
        main = m.group("main")
        main = re.sub(r"^(?:its|their)\b", "the", main)
        made = _question_from(main[0].upper() + main[1:], heading, vocab)
        if made:
            q, tmpl, subj, focus = made
            clause = m.group("clause")
            return f"{q[:-1]} {m.group('conj').lower()} {clause}?", tmpl + "-when", subj, focus
    for clause in body.split("; ")[1:]:
        clause = clause.strip()
        if clause and len(clause.split()) >= MIN_WORDS - 1:
            made = _question_from(clause[0].upper() + clause[1:], heading, vocab)
            if made:
                return made
    m = PARTICIPLE.match(body)
    if m and m.group("subj").split()[0].lower() not in BAD_SUBJECT_START:
        subj = m.group("subj")
        be = "are" if subj.split()[-1].endswith("s") and not subj.split()[-1].endswith("ss") else "is"
        made = _question_from(f"{subj} {be} {m.group('part')} {m.group('rest')}", heading, vocab)
        if made:
            q, tmpl, subject, focus = made
            if heading and len(heading.split()) == 1 and heading[:1].isupper():
                q = f"{q[:-1]} on {heading}?"
            return q, tmpl + "-fragment", subject, focus
    m = VERBLESS.match(body)
    if m and heading and len(heading.split()) <= 3 and not _facts(heading):
        unit = _unit_after(body, m.start("rest") - 1)
        if unit:
            return (f"How many {unit} does {heading} include?", "heading-count", heading, m.group("num"))
    return None


def _keywords(evidence: str, question: str, focus: str) -> list[str]:
    """The fact the question asks for (not given away by the question): a date or code whole, an amount,
    percentage, count or duration by its number. Definitions: the first content words of the definition."""
    qn = f" {normalise(question)} "
    kinds = {m.group(0): k for k, m in _facts(evidence)}
    if focus and focus in kinds:
        num = re.search(NUM, focus)
        kw = focus if kinds[focus] in ("date", "code") or not num else num.group(0)
        return [kw] if normalise(kw) and f" {normalise(kw)} " not in qn else []
    if focus:                                  # a definition: its two longest content words
        words = [w for w in re.findall(r"[A-Za-z][\w-]{3,}", focus) if w.lower() not in STOP_UNIT
                 and f" {w.lower()} " not in qn]
        return sorted(dict.fromkeys(words), key=lambda w: -len(w))[:2]
    for kind, m in _facts(evidence):
        num = re.search(NUM, m.group(0))
        kw = m.group(0) if kind in ("date", "code") or not num else num.group(0)
        if normalise(kw) and f" {normalise(kw)} " not in qn:
            return [kw]
    return []


def fact_score(sentence: str) -> float:
    kinds = {k for k, _ in _facts(sentence)}
    score = sum({"money": 3, "percent": 3, "date": 2.5, "duration": 3, "code": 2.5, "count": 2}.get(k, 0)
                for k in kinds)
    n = len(_words(sentence))
    if n > 30:
        score -= 1
    return score


def extractive_candidates(chunk: dict, per_chunk: int = DEFAULT_PER_CHUNK,
                          vocab: set[str] | None = None) -> list[Candidate]:
    """Up to `per_chunk` lookup questions from one chunk's most fact-bearing sentences. `vocab`: the collection's
    lowercase words (lowercase_vocabulary), to tell a common noun at a sentence start from a name."""
    text = chunk.get("text") or ""
    vocab = vocab if vocab is not None else lowercase_vocabulary([text])
    heading = chunk.get("heading") or ""
    scored = []
    for s in sentence_spans(text):
        if s == heading or not _is_good_sentence(s) or s not in text:
            continue
        made = _question_variants(s, heading, vocab)
        if made is None:
            continue
        q, tmpl, subject, focus = made
        scored.append((fact_score(s) + (1.0 if tmpl == "definition" else 0.0), s, q, tmpl, subject, focus))
    scored.sort(key=lambda x: -x[0])
    out = []
    now = time.time()
    for score, s, q, tmpl, subject, focus in scored[:max(0, per_chunk)]:
        out.append(Candidate(id=candidate_id(chunk["id"], q), question=q, reference=s, evidence=s,
                             chunk_id=chunk["id"], doc_id=chunk.get("doc_id", ""), source=chunk.get("source", ""),
                             heading=heading, chunk_text=text, keywords=_keywords(s, q, focus),
                             tags=["fact_lookup"], generator="extractive", template=tmpl, subject=subject,
                             evidence_match="exact", created=now))
    return out


# --- the LLM generator ---------------------------------------------------------------------------------------------
def llm_schema(n: int) -> dict:
    return {"type": "object", "required": ["questions"], "properties": {"questions": {
        "type": "array", "minItems": 1, "maxItems": max(1, n), "items": {
            "type": "object", "required": ["question", "answer", "evidence"],
            "properties": {"question": {"type": "string"}, "answer": {"type": "string"},
                           "evidence": {"type": "string"}}}}}}


LLM_SYSTEM = """You write evaluation questions for a customer-support assistant, from one documentation PASSAGE.
Write up to {n} questions a customer could ask that the passage answers. For each give:
- "question": one question, as a customer would ask it, ending with "?";
- "answer": a short, correct answer using only the passage;
- "evidence": ONE sentence copied exactly, character for character, from the passage, that proves the answer.
Reply with JSON only: {{"questions": [{{"question": "...", "answer": "...", "evidence": "..."}}]}}"""


class ChunkTimeout(WorkbenchError):
    pass


def _chat_with_deadline(backend, messages, params, model: str | None, timeout_s: float) -> str:
    """The whole reply, or ChunkTimeout after `timeout_s` (the stream is abandoned; its thread ends on its own)."""
    box: dict = {}
    done = threading.Event()
    deadline = time.monotonic() + timeout_s

    def work():
        try:
            stream = backend.chat_stream(messages, params, model=model)
            box["stream"] = stream
            parts = []
            for delta in stream:
                parts.append(delta)
                if time.monotonic() > deadline:
                    box["late"] = True
                    break
            box["text"] = "".join(parts)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    t = threading.Thread(target=work, name="usecase-gen", daemon=True)
    t.start()
    if not done.wait(timeout_s + 0.5) or box.get("late"):
        stream = box.get("stream")
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - a generator running in the other thread cannot be closed from here
                pass
        raise ChunkTimeout(f"no complete reply within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("text", "")


def parse_llm_reply(text: str, chunk: dict, model: str = "") -> tuple[list[Candidate], list[str]]:
    """(candidates whose evidence is in the chunk, [reason for every dropped item or a bad reply])."""
    from core.compare.scores import extract_json

    raw = (text or "").strip()
    if not raw:
        return [], ["the model returned an empty reply"]
    try:
        obj = extract_json(raw)
    except ValueError:
        return [], [f"the model returned invalid JSON: {raw[:100]!r}"]
    items = obj.get("questions") if isinstance(obj, dict) else obj if isinstance(obj, list) else None
    if not isinstance(items, list) or not items:
        return [], [f"the JSON has no `questions` list: {raw[:100]!r}"]
    text_c = chunk.get("text") or ""
    out, problems = [], []
    now = time.time()
    for i, it in enumerate(items, start=1):
        if not isinstance(it, dict):
            problems.append(f"item {i} is not an object")
            continue
        q, a, ev = (str(it.get(k) or "").strip() for k in ("question", "answer", "evidence"))
        if len(q.split()) < 3:
            problems.append(f"item {i}: the question is empty or too short")
            continue
        if not a:
            problems.append(f"item {i}: no answer")
            continue
        match = evidence_match(ev, text_c)
        if match == "missing":
            problems.append(f"item {i}: evidence not found verbatim in the chunk ({ev[:60]!r})")
            continue
        kws = _keywords(ev, q, "")
        out.append(Candidate(id=candidate_id(chunk["id"], q), question=q, reference=a, evidence=ev,
                             chunk_id=chunk["id"], doc_id=chunk.get("doc_id", ""), source=chunk.get("source", ""),
                             heading=chunk.get("heading", ""), chunk_text=text_c, keywords=kws,
                             tags=["fact_lookup"], generator="llm", template=model, evidence_match=match,
                             created=now))
    return out, problems


def llm_candidates(chunk: dict, backend, model: str | None = None, per_chunk: int = DEFAULT_PER_CHUNK,
                   timeout_s: float = DEFAULT_TIMEOUT_S, max_tokens: int = 512) -> tuple[list[Candidate], list[str]]:
    from core.llm.base import GenParams

    n = max(1, per_chunk)
    messages = [{"role": "system", "content": LLM_SYSTEM.format(n=n)},
                {"role": "user", "content": f"PASSAGE:\n{chunk.get('text') or ''}"}]
    params = GenParams(temperature=0.2, max_tokens=max_tokens, seed=42, json_schema=llm_schema(n))
    text = _chat_with_deadline(backend, messages, params, model, timeout_s)
    return parse_llm_reply(text, chunk, model or "")


# --- one generation pass ----------------------------------------------------------------------------------------------
@dataclass
class ChunkError:
    chunk_id: str
    source: str
    error: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerationResult:
    generator: str
    candidates: list[Candidate] = field(default_factory=list)
    errors: list[ChunkError] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)        # {chunk_id, reason}: items the LLM wrote but failed checks
    chunks: int = 0
    chunks_done: int = 0
    seconds: float = 0.0
    model: str = ""

    def to_dict(self) -> dict:
        return {"generator": self.generator, "model": self.model, "chunks": self.chunks,
                "chunks_done": self.chunks_done, "candidates": len(self.candidates),
                "errors": [e.to_dict() for e in self.errors], "dropped": self.dropped,
                "seconds": round(self.seconds, 3)}


def resolve_generator(generator: str, backend_name: str | None) -> str:
    generator = (generator or "auto").strip().lower()
    if generator not in GENERATORS:
        raise UseCaseError(f"Unknown generator {generator!r}: use auto, extractive or llm.")
    if generator != "auto":
        return generator
    from core.config import get_settings
    name = (backend_name or get_settings().backend or "embedded").lower()
    return "extractive" if name == "embedded" else "llm"


def generate(chunks: Iterable[dict], generator: str = "extractive", *, backend_name: str | None = None,
             model: str | None = None, per_chunk: int = DEFAULT_PER_CHUNK, limit: int | None = None,
             timeout_s: float = DEFAULT_TIMEOUT_S, exclude: set[str] | None = None,
             progress: Callable[[int, int, str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> GenerationResult:
    """Candidates from chunks (deduplicated by normalised question, `exclude` = ids already known)."""
    chunks = list(chunks)
    gen = resolve_generator(generator, backend_name)
    res = GenerationResult(gen, chunks=len(chunks))
    t0 = time.perf_counter()
    seen_q = set()
    known = set(exclude or ())
    backend = None
    vocab = lowercase_vocabulary(c.get("text") or "" for c in chunks) if gen == "extractive" else None
    if gen == "llm":
        from core.llm.registry import get_backend, resolve_model
        backend = get_backend(backend_name)
        if backend.name == "embedded":
            raise UseCaseError("The LLM generator needs a capable backend (ollama or openai); the built-in model "
                               "cannot write good questions: use --generator extractive.")
        try:
            res.model = resolve_model(backend, model)
        except WorkbenchError as exc:
            raise BackendUnavailable(f"The {backend.name} backend is not ready: {exc}") from exc
    for i, ch in enumerate(chunks):
        if should_stop is not None and should_stop():
            break
        if limit is not None and len(res.candidates) >= limit:
            break
        label = f"{ch.get('source') or ch.get('doc_id') or '?'} #{ch.get('position', i)}"
        try:
            if gen == "extractive":
                made, problems = extractive_candidates(ch, per_chunk, vocab), []
            else:
                made, problems = llm_candidates(ch, backend, res.model, per_chunk, timeout_s)
        except BackendUnavailable as exc:
            res.errors.append(ChunkError(ch.get("id", ""), label, f"backend unavailable: {exc}"))
            for rest in chunks[i + 1:]:
                res.errors.append(ChunkError(rest.get("id", ""), rest.get("source", ""),
                                             "skipped: the backend is unavailable"))
            res.chunks_done = i + 1
            break
        except WorkbenchError as exc:
            res.errors.append(ChunkError(ch.get("id", ""), label, f"{type(exc).__name__}: {exc}"))
            made, problems = [], []
        except Exception as exc:  # noqa: BLE001 - one chunk's failure must not stop the batch
            res.errors.append(ChunkError(ch.get("id", ""), label, f"{type(exc).__name__}: {exc}"))
            made, problems = [], []
        if problems and not made:
            res.errors.append(ChunkError(ch.get("id", ""), label, "; ".join(problems)[:500]))
        elif problems:
            res.dropped += [{"chunk_id": ch.get("id", ""), "reason": p} for p in problems]
        for c in made:
            key = normalise(c.question)
            if key in seen_q or c.id in known:
                continue
            seen_q.add(key)
            res.candidates.append(c)
            if limit is not None and len(res.candidates) >= limit:
                break
        res.chunks_done = i + 1
        if progress is not None:
            progress(i + 1, len(chunks), label)
    res.seconds = time.perf_counter() - t0
    return res


def run(spec: dict, report) -> dict:
    """Job entry: generate candidates for a use case and merge them into its candidates.jsonl.

    spec: {"usecase": NAME, "generator": auto|extractive|llm, "backend": "", "model": "", "per_chunk": 2,
           "limit": null, "timeout_s": 60, "replace_pending": false}
    `report(progress=0..1, message=..., check=...)` is core.jobs' Reporter (or the CLI's console one)."""
    from core.usecase import review, workspace

    uc = workspace.get_usecase(str(spec.get("usecase") or ""))
    uc.writable("candidates")
    report(progress=0.0, message=f"reading the chunks of collection {uc.collection!r}")
    chunks = collection_chunks(uc.collection)
    if not chunks:
        raise UseCaseError(f"The collection {uc.collection!r} has no chunks: ingest the use case's documents first "
                           f"(`python -m core usecase new ... --docs FOLDER` or the Knowledge Base page).")
    existing = review.load_candidates(uc)
    replace_pending = bool(spec.get("replace_pending"))
    kept = [c for c in existing if not (replace_pending and c.status == "pending")]
    stop = getattr(report, "cancel_requested", None)

    def progress(done: int, total: int, label: str) -> None:
        # check=False: a cancel is seen through should_stop, so the candidates made so far are still saved
        report(progress=round(done / max(total, 1), 4), message=f"chunk {done}/{total}: {label}", check=False)

    res = generate(chunks, str(spec.get("generator") or "auto"), backend_name=spec.get("backend") or None,
                   model=spec.get("model") or None, per_chunk=int(spec.get("per_chunk") or DEFAULT_PER_CHUNK),
                   limit=spec.get("limit"), timeout_s=float(spec.get("timeout_s") or DEFAULT_TIMEOUT_S),
                   exclude={c.id for c in kept}, progress=progress, should_stop=stop)
    review.save_candidates(uc, kept + res.candidates)
    out = {**res.to_dict(), "usecase": uc.name, "total_candidates": len(kept) + len(res.candidates),
           "stopped": bool(stop and stop())}
    if out["stopped"]:               # a job's cancel: what was made so far is saved, the job ends cancelled
        from core.jobs import Cancelled
        raise Cancelled(f"cancelled after {res.chunks_done}/{res.chunks} chunk(s); {len(res.candidates)} new "
                        "candidate(s) saved")
    report(progress=1.0, message=f"{len(res.candidates)} new candidate(s) from {res.chunks_done} chunk(s), "
                                 f"{len(res.errors)} chunk error(s)", force=True)
    return out


JOB_KIND = "usecase_questions"          # core.jobs kind (core/jobs/registry.py) whose run function is `run` above


def job_spec(usecase: str, generator: str = "auto", *, backend: str = "", model: str = "",
             per_chunk: int = DEFAULT_PER_CHUNK, limit: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
             replace_pending: bool = False) -> dict:
    """The spec of one generation (what `run` reads), checked before anything starts."""
    resolve_generator(generator, backend or None)
    if not 1 <= int(per_chunk) <= 20:
        raise UseCaseError(f"per_chunk must be 1 to 20 (got {per_chunk}).")
    if limit is not None and int(limit) < 1:
        raise UseCaseError(f"limit must be at least 1 (got {limit}).")
    return {"usecase": usecase, "generator": generator, "backend": backend or "", "model": model or "",
            "per_chunk": int(per_chunk), "limit": None if limit is None else int(limit),
            "timeout_s": float(timeout_s), "replace_pending": bool(replace_pending)}


def cli_line(spec: dict) -> str:
    """The command that runs the same generation in the foreground."""
    parts = ["python", "-m", "core", "usecase", "gen-questions", spec["usecase"], "--generator",
             spec.get("generator") or "auto"]
    if spec.get("backend"):
        parts += ["--backend", spec["backend"]]
    if spec.get("model"):
        parts += ["--model", spec["model"]]
    if int(spec.get("per_chunk") or DEFAULT_PER_CHUNK) != DEFAULT_PER_CHUNK:
        parts += ["--per-chunk", str(int(spec["per_chunk"]))]
    if spec.get("limit"):
        parts += ["--limit", str(int(spec["limit"]))]
    if float(spec.get("timeout_s") or DEFAULT_TIMEOUT_S) != DEFAULT_TIMEOUT_S:
        parts += ["--timeout", f"{float(spec['timeout_s']):g}"]
    if spec.get("replace_pending"):
        parts.append("--replace-pending")
    import shlex
    return shlex.join(parts)


def start_job(spec: dict):
    """Generation as a background job (its own process, progress, log, cancel): returns the core.jobs Job."""
    from core import jobs
    from core.usecase import workspace

    uc = workspace.get_usecase(str(spec.get("usecase") or ""))
    uc.writable("candidates")                       # the read-only demo: a clear error now, not in the worker
    return jobs.create(JOB_KIND, spec, name=f"questions for {uc.name}")


def latest_job(usecase: str):
    """The newest generation job of a use case (any state), or None."""
    from core import jobs

    mine = jobs.list_jobs(JOB_KIND, where=lambda j: (j.spec or {}).get("usecase") == usecase)
    return mine[0] if mine else None          # newest first


class ConsoleReport:
    """The Reporter interface of core.jobs for a foreground run: progress lines on a stream."""

    def __init__(self, stream=None, every_s: float = 0.5):
        import sys
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last = 0.0
        self.status: dict = {}

    def __call__(self, *, force: bool = False, check: bool = True, **fields) -> None:
        self.status.update(fields)
        now = time.monotonic()
        if force or now - self._last >= self.every_s or fields.get("progress") in (0.0, 1.0):
            self._last = now
            pct = fields.get("progress")
            head = f"[{pct * 100:5.1f}%] " if isinstance(pct, (int, float)) else ""
            print(f"{head}{fields.get('message', '')}", file=self.stream, flush=True)

    def cancel_requested(self) -> bool:
        return False

    def check(self) -> None:
        return None

    def log(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

