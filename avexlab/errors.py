"""One error hierarchy for the workbench.

Every error says what was expected, what was found and what to do. Catch ``AvexlabError`` to handle all
of them; subclasses also derive from the matching builtin (``ValueError``, ``FileNotFoundError``) so that
generic callers keep working.
"""

from __future__ import annotations


class AvexlabError(Exception):
    """Base class of all avexlab errors."""


class AudioError(AvexlabError, ValueError):
    """An audio file could not be read or holds unusable samples."""


class ManifestError(AvexlabError, ValueError):
    """A manifest does not follow the schema. Names the row and the column where it can."""


class CheckpointError(AvexlabError, ValueError):
    """A file is not a checkpoint avexlab can load, or does not fit the architecture."""


class ConfigError(AvexlabError, ValueError):
    """A configuration is invalid (unknown key, wrong type, inconsistent values)."""


class TrainingDivergedError(AvexlabError, RuntimeError):
    """The loss or the gradients became NaN/Inf; training stopped and the last good checkpoint is kept."""


class DataNotFoundError(AvexlabError, FileNotFoundError):
    """Data the user must provide is not where it should be; says what to put where."""


class EvaluationError(AvexlabError, ValueError):
    """An evaluation cannot run on the given inputs (label spaces differ, missing suite, ...)."""


class MissingDependencyError(AvexlabError, ImportError):
    """An optional dependency (an extra of the package) is not installed; says which command installs it."""


def expected_found(what: str, expected: str, found: str, todo: str) -> str:
    """Format the house error message: what, expected, found, what to do."""
    return f"{what}: expected {expected}, found {found}. {todo}"
