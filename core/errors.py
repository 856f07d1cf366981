"""Typed errors. The UI shows `str(err)` to the user, so every message says what went wrong and what to do."""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose (bad input, missing model, server down...)."""


class ConfigError(WorkbenchError):
    """A setting or config file is invalid."""


# --- LLM backends -------------------------------------------------------------------------------------------
class BackendError(WorkbenchError):
    """A backend failed while serving a request."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not installed (e.g. no Ollama server at OLLAMA_HOST)."""


class UnknownBackend(BackendError):
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


# --- Fine-tuning --------------------------------------------------------------------------------------------
class DatasetError(WorkbenchError):
    """A training data file is malformed; `problems` lists (line, message) pairs."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None):
        self.problems = problems or []
        super().__init__(message)


class JobError(WorkbenchError):
    pass


class ExportError(WorkbenchError):
    pass


# --- Compare ------------------------------------------------------------------------------------------------
class CompareError(WorkbenchError):
    pass


# --- Use cases ----------------------------------------------------------------------------------------------
class UseCaseError(WorkbenchError):
    """A use-case workspace is missing, read-only, malformed, or an archive of one is unsafe."""


class UnsafeArchive(UseCaseError):
    """An archive or folder to import holds a path outside its root, a link, a device, or is too large."""
