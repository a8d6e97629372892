"""User-facing errors.

Every error a user can cause (bad input, missing files, mismatched adapters) is an :class:`AdamergexError`
whose message is one line naming what is wrong and what was expected. The CLI prints that line and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AdamergexError(Exception):
    """An error caused by the user's input, with a one-line explanation."""

    exit_code: int = 2


class AdapterFormatError(AdamergexError):
    """An adapter folder is missing files, is corrupt, or is not a supported PEFT adapter."""


class IncompatibleAdaptersError(AdamergexError):
    """Adapters cannot be merged together (kind, base model, shapes)."""


class NumericalError(AdamergexError):
    """A computation would produce non-finite values or divide by (near) zero."""


class OutputExistsError(AdamergexError):
    """The output path exists and overwriting was not requested."""


class StorageError(AdamergexError):
    """A path cannot be written or read: permissions, a read-only or full file system, a file where a folder
    is expected."""
