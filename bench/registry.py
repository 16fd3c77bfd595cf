"""Method and task registries.

Methods and tasks register under a family and a name with ``@register(family, name)``;
``get(family, name)`` returns the class. A second registration of the same name is an
error (never "last definition wins"), and an unknown name raises ``UnknownNameError``
listing the known names of that family, so a typo on the command line is self-explaining.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, type]] = {}

# Modules that hold registrations. Imported explicitly (no star-imports) by load_all().
REGISTERING_MODULES: tuple[str, ...] = (
    "methods.calibration",
    "methods.quantizers",
    "methods.ssl_objectives",
    "bench.models.digits",
    "bench.models.frontends",
    "bench.tasks.calibration",
    "bench.tasks.user_logits",
    "bench.tasks.ssl_phoneme",
    "bench.tasks.asr",
    "methods.enhancement",
    "bench.tasks.enhance",
    "methods.forcing",
    "bench.tasks.g2p",
    "methods.losses",
    "methods.miners",
    "bench.tasks.speaker",
    "bench.tasks.prosody",
    "methods.augment",
    "bench.tasks.augment",
    "bench.tasks.digits_metric",
)


class UnknownNameError(LookupError):
    """A family or name that is not registered; the message lists what is."""


class RegistryCollisionError(ValueError):
    """Two different objects registered under the same family and name."""


def register(family: str, name: str) -> Callable[[T], T]:
    """Class decorator: register ``cls`` as ``family/name``."""
    if not family or not name:
        raise ValueError("register() needs a non-empty family and name")

    def decorator(cls: T) -> T:
        entries = _REGISTRY.setdefault(family, {})
        existing = entries.get(name)
        same = existing is not None and (
            existing is cls
            or (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
        )
        if existing is not None and not same:
            raise RegistryCollisionError(
                f"{family}/{name} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}; "
                f"pick another name for {cls.__module__}.{cls.__qualname__}"
            )
        entries[name] = cls
        cls.registry_family = family  # type: ignore[attr-defined]
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def load_all() -> None:
    """Import every module that registers something (idempotent)."""
    for module in REGISTERING_MODULES:
        importlib.import_module(module)


def families() -> list[str]:
    load_all()
    return sorted(_REGISTRY)


def names(family: str, pattern: str = "*") -> list[str]:
    """Registered names of ``family`` matching a glob ``pattern``."""
    load_all()
    if family not in _REGISTRY:
        raise UnknownNameError(
            f"unknown family {family!r}; known families: {', '.join(sorted(_REGISTRY)) or '(none)'}"
        )
    return sorted(n for n in _REGISTRY[family] if fnmatch.fnmatch(n, pattern))


def get(family: str, name: str) -> type:
    """The class registered as ``family/name``; raises UnknownNameError listing known names."""
    known = names(family)
    try:
        return _REGISTRY[family][name]
    except KeyError:
        raise UnknownNameError(
            f"unknown {family} {name!r}; known {family} names: {', '.join(known)}"
        ) from None
