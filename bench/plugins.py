"""Methods and tasks from other installed packages, through the ``speechbench.plugins``
entry-point group.

A package declares, in its own ``pyproject.toml``::

    [project.entry-points."speechbench.plugins"]
    my_losses = "my_package.speechbench_plugin"

and its module registers methods or tasks with ``@bench.registry.register`` when imported
(an entry point may also name a function, which is then called with no arguments). The
registry loads every plugin after the built-in packages, so a plugin's method runs in
sweeps, ``--methods`` and reports exactly like a built-in one, and a name that collides
with a built-in one is the registry's usual collision error. A plugin that fails to load
stops the command with one line naming the entry point and its distribution.
"""

from __future__ import annotations

from importlib import metadata

GROUP = "speechbench.plugins"


class PluginError(ImportError):
    """An installed plugin failed to load (exit status 2); the message names it."""


def entry_points() -> list[metadata.EntryPoint]:
    """The installed plugins, in a stable order (by name, then value)."""
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value))


def load_plugins() -> list[str]:
    """Import (or call) every plugin; returns their entry-point names."""
    loaded = []
    for ep in entry_points():
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:
            raise PluginError(
                f"speechbench plugin {ep.name!r} ({ep.value}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {exc}; fix or uninstall that package"
            ) from exc
        loaded.append(ep.name)
    return loaded
