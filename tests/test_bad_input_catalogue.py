"""The bad-input catalogue, end to end through the CLI (`python -m core ...`, real processes, a real data folder,
the real embedder and LanceDB). Every case gets a clear message, leaves nothing half-written, and the rest of the
work goes on. README "Security" lists the same cases and what each one gets.

The pages call the same core functions; the page-level cases (typed paths, upload names, two tabs) are listed in
the README and are checked at core level here where the CLI has no equivalent (upload names, UI path roots).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_http

KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
BAD = ROOT / "tests" / "fixtures" / "bad"
DOUBLE = ROOT / "tests" / "fixtures" / "openai_double.py"
GOOD_DOCS = ["calendar-sync.md", "pricing-sheet-2024.pdf"]


def cli(args: list[str], data_dir: Path, timeout: float = 900, **env) -> subprocess.CompletedProcess:
    e = dict(os.environ, WORKBENCH_DATA=str(data_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
             **{k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=timeout)


def leftovers(data_dir: Path) -> list[str]:
    """Temp files a crashed or half-done write would leave behind."""
    return [str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
            if p.is_file() and (p.name.endswith((".tmp", ".part")) or ".tmp-" in p.name)]


def zip_bomb_docx() -> bytes:
    real = (KNOWLEDGE / "onboarding-checklist.docx").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for i in src.infolist():
            out.writestr(i.filename, src.read(i.filename))
        out.writestr("word/media/image1.png", b"\0" * (50 * 1024 * 1024))     # 50 MB of zeros, ~50 KB packed
    return buf.getvalue()


def collection_docs(data_dir: Path, collection: str) -> list[str]:
    r = cli(["collections", "--docs", "--json"], data_dir)
    assert r.returncode == 0, r.stderr
    for c in json.loads(r.stdout)["collections"]:
        if c["name"] == collection:
            return sorted(d["doc_id"] for d in c["docs"])
    return []


# ---- documents -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bad_documents_in_one_batch(data_dir, tmp_path):
    """Empty, binary, corrupt, encrypted, not-UTF-8, oversized, zip-bomb and deeply nested files, an odd name and
    two good documents in one folder: each bad file gets its own typed error, the good ones are indexed."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in GOOD_DOCS:
        shutil.copy(KNOWLEDGE / name, folder / name)
    for name in ("empty.txt", "binary.pdf", "corrupt.pdf", "encrypted.pdf", "not_utf8.txt", "odd name (copy) #2.md"):
        shutil.copy(BAD / name, folder / name)
    (folder / "oversized.txt").write_bytes(b"too big " * 200_000)                     # 1.6 MB > 1 MB limit
    (folder / "bomb.docx").write_bytes(zip_bomb_docx())
    (folder / "deep.html").write_text("<div>" * 50_000 + "x" + "</div>" * 50_000)
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 16)
    r = cli(["ingest", str(folder), "--collection", "catalogue", "--json"], data_dir, WORKBENCH_MAX_UPLOAD_MB=1)
    assert r.returncode == 1, r.stderr[-3000:]                # some files failed: non-zero, but the batch ran
    res = json.loads(r.stdout)
    by = {f["file"]: f for f in res["files"]}
    expected = {
        "empty.txt": ("EmptyDocument", "the file is empty"),
        "binary.pdf": ("CorruptDocument", "not a PDF file"),
        "corrupt.pdf": ("CorruptDocument", "damaged"),
        "encrypted.pdf": ("EncryptedDocument", "password-protected"),
        "oversized.txt": ("FileTooLarge", "over the 1 MB limit"),
        "bomb.docx": ("DocumentLimitExceeded", "zip bomb"),
        "deep.html": ("DocumentLimitExceeded", "more than 1000 levels"),
        "binary.txt": ("UnsupportedFile", "binary data"),
    }
    for name, (etype, words) in expected.items():
        assert not by[name]["ok"] and by[name]["error_type"] == etype and words in by[name]["error"], by[name]
        assert by[name]["error"].startswith(name)            # every message names its file
    ok = sorted(f["doc_id"] for f in res["files"] if f["ok"])
    assert ok == sorted([*GOOD_DOCS, "not_utf8.txt", "odd name (copy) #2.md"])
    assert collection_docs(data_dir, "catalogue") == ok       # exactly the good files are in the index
    assert leftovers(data_dir) == []


