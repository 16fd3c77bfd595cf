"""speechbench harness: everything that is not a method (CLI, registry, timing, store, reports)."""

__version__ = "0.1.0"


def load_records(run_dir):
    """A run folder's records as a tidy pandas DataFrame (``bench.export.load_records``)."""
    from bench.export import load_records as load

    return load(run_dir)
