"""The exceptions of mimofm, torch-free: the CLI imports them at start-up (``clean_errors`` maps
:class:`MimofmInputError` to exit code 2) without loading PyTorch. :mod:`mimofm.core.validation` re-exports
them, so ``from mimofm.core.validation import MimofmInputError`` keeps working."""

from __future__ import annotations

__all__ = ["MimofmInputError"]


class MimofmInputError(ValueError):
    """Raised for invalid user input. The CLI prints its message without a traceback."""