@pytest.mark.slow
def test_slow_and_memory_hungry_files_hit_the_per_file_limits(data_dir, tmp_path):
    """Each limit is tested on its own (a parse that is both slow and hungry may hit either first, machine by
    machine); the good file beside the bad one is indexed both times."""
    cases = {"slow.html": ("<html><body>" + "<p>x y</p>" * 600_000 + "</body></html>",
                           dict(WORKBENCH_PARSE_TIMEOUT_S=3, WORKBENCH_PARSE_MEMORY_MB=2048),
                           "ParseTimeout", "longer than 3 s"),
             "hungry.txt": (("hello world " * 8 + "\n") * 100_000,                      # 9.7 M chars
                            dict(WORKBENCH_PARSE_TIMEOUT_S=120, WORKBENCH_PARSE_MEMORY_MB=110),
                            "ParseMemoryExceeded", "110 MB")}
    for name, (text, limits, etype, words) in cases.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        shutil.copy(KNOWLEDGE / "calendar-sync.md", folder / "calendar-sync.md")
        (folder / name).write_text(text)
        coll = "limits-" + name.split(".")[0]
        r = cli(["ingest", str(folder), "--collection", coll, "--json"], data_dir,
                WORKBENCH_MAX_UPLOAD_MB=20, **limits)
        assert r.returncode == 1, r.stderr[-3000:]
        by = {f["file"]: f for f in json.loads(r.stdout)["files"]}
        assert by[name]["error_type"] == etype and words in by[name]["error"], by[name]
        assert by["calendar-sync.md"]["ok"]
        assert collection_docs(data_dir, coll) == ["calendar-sync.md"]


def test_upload_names_and_batch_cap(data_dir, monkeypatch):
    """`../` and odd upload names become safe document ids (the original stays the display name); a batch over
    WORKBENCH_MAX_BATCH_FILES is refused before anything is read."""
    from core.errors import TooManyFiles
    from core.rag import ingest, loaders

    for raw, safe in [("../../etc/passwd.md", "passwd.md"), ("..\\..\\boot.ini.md", "boot.ini.md"),
                      ("report`](https://evil.example/x.png)`.md", "x.png)_.md"),
                      ("", "document"), ("a\x00b\nc.md", "abc.md")]:
        assert loaders.sanitize_name(raw) == safe
    items = ingest._items_from_uploads([("../../etc/passwd.md", b"x")], 50)
    assert items[0][:2] == ("../../etc/passwd.md", "passwd.md")
    monkeypatch.setenv("WORKBENCH_MAX_BATCH_FILES", "3")
    with pytest.raises(TooManyFiles, match="4 uploaded files in one batch is over the limit of 3"):
        ingest.ingest_uploads([(f"f{i}.txt", b"hello") for i in range(4)], "capped")


def test_ui_typed_paths_outside_the_roots(data_dir):
    from core import paths
    from core.errors import PathNotAllowed

    for typed in ("/", "../../..", "/etc/passwd", str(data_dir / ".." / "..")):
        with pytest.raises(PathNotAllowed, match="outside the folders this app may read"):
            paths.ui_path(typed)


# ---- datasets, templates, patterns, models ------------------------------------------------------------------------
@pytest.mark.slow
def test_malformed_and_nested_jsonl_fine_tune_data(data_dir, tmp_path):
    nested = tmp_path / "nested.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]})
    nested.write_text(good + "\n" + '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}\n" + good + "\n")
    for path, words in [(BAD / "malformed.jsonl", "line 3: not valid JSON"),
                        (nested, "line 2: the JSON is nested too deeply"),
                        (BAD / "mixed_formats.jsonl", "use one format per file")]:
        r = cli(["finetune", "--data", str(path), "--json"], data_dir, timeout=300)
        assert r.returncode == 1
        out = json.loads(r.stdout)
        assert out["error"] == "DatasetError" and words in out["message"], out
    runs = data_dir / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()]     # no training was started
    assert leftovers(data_dir) == []


