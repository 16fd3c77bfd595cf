"""The error type of a real corpus that cannot be used as it is.

It sits below every other ``bench.data`` module (``audio``, ``corpus_layout``, the
loaders) so all of them raise the same type and callers (the CLI, ``bench.sweep``) catch
one thing. It is a ValueError, so code that already catches ValueError keeps working.
"""

from __future__ import annotations


class CorpusError(ValueError):
    """A corpus (layout, label file or audio file) that cannot be used as it is; the
    message names the file, what is wrong and what was expected."""
