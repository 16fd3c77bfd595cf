"""speechbench harness: everything that is not a method (CLI, registry, timing, store, reports)."""

__version__ = "0.1.0"
