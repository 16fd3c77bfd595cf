"""``compare --against REF``: a speed gate that holds on a noisy machine.

REF (any git ref) is checked out into a temporary worktree, and the same speed cases or
task cells run in two long-lived worker processes (``bench/ab_probe.py``): NEW is the
current checkout, OLD the worktree. The two are timed in alternation in one time window,
round after round (NEW OLD, OLD NEW, ...; the order flips each round so that a load
that rises or falls during the run weighs on both sides alike), and speed is judged from
these paired timings only: a change of the machine between two separate runs cannot
pass for a change of the code. Setup (building the workload, data, warm-up) is untimed.

Each measurement gives wall seconds, the CPU seconds of the worker (all its threads) and
the load average. A row is judged by CPU time when the mean load average during its
measurements was above the machine's cores (other work was competing for them: wall time
then measures the queue as much as the code), else by wall time; the row says which and
the load. Note that the load includes the measuring worker itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ab_judge import NEW, OLD, Judgement, Sample, judge, schedule
from bench.report.compare import (
    NEWLY_FAILING,
    NOT_COMPARABLE,
    ONLY_NEW,
    REGRESSION,
    Comparison,
    Row,
    method_label,
)
from bench.worktree import ROOT, AgainstError, worktree

PROBE = Path(__file__).resolve().with_name("ab_probe.py")
DEFAULT_ROUNDS, DEFAULT_THREADS, DEFAULT_MIN_TIME = 7, 1, 0.2  # the CLI's defaults
UNITS = {"train step": "step", "cell": "cell", "ours call": "call"}


# ---- what is timed -----------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One thing timed on both sides: a speed case's "ours" at one size, or a task cell."""

    task: str  # the Row's task and method
    method: str
    spec: dict[str, Any]  # the worker's setup command

    @property
    def key(self) -> str:
        return f"{self.task} [{self.method}]"


def case_targets(spec: str, size: str, min_time: float) -> list[Target]:
    """The speed cases ``spec`` names (substrings, as ``speed --cases``) at ``size``."""
    from bench.speed import command, load_cases

    targets = []
    for case in command.select(load_cases(), spec):
        if size not in case.sizes:
            raise AgainstError(f"case {case.name!r} has no size {size!r}: {', '.join(case.sizes)}")
        run = {"kind": "case", "name": case.name, "size": size, "min_time": min_time}
        targets.append(Target(f"speed: {case.name}", size, run))
    return targets


def split_items(spec: str) -> list[str]:
    """``a,b[x=1,y=2],c`` -> ["a", "b[x=1,y=2]", "c"] (commas inside brackets kept)."""
    return [s.strip() for s in re.findall(r"[^,\[]+(?:\[[^\]]*\])?", spec) if s.strip()]


