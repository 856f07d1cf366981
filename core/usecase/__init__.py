"""Use cases: one named workspace per use case, from "my documents and past answers" to a question set, a
training dataset and a first comparison.

    workspace   a use case = a folder <data>/usecases/<name>/ of plain files (collection name, prompt set,
                training data, question set, candidates, checks); the bundled Tidewave scenario is the first,
                read-only use case; export/import as a folder or a .tar.gz archive (safe extraction)
    importers   past answers from CSV/JSONL with a column mapping: duplicates, personal data, masking, and the
                chat-JSONL training rows the fine-tune page validates
    checks      voice/format checks derived from the imported answers (a greeting or sign-off in >= 90% of
                them), proposed for the user to accept; refusal patterns
    questions   candidate questions from a collection's chunks: model-free ("extractive") or written by an LLM
                under a JSON schema with the evidence checked verbatim; `run(spec, report)` is the job entry
    review      accept / edit / reject / tag candidates; only accepted ones enter the question set
    leakage     no question, reference answer or evidence sentence may appear in the training rows
Nothing here imports streamlit or torch at import time (the embedder loads only when a collection is read).
"""
