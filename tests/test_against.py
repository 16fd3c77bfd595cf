"""``compare --against REF``: judging paired timings, the interleaving, the worktree, the
CLI, and a planted 4x slower training step caught end to end (in a temporary clone)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import against
from bench.ab_judge import paired_p
from bench.against import NEW, OLD, AgainstError, Sample, Target, judge, schedule
from bench.cli import main
from bench.report.compare import (
    FASTER,
    NEWLY_FAILING,
    NOT_SIGNIFICANT,
    ONLY_NEW,
    SAME,
    SLOWER,
)

ROOT = Path(__file__).resolve().parent.parent
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def samples(wall, cpu, load, rounds=6, noise=0.03, seed=0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    jitter = np.exp(rng.normal(0.0, noise, size=(rounds, 2)))
    return [Sample(wall * a, cpu * b, load) for a, b in jitter]


# ---------------------------------------------------------------------------- judging


def test_equal_timings_are_not_flagged():
    j = judge(samples(0.01, 0.01, 0.5, seed=1), samples(0.01, 0.01, 0.5, seed=2), cores=2)
    assert j.verdict == SAME and j.clock == "wall" and 0.9 < j.ratio < 1.1 and j.rounds == 6


def test_four_times_slower_is_flagged_and_four_times_faster_too():
    j = judge(samples(0.04, 0.04, 0.5, seed=1), samples(0.01, 0.01, 0.5, seed=2), cores=2)
    assert j.verdict == SLOWER and j.ratio == pytest.approx(0.25, rel=0.1) and j.p < 0.001
    assert j.new_s == pytest.approx(0.04, rel=0.1) and j.old_s == pytest.approx(0.01, rel=0.1)
    j = judge(samples(0.01, 0.01, 0.5, seed=1), samples(0.04, 0.04, 0.5, seed=2), cores=2)
    assert j.verdict == FASTER and j.ratio == pytest.approx(4.0, rel=0.1)


def test_cpu_time_is_the_judge_when_the_machine_is_loaded():
    # other work competes for the cores: NEW's wall time is 4x, its CPU time the same
    new, old = samples(0.04, 0.01, 3.0, seed=1), samples(0.01, 0.01, 3.0, seed=2)
    j = judge(new, old, cores=2)
    assert j.clock == "cpu" and j.load == pytest.approx(3.0) and j.verdict == SAME
    # not loaded: wall time is the truth (NEW may wait, sleep or block)
    new, old = samples(0.04, 0.01, 1.5, seed=1), samples(0.01, 0.01, 1.5, seed=2)
    j = judge(new, old, cores=2)
    assert j.clock == "wall" and j.verdict == SLOWER
    # on cuda the process's CPU time says nothing of the device's work: always wall
    new, old = samples(0.04, 0.01, 3.0, seed=1), samples(0.01, 0.01, 3.0, seed=2)
    assert judge(new, old, cores=2, cpu_clock=False).clock == "wall"


def test_a_change_past_the_tolerance_needs_significance_and_one_round_never_gates():
    # old / new = 0.2, 1.5, 0.3, 1.6: 0.62 on average, but the rounds disagree
    noisy = [Sample(0.01 / r, 0.01, 0.1) for r in (0.2, 1.5, 0.3, 1.6)]
    j = judge(noisy, [Sample(0.01, 0.01, 0.1)] * 4, cores=2)
    assert j.ratio == pytest.approx(0.62, abs=0.01) and j.p > 0.05
    assert j.verdict == NOT_SIGNIFICANT
    j = judge(samples(0.04, 0.04, 0.1, rounds=1), samples(0.01, 0.01, 0.1, rounds=1), cores=2)
    assert j.p is None and j.verdict == NOT_SIGNIFICANT
    j = judge(samples(0.011, 0.011, 0.1), samples(0.01, 0.01, 0.1), cores=2)  # within 25%
    assert j.verdict == SAME
    assert paired_p(np.full(3, -np.log(4))) == 0.0  # no spread, a clear shift
    assert paired_p(np.zeros(3)) == 1.0
    with pytest.raises(ValueError, match="one NEW and one OLD sample per round"):
        judge(samples(1, 1, 0, rounds=2), samples(1, 1, 0, rounds=3), cores=2)


def test_rounds_alternate_which_side_goes_first():
    assert schedule(4) == [(NEW, OLD), (OLD, NEW), (NEW, OLD), (OLD, NEW)]
    firsts = [order[0] for order in schedule(10)]
    assert firsts.count(NEW) == firsts.count(OLD) == 5


class FakeWorker:
    """A worker whose per-unit times are given; it logs the order of measurements."""

    def __init__(self, side, log, seconds, fail_setup=False):
        self.side, self.log, self.seconds, self.fail_setup = side, log, seconds, fail_setup
        self.pending: dict = {}

    def send(self, **msg):
        self.pending = msg

    def read(self):
        msg = self.pending
        if msg["op"] == "setup":
            return {"ok": False, "error": "boom\nmore"} if self.fail_setup else {"ok": True}
        if msg["op"] == "measure":
            self.log.append(self.side)
            t = self.seconds * (1 + 0.01 * len(self.log))
            part = {"wall_s": 10 * t, "cpu_s": 10 * t, "units": 10}
            return {"ok": True, "parts": {"train step": part, "cell": part}, "load": 0.2}
        return {"ok": True}

    def ask(self, **msg):
        self.send(**msg)
        return self.read()


def test_measure_interleaves_the_sides_and_makes_a_row_per_part():
    log: list[str] = []
    sides = {NEW: FakeWorker(NEW, log, 0.04), OLD: FakeWorker(OLD, log, 0.01)}
    target = Target("digits_metric", "loss=triplet", {"kind": "cell"})
    outcome = against.measure([target], sides, rounds=4)  # type: ignore[arg-type]
    assert log == [NEW, OLD, OLD, NEW, NEW, OLD, OLD, NEW]
    rows = outcome.comparison.rows
    assert [r.metric for r in rows] == ["train step wall time", "cell wall time"]
    assert all(r.verdict == SLOWER and r.seeds == 4 for r in rows)
    assert "paired A/B over 4 rounds, judged by wall time (load 0.2 ≤" in rows[0].note
    assert "per step: new 4" in rows[0].note and outcome.comparison.regressions() == rows
    assert len(outcome.raw) == 8 and outcome.raw[1]["side"] == OLD


def test_a_side_that_cannot_run_the_target():
    target = Target("speed: op", "tiny", {"kind": "case"})
    log: list[str] = []
    broken_new = {NEW: FakeWorker(NEW, log, 1, fail_setup=True), OLD: FakeWorker(OLD, log, 1)}
    (row,) = against.measure([target], broken_new, rounds=2).comparison.rows  # type: ignore[arg-type]
    assert row.verdict == NEWLY_FAILING and row.note == "boom" and log == []
    missing_old = {NEW: FakeWorker(NEW, log, 1), OLD: FakeWorker(OLD, log, 1, fail_setup=True)}
    result = against.measure([target], missing_old, rounds=2).comparison  # type: ignore[arg-type]
    assert result.rows[0].verdict == ONLY_NEW and result.unchecked() == result.rows


# ---------------------------------------------------------------------- what is timed


def test_cells_are_named_by_task_or_by_label_and_checked():
    from bench import registry

    registry.load_all()
    (first,) = against.cell_targets("digits_metric", "quick", {"steps": 40})
    assert first.task == "digits_metric" and first.spec["method"]["loss"] != "-"  # trained
    assert first.spec["set"] == {"steps": 40} and first.spec["seed"] == 0
    two = against.cell_targets(
        "digits_metric[loss=triplet,miner=semihard],digits_metric", "quick", {}
    )
    assert two[0].spec["method"] == {"loss": "triplet", "miner": "semihard"}
    with pytest.raises(AgainstError, match="no such row at scale quick; rows: digits_metric"):
        against.cell_targets("digits_metric[loss=nope,miner=-]", "quick", {})
    with pytest.raises(AgainstError, match="--set stepz: not in digits_metric's config"):
        against.cell_targets("digits_metric", "quick", {"stepz": 1})
    assert against.split_items("a, b[x=1,y=2],c") == ["a", "b[x=1,y=2]", "c"]
    assert against.parse_set(["steps=40", "name=cnn"]) == {"steps": 40, "name": "cnn"}
    with pytest.raises(AgainstError, match="not KEY=VALUE"):
        against.parse_set(["steps"])
    assert against.split_scales([]) == ("tiny", "quick")
    assert against.split_scales(["small", "default"]) == ("small", "default")
    with pytest.raises(AgainstError, match="at most one case size"):
        against.split_scales(["tiny", "small"])


def test_cli_usage_errors(capsys):
    assert main(["compare"]) == 2
    assert "compare NEW OLD" in capsys.readouterr().err
    assert main(["compare", "a", "b", "--rounds", "3"]) == 2
    assert "--rounds only apply with --against" in capsys.readouterr().err
    assert main(["compare", "a", "--against", "HEAD"]) == 2
    assert main(["compare", "--against", "HEAD"]) == 2
    assert "needs something to time" in capsys.readouterr().err
    assert main(["compare", "--against", "HEAD", "--cells", "x", "--rounds", "1"]) == 2


# ---------------------------------------------------------------------------- worktree


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "test")
    git(path, "config", "user.email", "test@example.com")


@needs_git
def test_worktree_checks_out_the_ref_and_is_removed(tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo)
    (repo / "sub" / "bench").mkdir(parents=True)
    (repo / "sub" / "bench" / "v.txt").write_text("one")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / "sub" / "bench" / "v.txt").write_text("two")
    git(repo, "commit", "-qam", "two")
    with against.worktree("HEAD~1", repo / "sub") as tree:  # the project in a subfolder
        assert (tree.root / "bench" / "v.txt").read_text() == "one"
        assert tree.sha == git(repo, "rev-parse", "HEAD~1")
        assert len(git(repo, "worktree", "list").splitlines()) == 2
    assert not tree.root.exists() and len(git(repo, "worktree", "list").splitlines()) == 1
    assert (repo / "sub" / "bench" / "v.txt").read_text() == "two"  # the checkout untouched
    with pytest.raises(AgainstError, match="unknown git ref 'nope'"):
        with against.worktree("nope", repo):
            pass
    with pytest.raises(AgainstError, match="not inside a git checkout"):
        with against.worktree("HEAD", tmp_path / "elsewhere"):
            pass


# ------------------------------------------------------- planted regression, end to end

PLANT_AT = "        with timer.step(items=0) as timed:\n            out = forward(step)\n"
PLANTED = (
    "        with timer.step(items=0) as timed:\n"
    "            for _ in range(3):  # planted: every step does its work 4 times\n"
    "                forward(step).loss.backward()\n"
    "            out = forward(step)\n"
)


def clone_working_tree(dest: Path) -> None:
    """A clone of this checkout as it is now (uncommitted changes committed in the clone),
    so the test runs the code under test, not only the last commit."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    git(dest, "config", "user.name", "test")
    git(dest, "config", "user.email", "test@example.com")
    changed = git(ROOT, "ls-files", "-m", "-o", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, changed):
        src, dst = ROOT / rel, dest / rel
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        elif dst.exists():
            dst.unlink()  # deleted in the working tree
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "--allow-empty", "-m", "the working tree under test")