def cell_targets(spec: str, scale: str, overrides: dict[str, Any]) -> list[Target]:
    """Cells named ``TASK`` (its first trained row) or ``TASK[family=name,...]`` (a row as
    in a cell label), seed 0, at ``scale`` with config ``overrides`` (e.g. fewer steps)."""
    from bench.tasks.base import get_task

    targets = []
    for item in split_items(spec):
        name, _, inner = item.partition("[")
        task = get_task(name.strip())
        rows = task.rows_at(scale)
        if inner:
            method = dict(p.split("=", 1) for p in inner.rstrip("]").split(",") if "=" in p)
            method = {k.strip(): v.strip() for k, v in method.items()}
            if method not in rows:
                known = "; ".join(
                    f"{name}[{','.join(f'{k}={v}' for k, v in r.items())}]" for r in rows
                )
                raise AgainstError(f"--cells {item}: no such row at scale {scale}; rows: {known}")
        else:
            trained = [r for r in rows if not task.is_baseline(r)]
            method = (trained or rows)[0]
        unknown = sorted(set(overrides) - set(task.config(scale)))
        if unknown:
            raise AgainstError(
                f"--set {', '.join(unknown)}: not in {task.name}'s config; "
                f"its keys: {', '.join(task.config(scale))}"
            )
        run = {"kind": "cell", "task": task.name, "method": method, "scale": scale, "seed": 0}
        targets.append(Target(task.name, method_label(method), {**run, "set": overrides}))
    return targets


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set steps=40`` items -> {key: value}; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AgainstError(f"--set {item!r} is not KEY=VALUE (e.g. --set steps=40)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _seconds(s: float) -> str:
    return f"{s:.3g} s" if s >= 1 else f"{1e3 * s:.3g} ms"


def speed_row(target: Target, part: str, j: Judgement, cores: int, shape: str = "") -> Row:
    """The comparison row of one part (train step, cell, ours call) of a target."""
    sign = ">" if j.load > cores else "≤"
    unit = UNITS.get(part, part)
    note = (
        f"paired A/B over {j.rounds} rounds, judged by {j.clock} time "
        f"(load {j.load:.1f} {sign} {cores} cores); per {unit}: "
        f"new {_seconds(j.new_s)}, old {_seconds(j.old_s)}"
    )
    metric = f"{part} {j.clock} time"
    return Row(
        target.task,
        f"{target.method}: {shape}" if shape else target.method,
        metric,
        j.verdict,
        delta=j.ratio,
        p=j.p,
        seeds=j.rounds,
        note=note,
    )


# ---- the two workers ---------------------------------------------------------------------
class Worker:
    """One side's ``ab_probe.py`` process: JSON commands in, one JSON answer each out."""

    def __init__(self, side: str, root: Path, log: Path, threads: int | None, device: str):
        self.side, self.log_path = side, log
        cmd = [sys.executable, str(PROBE), "--root", str(root), "--device", device]
        cmd += ["--threads", str(threads)] if threads else []
        self.log = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )

    def read(self, timeout: float = 3600.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.log.flush()
            tail = "\n  ".join(self.log_path.read_text(errors="replace").splitlines()[-8:])
            why = "gave no answer in time" if not ready else f"stopped ({self.proc.poll()})"
            raise AgainstError(f"the {self.side} worker {why}; its log {self.log_path}:\n  {tail}")
        return json.loads(line)

    def send(self, **msg: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def ask(self, **msg: Any) -> dict[str, Any]:
        self.send(**msg)
        return self.read()

    def close(self) -> None:
        """Ask the worker to quit (it may be told already); kill it if it does not."""
        with contextlib.suppress(Exception):
            self.send(op="quit")
        with contextlib.suppress(Exception):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def workers(
    roots: dict[str, Path], out: Path, threads: int | None, device: str
) -> Iterator[dict[str, Worker]]:
    """Both sides' workers, started together; each must import its own side's bench."""
    started = {s: Worker(s, r, out / f"worker-{s}.log", threads, device) for s, r in roots.items()}
    try:
        for side, worker in started.items():
            hello = worker.read()
            if not hello.get("ok"):
                raise AgainstError(
                    f"the {side} side ({roots[side]}) did not start: {hello['error']}"
                )
        yield started
    finally:
        for worker in started.values():  # both told first: they exit together
            with contextlib.suppress(Exception):
                worker.send(op="quit")
        for worker in started.values():
            worker.close()


# ---- the comparison ----------------------------------------------------------------------
@dataclass
class Outcome:
    comparison: Comparison
    raw: list[dict[str, Any]] = field(default_factory=list)  # every measurement, in order


def measure(
    targets: list[Target],
    sides: dict[str, Worker],
    rounds: int,
    *,
    alpha: float = 0.05,
    tolerance: float = 0.25,
    cpu_clock: bool = True,
    say: Callable[[str], None] = lambda s: None,
) -> Outcome:
    """Time every target on both sides in interleaved rounds; one row per timed part."""
    cores = os.cpu_count() or 1  # the load average counts the whole machine's runnable tasks
    outcome = Outcome(Comparison(gate_speed=True))
    rows = outcome.comparison.rows
    for n, target in enumerate(targets, 1):
        say(f"[{n}/{len(targets)}] {target.key}: setting up both sides")
        for worker in sides.values():  # both sides set up at once (untimed)
            worker.send(op="setup", key=target.key, **target.spec)
        ready = {side: worker.read() for side, worker in sides.items()}
        failed = {side: a["error"] for side, a in ready.items() if not a.get("ok")}
        samples: dict[str, list[dict[str, Any]]] = {NEW: [], OLD: []}
        for r, order in enumerate(schedule(rounds) if not failed else []):
            for side in order:
                answer = sides[side].ask(op="measure", key=target.key)
                if not answer.get("ok"):
                    failed[side] = answer["error"]
                    break
                samples[side].append(answer)
                outcome.raw.append({"target": target.key, "round": r, "side": side, **answer})
            if failed:
                break
            say(f"[{n}/{len(targets)}] {target.key}: round {r + 1}/{rounds}")
        for worker in sides.values():
            worker.ask(op="teardown", key=target.key)
        if failed:
            rows.append(_failed_row(target, failed))
            continue
        for part in samples[NEW][0]["parts"]:
            if part not in samples[OLD][0]["parts"]:
                continue
            pairs = {side: [_sample(a, part) for a in samples[side]] for side in (NEW, OLD)}
            j = judge(pairs[NEW], pairs[OLD], cores, alpha, tolerance, cpu_clock)
            rows.append(speed_row(target, part, j, cores, ready[NEW].get("shape", "")))
    return outcome


def _sample(answer: dict[str, Any], part: str) -> Sample:
    t = answer["parts"][part]
    units = max(1, int(t["units"]))
    return Sample(t["wall_s"] / units, t["cpu_s"] / units, float(answer["load"]))


def _failed_row(target: Target, failed: dict[str, str]) -> Row:
    """NEW fails where OLD runs: newly failing (gates); OLD fails: not checked."""
    first = {side: err.splitlines()[0] if err else "" for side, err in failed.items()}
    if NEW in failed and OLD not in failed:
        return Row(target.task, target.method, "-", NEWLY_FAILING, note=first[NEW])
    if OLD in failed and NEW not in failed:
        return Row(target.task, target.method, "-", ONLY_NEW, note=f"not in REF: {first[OLD]}")
    note = f"fails on both sides: {first[NEW]}"
    return Row(target.task, target.method, "-", NOT_COMPARABLE, note=note)


# ---- the command -------------------------------------------------------------------------
def split_scales(values: list[str]) -> tuple[str, str]:
    """``--scale`` values -> (speed-case size, task scale); each value names one of the two."""
    from bench.speed.case import SIZES
    from bench.tasks.base import SCALES

    sizes = [v for v in values if v in SIZES]
    scales = [v for v in values if v in SCALES]
    unknown = [v for v in values if v not in SIZES and v not in SCALES]
    if unknown or len(sizes) > 1 or len(scales) > 1:
        raise AgainstError(
            f"--scale {' '.join(values)}: give at most one case size ({', '.join(SIZES)}) "
            f"and one task scale ({', '.join(SCALES)})"
        )
    return (sizes or ["tiny"])[0], (scales or ["quick"])[0]


def command(args: Any) -> int:
    """``compare --against REF``: print and write the table; 1 on a slower row, else 0."""
    from bench.report import compare

    if not args.cases and not args.cells:
        raise AgainstError(
            "--against needs something to time: --cases NAME,... (speed cases, as in "
            "`run_all.py speed --list`) and/or --cells TASK[,TASK[family=name,...]]"
        )
    rounds = DEFAULT_ROUNDS if args.rounds is None else args.rounds
    threads = DEFAULT_THREADS if args.threads is None else args.threads
    min_time = DEFAULT_MIN_TIME if args.min_time is None else args.min_time
    if rounds < 2:
        raise AgainstError(f"--rounds {rounds}: give at least 2 (a paired test needs 2)")
    if threads < 1 or min_time <= 0:
        raise AgainstError("--threads and --min-time must be positive")
    size, scale = split_scales(args.scale or [])
    targets = []
    if args.cases:
        targets += case_targets(args.cases, size, min_time)
    if args.cells:
        targets += cell_targets(args.cells, scale, parse_set(args.set or []))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", args.against)
    out = Path(args.out or Path("reports") / f"against-{slug}")
    out.mkdir(parents=True, exist_ok=True)
    device = args.device or "cpu"

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with worktree(args.against) as tree:
        say(f"new: {ROOT} (the working tree); old: {args.against} = {tree.sha[:10]}")
        with workers({NEW: ROOT, OLD: tree.root}, out, threads, device) as sides:
            outcome = measure(
                targets,
                sides,
                rounds,
                alpha=args.alpha,
                tolerance=args.speed_tolerance,
                cpu_clock=device == "cpu",
                say=say,
            )
    result = outcome.comparison
    text = compare.render(result, f"{ROOT} (working tree)", f"{args.against} ({tree.sha[:10]})")
    text += (
        f"\nSpeed from paired A/B timings in one window ({rounds} rounds, order NEW OLD / "
        f"OLD NEW alternating); change = old time / new time (< 1: new is slower); a row is "
        f"judged by CPU time when the load average was above the cores. {threads} torch "
        f"thread(s), device {device}; raw timings in {out / 'against.jsonl'}.\n"
    )
    print(text, end="")
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.json").write_text(json.dumps([r.__dict__ for r in result.rows], indent=1))
    with (out / "against.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(m) + "\n" for m in outcome.raw)
    print(f"comparison: {out / 'compare.md'}")
    unchecked = result.unchecked()
    if unchecked and not args.allow_unchecked:
        names = "; ".join(f"{r.task}[{r.method}] ({r.note})" for r in unchecked)
        print(f"error: not checked: {names} (--allow-unchecked to pass anyway)", file=sys.stderr)
        return REGRESSION
    slower = result.regressions()
    if slower:
        names = "; ".join(
            f"{r.task} [{r.method}] {r.metric} " + (f"×{r.delta:.2f}" if r.delta else r.verdict)
            for r in slower
        )
        print(f"regression against {args.against}: {names}", file=sys.stderr)
        return REGRESSION
    return 0
