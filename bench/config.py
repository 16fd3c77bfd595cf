"""Strict dataclass configs: unknown keys are an error, never silently dropped."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C")


def build_config(cls: type[C], values: dict[str, Any] | None = None, **overrides: Any) -> C:
    """Build the dataclass ``cls`` from ``values`` and ``overrides``; reject unknown keys."""
    merged = {**(values or {}), **overrides}
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    config = cls(**merged)
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def scale_config(cls: type, scales: dict[str, dict[str, Any]], scale: str) -> dict[str, Any]:
    """The config dataclass ``cls`` at ``scale`` (a key of ``scales``) as a plain dict."""
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(scales)}")
    return dataclasses.asdict(build_config(cls, scales[scale]))