def test_hostile_template_is_refused_and_nothing_is_saved(data_dir, tmp_path):
    spec = tmp_path / "wide.yaml"
    spec.write_text("name: wide\ntemplate: 'Q: {question:>999999999}'\n")
    r = cli(["prompts", "save", str(spec), "--message", "try it", "--json"], data_dir, timeout=120)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "TemplateFieldError" and "{question:>999999999}" in out["message"]
    conv = tmp_path / "conv.yaml"
    conv.write_text("name: conv\ntemplate: '{question!r}'\n")
    r = cli(["prompts", "save", str(conv), "--message", "try it", "--json"], data_dir, timeout=120)
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "TemplateFieldError"
    listed = cli(["prompts", "list", "--json"], data_dir, timeout=120)
    assert "wide" not in listed.stdout and "conv" not in listed.stdout
    assert not (data_dir / "prompts" / "wide").exists() or not list((data_dir / "prompts" / "wide").glob("v*"))


def test_unknown_model_and_backend(data_dir):
    r = cli(["generate", "hello", "--model", "no-such-model", "--json"], data_dir, timeout=300)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "ModelNotFound" and "no-such-model" in out["message"]
    r = cli(["generate", "hello", "--backend", "nope", "--json"], data_dir, timeout=300)
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "UnknownBackend"


