"""Method and task registries.

Methods and tasks register under a family and a name with ``@register(family, name)``;
``build(family, name, params=..., **context)`` is the one way to construct a method. A
second registration of the same name is an error (never "last definition wins"), and an
unknown name raises ``UnknownNameError`` listing the known names of that family, so a
typo on the command line is self-explaining.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, type]] = {}
_DISPLAY: dict[str, dict[str, str]] = {}  # family -> name -> display name, where declared

# Packages whose modules hold registrations; load_all() imports every module in them, so a
# new method or task file registers itself without being added to any list.
REGISTERING_PACKAGES: tuple[str, ...] = ("methods", "bench.models", "bench.tasks")


class UnknownNameError(LookupError):
    """A family or name that is not registered; the message lists what is."""


class RegistryCollisionError(ValueError):
    """Two different objects registered under the same family and name."""


def register(family: str, name: str, display: str | None = None) -> Callable[[T], T]:
    """Class decorator: register ``cls`` as ``family/name``; ``display`` is the name a table
    or paper shows for it (e.g. "Temperature scaling"), default the registered name."""
    if not family or not name:
        raise ValueError("register() needs a non-empty family and name")
    if display is not None and not display.strip():
        raise ValueError(f"register({family!r}, {name!r}): display must be non-empty text or None")

    def decorator(cls: T) -> T:
        if not isinstance(cls, type):
            raise TypeError(f"register({family!r}, {name!r}) decorates a class, not {cls!r}")
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
        if display is not None:
            _DISPLAY.setdefault(family, {})[name] = display
        return cls

    return decorator


_LOADED = False


def load_all() -> None:
    """Import every module of the registering packages, then the installed plugins
    (``speechbench.plugins`` entry points, bench/plugins.py); idempotent."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True  # first: a module that lists names while it is imported must not recurse
    try:
        for package_name in REGISTERING_PACKAGES:
            package = importlib.import_module(package_name)
            for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
                importlib.import_module(info.name)
        from bench.plugins import load_plugins  # installed packages' methods and tasks

        load_plugins()
    except BaseException:
        _LOADED = False
        raise


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
    """The class registered as ``family/name``; raises UnknownNameError listing known names.

    Only ``build`` (and introspection such as listing) should need the class itself."""
    known = names(family)
    try:
        return _REGISTRY[family][name]
    except KeyError:
        raise UnknownNameError(
            f"unknown {family} {name!r}; known {family} names: {', '.join(known)}"
        ) from None


def display_name(family: str, name: str) -> str:
    """The display name ``family/name`` declared at registration, else ``name`` itself (also
    for a name or family that is not registered, e.g. a sweep axis value)."""
    load_all()
    return _DISPLAY.get(family, {}).get(name, name)


def has_display_name(family: str, name: str) -> bool:
    load_all()
    return name in _DISPLAY.get(family, {})


def check(family: str, name: str) -> None:
    """Raise UnknownNameError (listing the known names) unless ``family/name`` exists."""
    get(family, name)


def declared(family: str, name: str, attribute: str, default: Any = None) -> Any:
    """A class attribute ``family/name`` declares (e.g. ``search_space``), else ``default``."""
    return getattr(get(family, name), attribute, default)


def default_params(family: str, name: str) -> dict[str, Any]:
    """The keyword defaults of ``family/name``'s constructor (its paper defaults)."""
    return {
        key: p.default
        for key, p in inspect.signature(get(family, name)).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def module_of(family: str, name: str) -> str:
    """The module that defines ``family/name`` (for source hashes)."""
    return get(family, name).__module__


class ContextError(TypeError):
    """A build() call whose context does not fit what the method declares."""


def requirements(cls: type) -> tuple[str, ...]:
    """The context names ``cls`` declares in ``requires`` (what it needs from the task)."""
    return tuple(getattr(cls, "requires", ()))


def family_context(family: str) -> set[str]:
    """Every context name some method of ``family`` declares: what a task may pass."""
    return {need for name in names(family) for need in requirements(_REGISTRY[family][name])}


def build(family: str, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
    """Construct ``family/name``: the one way to build a registered method.

    ``context`` is what the task knows (e.g. ``num_classes``, ``embedding_dim``,
    ``generator``, ``total_steps``); each class lists in ``requires`` the names it needs, and
    gets exactly those. A task passes its family's context to every method of the family, so
    a name no method of the family declares is an error (a typo), and so is a declared name
    the task did not pass. ``params`` are the method's own hyper-parameters (keyword
    arguments of its constructor, paper defaults otherwise); unknown ones are an error.
    """
    cls = get(family, name)
    known = family_context(family)
    unknown = sorted(set(context) - known)
    if unknown:
        raise ContextError(
            f"build({family!r}, {name!r}): unknown context {', '.join(unknown)}; "
            f"methods of {family} declare: {', '.join(sorted(known)) or '(nothing)'}"
        )
    needed = requirements(cls)
    missing = [k for k in needed if k not in context]
    if missing:
        raise ContextError(
            f"{family}/{name} needs {', '.join(missing)} from the task; pass it to build()"
        )
    params = dict(params or {})
    clash = sorted(set(params) & set(needed))
    if clash:
        raise ContextError(f"{family}/{name}: {', '.join(clash)} is context, not a param")
    signature = inspect.signature(cls)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    bad = sorted(k for k in params if k not in signature.parameters and not takes_any)
    if bad:
        accepted = [p for p in signature.parameters if p not in needed]
        raise ContextError(
            f"{family}/{name} has no parameter {', '.join(bad)}; "
            f"its parameters: {', '.join(accepted) or '(none)'}"
        )
    return cls(**params, **{k: context[k] for k in needed})
