"""Benchmark tasks, one module each, registered under the family "task"."""