def compare_against(clone: Path, ref: str, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "run_all.py", "compare", "--against", ref, "--cells"]
    cmd += ["digits_metric", "--set", "steps=40", "--rounds", "5", "--out", str(out)]
    return subprocess.run(cmd, cwd=clone, capture_output=True, text=True, timeout=600)


@needs_git
def test_planted_slower_training_step_fails_and_the_same_code_passes(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip(f"{ROOT} is not a git checkout, so there is no ref to compare against")
    clone = tmp_path / "clone"
    clone_working_tree(clone)
    training = clone / "bench" / "training.py"
    text = training.read_text()
    assert PLANT_AT in text, "the training loop changed: update PLANT_AT in this test"
    training.write_text(text.replace(PLANT_AT, PLANTED))
    git(clone, "commit", "-qam", "planted: a 4x slower training step")

    slow = compare_against(clone, "HEAD~1", tmp_path / "slow")
    assert slow.returncode == 3, slow.stdout + slow.stderr
    flagged = [line for line in slow.stdout.splitlines() if "**slower**" in line]
    assert any(line.startswith("| digits_metric |") and "train step" in line for line in flagged)
    assert "regression against HEAD~1: digits_metric" in slow.stderr
    assert (tmp_path / "slow" / "compare.md").read_text().startswith("# Comparison")

    git(clone, "checkout", "-q", "HEAD~1")  # the unmodified code, against itself
    same = compare_against(clone, "HEAD", tmp_path / "same")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "**No regression.**" in same.stdout and "train step" in same.stdout
    assert len(git(clone, "worktree", "list").splitlines()) == 1  # the worktrees are gone
