"""A detached git worktree of any ref in a temporary folder (for ``compare --against``)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the current checkout: the folder of bench/


class AgainstError(ValueError):
    """Bad input or an unusable checkout: one line naming the fix (exit status 2)."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=120
        )
    except FileNotFoundError:
        raise AgainstError("--against needs git, which is not installed") from None


@dataclass(frozen=True)
class Tree:
    root: Path  # the folder holding the reference's bench/
    sha: str


@contextlib.contextmanager
def worktree(ref: str, root: Path = ROOT) -> Iterator[Tree]:
    """A detached worktree of ``ref`` in a temporary folder, removed afterwards."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise AgainstError(
            f"{root} is not inside a git checkout, so there is no {ref!r} to compare against; "
            "run from a clone of the repository (git clone URL), or compare two run folders "
            "(compare NEW OLD)"
        )
    sha = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.strip()
    if not sha:
        raise AgainstError(
            f"unknown git ref {ref!r}: give a branch, tag or commit of {top.stdout.strip()} "
            "(git log --oneline lists them; git fetch a remote one first)"
        )
    below = root.resolve().relative_to(Path(top.stdout.strip()).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="speechbench-against-"))
    path = tmp / "tree"
    added = _git(root, "worktree", "add", "--detach", "--quiet", str(path), sha)
    if added.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AgainstError(f"git worktree add {ref} failed: {added.stderr.strip()}")
    try:
        yield Tree(path / below, sha)
    finally:
        removed = _git(root, "worktree", "remove", "--force", str(path))
        shutil.rmtree(tmp, ignore_errors=True)
        if removed.returncode != 0:
            _git(root, "worktree", "prune")  # forget the worktree whose folder is gone
