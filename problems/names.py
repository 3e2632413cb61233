"""Did-you-mean hints shared by the problem and optimizer registries."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'a', 'b'?' for up to three close names (case-insensitive), else ''."""
    choices = list(choices)
    lowered: dict[str, str] = {}
    for c in choices:  # the first spelling wins: registry names before torch class names
        lowered.setdefault(c.lower(), c)
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + ", ".join(repr(lowered[c]) for c in close) + "?"
