"""One registry shape for every swappable part (LLM backends, chunkers, embedders, trainers).

A registry maps a name to a *dotted path* ("package.module:attribute") that is imported only when the name is
used, so importing a registry never imports the parts (no import side effects, no heavy imports, no cycles).
A part can also be registered as an object. An unknown name raises the registry's typed error (a subclass of
`core.errors.UnknownName`) that lists the known names.

    BACKENDS = Registry("backend", UnknownBackend)
    BACKENDS.register("embedded", "core.llm.embedded:EmbeddedBackend", "llama.cpp in-process ...")
    BACKENDS.load("embedded")       # -> the EmbeddedBackend class (imported now)
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from core.errors import UnknownName

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: Any                      # "module:attr" (lazy) or the object itself
    description: str = ""


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[UnknownName] = UnknownName, hint: str = ""):
        self.kind, self.error, self.hint = kind, error, hint
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}
        self._lock = threading.Lock()

    def register(self, name: str, target: Any, description: str = "") -> None:
        """Register `target` under `name`: a "module:attribute" string (imported on first use) or an object."""
        if not name or not isinstance(name, str):
            raise ValueError(f"A {self.kind} needs a non-empty name.")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: give the target as 'package.module:attribute', not {target!r}.")
        with self._lock:
            self._entries[name] = Entry(name, target, description)
            self._loaded.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def descriptions(self) -> dict[str, str]:
        return {n: e.description for n, e in self._entries.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def unknown(self, name: object) -> UnknownName:
        known = self.names()
        err = self.error(f"Unknown {self.kind} {name!r}: choose one of {', '.join(known) or '(none registered)'}"
                         f"{'; ' + self.hint if self.hint else ''}.")
        err.kind, err.name, err.known = self.kind, str(name), tuple(known)
        return err

    def load(self, name: str) -> T:
        """The registered object (a class or a factory), importing its module on first use."""
        entry = self.entry(name)
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        target = entry.target
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            obj = getattr(importlib.import_module(module), attr)
        else:
            obj = target
        with self._lock:
            self._loaded[name] = obj
        return obj

    def create(self, name: str, *args, **kwargs):
        """Call the registered class or factory: `load(name)(*args, **kwargs)`."""
        return self.load(name)(*args, **kwargs)


__all__ = ["Registry", "Entry"]
