"""Typed errors. The UI shows `str(err)` to the user, so every message says what went wrong and what to do."""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose (bad input, missing model, server down...)."""


class ConfigError(WorkbenchError):
    """A setting or config file is invalid."""


class ScenarioError(ConfigError):
    """The scenario file (sample_docs/scenario.yaml) is invalid."""


class UnknownName(WorkbenchError):
    """No part (backend, chunker, embedder, trainer...) is registered under that name. `kind` says which
    registry, `name` what was asked for and `known` the names that are registered."""

    kind: str = ""
    name: str = ""
    known: tuple[str, ...] = ()


# --- LLM backends -------------------------------------------------------------------------------------------
class BackendError(WorkbenchError):
    """A backend failed while serving a request."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not installed (e.g. no Ollama server at OLLAMA_HOST)."""


class UnknownBackend(BackendError, UnknownName):
    """No backend is registered under that name."""


class ModelNotFound(BackendError):
    """The requested model (or adapter) does not exist on that backend."""


class InvalidParams(WorkbenchError):
    """Generation parameters out of range (negative max_tokens, temperature 50, ...)."""


class EmptyPrompt(InvalidParams):
    """Nothing to send to the model."""


class ContextOverflow(WorkbenchError):
    """The prompt does not fit the model's context window; raised instead of silent truncation."""

    def __init__(self, prompt_tokens: int, max_tokens: int, n_ctx: int, model: str = ""):
        self.prompt_tokens, self.max_tokens, self.n_ctx, self.model = prompt_tokens, max_tokens, n_ctx, model
        super().__init__(
            f"The prompt is {prompt_tokens} tokens and {max_tokens} more are asked for, but "
            f"{model or 'the model'} has a context window of {n_ctx} tokens. Shorten the prompt or the retrieved "
            f"context, lower max_tokens, or raise num_ctx."
        )


# --- Prompts ------------------------------------------------------------------------------------------------
class PromptError(WorkbenchError):
    """A prompt spec or library file is invalid."""


class MissingVariable(PromptError):
    """The template names a {variable} that was not given."""


# --- RAG ----------------------------------------------------------------------------------------------------
class IngestError(WorkbenchError):
    """A document could not be ingested (the rest of a batch still is)."""


class UnsupportedFile(IngestError):
    pass


class EmptyDocument(IngestError):
    pass


class CorruptDocument(IngestError):
    pass


class FileTooLarge(IngestError):
    pass


class CollectionNotFound(WorkbenchError):
    pass


class UnknownChunker(InvalidParams, UnknownName):
    """No chunker is registered under that name."""


class UnknownEmbedder(ModelNotFound, UnknownName):
    """No embedder kind matches that name."""


# --- Fine-tuning --------------------------------------------------------------------------------------------
class DatasetError(WorkbenchError):
    """A data file (training set, question set) is missing or malformed: `filename` names it and `problems`
    lists (line, message) pairs."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None, filename: str = ""):
        self.problems = problems or []
        self.filename = filename
        super().__init__(message)


class JobError(WorkbenchError):
    pass


class NeedsGPU(InvalidParams):
    """The job asks for something only a CUDA GPU does (QLoRA's 4-bit base) and this machine has none."""


class UnknownTrainer(JobError, UnknownName):
    """No trainer is registered under that name."""


class ExportError(WorkbenchError):
    pass


# --- Compare ------------------------------------------------------------------------------------------------
class CompareError(WorkbenchError):
    pass


class RatingError(CompareError):
    """A human rating is invalid (no label, a grade out of 1-5, an unknown answer, a missing rater name)."""


# --- Advisor ------------------------------------------------------------------------------------------------
class AdvisorError(WorkbenchError):
    """An advisor answer is out of range (e.g. a negative number of examples, an unknown frequency)."""


# --- Security and limits ------------------------------------------------------------------------------------
class PathNotAllowed(WorkbenchError):
    """A path typed in the UI resolves (after symlinks) outside the configured roots (WORKBENCH_PATH_ROOTS)."""


class TooManyFiles(WorkbenchError):
    """A batch (upload or folder) has more files than WORKBENCH_MAX_BATCH_FILES."""


class DocumentLimitExceeded(IngestError):
    """A document is over a parsing limit: zip-bomb ratio, uncompressed size, PDF pages, characters, HTML depth."""


class ParseTimeout(IngestError):
    """Parsing one document took longer than the per-file time limit (WORKBENCH_PARSE_TIMEOUT_S)."""


class ParseMemoryExceeded(IngestError):
    """Parsing one document needed more memory than the per-file limit (WORKBENCH_PARSE_MEMORY_MB)."""


class PatternError(WorkbenchError, ValueError):
    """A regular expression from a question file or scenario is invalid, too long or too slow.

    Also a ValueError, so a line-by-line parser that turns ValueError into "line N: ..." reports it by line."""


class TemplateFieldError(PromptError):
    """A prompt template field carries a format spec or a conversion (`{question:>999999999}`, `{x!r}`)."""


class CollectionBusy(WorkbenchError):
    """Another writer holds the collection's lock for longer than the wait allowed."""

# --- Use cases ----------------------------------------------------------------------------------------------
class UseCaseError(WorkbenchError):
    """A use-case workspace is missing, read-only, malformed, or an archive of one is unsafe."""


class UnsafeArchive(UseCaseError):
    """An archive or folder to import holds a path outside its root, a link, a device, or is too large."""