class Double:
    """The OpenAI-compatible TEST DOUBLE (tests/fixtures/openai_double.py) in its own process."""

    def __init__(self, tmp_path: Path, *args: str):
        self.port = free_port()
        self.log = open(tmp_path / f"double-{self.port}.log", "w")
        self.proc = subprocess.Popen([sys.executable, str(DOUBLE), str(self.port), *args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/v1/models", timeout=30)
        self.env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{self.port}/v1", "WORKBENCH_OPENAI_MODEL": "double"}

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


def _questions(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "questions.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


@pytest.mark.slow
def test_hostile_regexes_in_a_question_file(data_dir, tmp_path):
    """A catastrophic pattern is stopped by the time limit (that score is N/A with the reason, the run goes on);
    an invalid pattern is reported with its line before anything runs."""
    bad = _questions(tmp_path, [{"id": "q1", "question": "When does the quota reset?", "reference": "monthly"},
                                {"id": "q2", "question": "Why?", "reference": "x", "patterns": ["("]}])
    r = cli(["compare", "--questions", str(bad), "--approach", "p=model=double,backend=openai,prompt=zero_shot",
             "--json"], data_dir, timeout=300)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert "line 2" in out["message"] and "(" in out["message"], out
    assert not (data_dir / "compare").exists() or not list((data_dir / "compare").glob("*/spec.json"))

    double = Double(tmp_path, "--answer", "The quota resets monthly. " + "a" * 60 + "!")
    try:
        qs = _questions(tmp_path, [
            {"id": "q1", "question": "When does the quota reset?", "reference": "monthly",
             "patterns": ["(a|aa)+$", "monthly"]},
            {"id": "q2", "question": "How often?", "reference": "monthly", "patterns": ["monthly"]}])
        t0 = time.monotonic()
        r = cli(["compare", "--questions", str(qs), "--approach", "p=model=double,backend=openai,prompt=zero_shot",
                 "--json"], data_dir, timeout=600, **double.env)
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout)
        assert out["state"] == "succeeded" and out["status"]["done"] == 2 and out["status"]["errors"] == 0
        run_dir = Path(out["dir"])
        recs = {rec["qid"]: rec for rec in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}
        p1 = recs["q1"]["scores"]["patterns"]
        assert p1["value"] is None and "took more than" in p1["reason"]
        assert recs["q2"]["scores"]["patterns"]["value"] == 1.0
        assert time.monotonic() - t0 < 300
    finally:
        double.close()


@pytest.mark.slow
def test_server_down_mid_run(data_dir, tmp_path):
    """The OpenAI-compatible server answers once, dies in the middle of the second answer and stays down: the run
    records a clear error for each remaining answer and finishes; every stored line is a whole record."""
    double = Double(tmp_path, "--die-after", "1")
    try:
        qs = _questions(tmp_path, [{"id": f"q{i}", "question": f"Question {i}?", "reference": "monthly"}
                                   for i in range(1, 4)])
        r = cli(["compare", "--questions", str(qs), "--approach", "p=model=double,backend=openai,prompt=zero_shot",
                 "--concurrency", "1", "--json"], data_dir, timeout=600, **double.env)   # one request at a time
        assert double.proc.wait(10) == 1                     # it really died
        out = json.loads(r.stdout)
        assert out["status"]["done"] + out["status"]["errors"] == 3 and out["status"]["errors"] == 2, out["status"]
        lines = (Path(out["dir"]) / "results.jsonl").read_text().splitlines()
        recs = {rec["qid"]: rec for rec in map(json.loads, lines)}              # every line parses
        assert recs["q1"]["ok"] and not recs["q2"]["ok"] and not recs["q3"]["ok"]
        assert "127.0.0.1" in recs["q2"]["error"] and "127.0.0.1" in recs["q3"]["error"]
        assert "No OpenAI-compatible server answers" in recs["q3"]["error"]
        assert leftovers(data_dir) == []
    finally:
        double.close()


@pytest.mark.slow
def test_stream_cut_mid_answer(data_dir, tmp_path):
    """The server stays up but every answer's stream stops after three chunks, without `data: [DONE]` (a proxy or
    network cut): each answer is recorded as an error saying so -- never stored as a (partial) answer -- and the
    run finishes."""
    double = Double(tmp_path, "--cut-after", "3")
    try:
        qs = _questions(tmp_path, [{"id": f"q{i}", "question": f"Question {i}?", "reference": "monthly"}
                                   for i in (1, 2)])
        r = cli(["compare", "--questions", str(qs), "--approach", "p=model=double,backend=openai,prompt=zero_shot",
                 "--json"], data_dir, timeout=600, **double.env)
        out = json.loads(r.stdout)
        assert out["status"]["errors"] == 2 and out["status"]["done"] == 0, out["status"]
        recs = [json.loads(line) for line in (Path(out["dir"]) / "results.jsonl").read_text().splitlines()]
        assert len(recs) == 2 and not any(rec["ok"] for rec in recs)
        for rec in recs:
            assert "without `data: [DONE]`" in rec["error"] and "incomplete" in rec["error"], rec["error"]
        assert double.proc.poll() is None                    # the server did not die: the stream was cut
        assert leftovers(data_dir) == []
    finally:
        double.close()


def test_nested_json_line_in_a_question_file(data_dir, tmp_path):
    """A question file line nested thousands deep is refused by line before anything runs (no RecursionError)."""
    qs = tmp_path / "questions.jsonl"
    qs.write_text(json.dumps({"id": "q1", "question": "Fine?"}) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    r = cli(["compare", "--questions", str(qs), "--approach", "p=model=double,backend=openai,prompt=zero_shot",
             "--json"], data_dir, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert "line 2" in out["message"] and "nested too deeply" in out["message"], out
    assert "RecursionError" not in r.stderr
    assert not (data_dir / "compare").exists() or not list((data_dir / "compare").glob("*/spec.json"))


# ---- two writers -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_writers_on_one_collection(data_dir, tmp_path):
    """Two foreground `ingest` processes into the same collection at once (the write lock orders their writes):
    both succeed and the collection holds every document exactly once."""
    names = sorted(p.name for p in KNOWLEDGE.iterdir() if p.is_file())
    folders = [tmp_path / "a", tmp_path / "b"]
    for i, f in enumerate(folders):
        f.mkdir()
        for n in names[i::2]:
            shutil.copy(KNOWLEDGE / n, f / n)
    e = dict(os.environ, WORKBENCH_DATA=str(data_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "core", "ingest", str(f), "--collection", "shared", "--json"],
                              cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in folders]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert json.loads(out)["failed"] == 0
    docs = collection_docs(data_dir, "shared")
    assert docs == sorted(names)
    from core.rag import store
    cfg = store.get_active("shared")
    rows = store.open_table(cfg.table_name).search().select(["id", "doc_id", "position"]).limit(None).to_arrow().to_pylist()
    assert len({r["id"] for r in rows}) == len(rows)
    for d in docs:
        pos = sorted(r["position"] for r in rows if r["doc_id"] == d)
        assert pos == list(range(len(pos)))
