"""adamergex: cross-lingual transfer by adaptive adapter merging (AdaMergeX, Zhao et al., arXiv 2402.18913).

The public API is importable from the package root::

    import adamergex
    summary = adamergex.merge(task="en-task", reference_target="ref-de", reference_source="ref-en",
                              t=1.0, out="task-de")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("adamergex")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from adamergex.errors import AdamergexError
from adamergex.merging.api import MergeSummary, combine, merge

__all__ = ["AdamergexError", "MergeSummary", "__version__", "combine", "merge"]
