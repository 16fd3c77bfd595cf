"""Equal tuning budgets: a random search per method on validation, then seeds at the best point.

Musgrave et al. (2020) showed that metric-learning gains shrink once every method gets the
same tuning budget; HEAR chooses hyper-parameters on validation only. A task that declares
a ``TuningSpec`` gets, for every trained row of its grid (axis ``hp`` = ``default``):

1. trial cells ``hp=trial1..trial{n-1}`` at seed 0, each at a random point of the method's
   search space (the task's shared parameters, e.g. the learning rate, plus the method's
   own ``search_space`` class attribute, e.g. a margin); the default row's seed 0 is trial
   0, so a method gets ``n`` points, its paper default among them;
2. after they finish (``second_stage``), cells ``hp=tuned`` at every seed of the default row,
   at the point with the best validation score (``spec.select``, never a test metric).
   A tuned cell whose computation has already run (``already_ran``: the chosen trial is
   the tuned row's seed 0; a default win is the default row at every seed) is not run
   again: its record is a copy of that cell's, marked ``env.reused_from``.

Trials are records like any other (their config holds the point); the report shows the
``default`` and ``tuned`` rows side by side and lists the trials in a table of their own.
Points are drawn from a generator seeded by the task and the row, so the same command
draws the same points on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from bench import registry
from bench.store import Cell, Record, stable_hash

__all__ = [
    "COLUMN",
    "DEFAULT",
    "TUNED",
    "Param",
    "TuningSpec",
    "is_trial",
    "already_ran",
    "second_stage",
    "trial_cells",
]

COLUMN = "hp"  # the grid column that says which hyper-parameters a row ran with
DEFAULT, TUNED, TRIAL = "default", "tuned", "trial"
MAX_TRIALS = 32


def trial_value(k: int) -> str:
    return f"{TRIAL}{k}"


HP_VALUES = ("-", DEFAULT, TUNED, *(trial_value(k) for k in range(1, MAX_TRIALS)))


def is_trial(method: dict[str, str]) -> bool:
    """True for a tuning trial's row (hp=trial<k>): a record, not a row of the tables."""
    return method.get(COLUMN, "").startswith(TRIAL)


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter: uniform on [low, high], or log-uniform when ``log``."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"search range of {self.name}: need 0 < low < high, got {self}")

    @classmethod
    def of(cls, spec: tuple) -> Param:
        """From a method's ``search_space`` entry ``(name, low, high, "linear" | "log")``."""
        name, low, high, scale = spec
        if scale not in ("linear", "log"):
            raise ValueError(f"search_space entry {spec}: scale must be 'linear' or 'log'")
        return cls(name, float(low), float(high), scale == "log")

    def draw(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class TuningSpec:
    """How a task tunes its rows (see the module docstring).

    ``shared`` are config keys searched for every method (e.g. ``lr``); ``family`` names the
    grid column whose registered method declares its own ``search_space`` (a tuple of
    ``Param``), drawn into the config key ``params_key`` as that method's parameters.
    ``select`` is the validation metric that picks the point (``higher_is_better``)."""

    select: str
    higher_is_better: bool
    trials: dict[str, int]  # per scale: points per method, the default point included
    shared: tuple[Param, ...] = ()
    family: str = ""
    params_key: str = "method_params"
    tunable: Callable[[dict[str, str]], bool] = field(default=lambda method: True)
    # the task's own values of a method's parameters where they differ from its signature's
    base_params: Callable[[dict[str, str]], dict] = field(default=lambda method: {})
    # config overrides of the trial cells only: what a trial, chosen on validation, need not
    # compute (enhance: its test set's PESQ); the tuned cells run without them
    trial_config: dict = field(default_factory=dict)

    def space(self, method: dict[str, str]) -> tuple[tuple[Param, ...], tuple[Param, ...]]:
        """(shared config parameters, the method's own parameters) searched for ``method``."""
        own: tuple[Param, ...] = ()
        name = method.get(self.family, "-") if self.family else "-"
        if name != "-":
            declared = registry.declared(self.family, name, "search_space", ())
            own = tuple(Param.of(entry) for entry in declared)
        return self.shared, own

    def points(self, task: str, method: dict[str, str], n: int) -> list[dict]:
        """The ``n - 1`` random points of ``method`` (trial 1..n-1) as config overrides."""
        shared, own = self.space(method)
        label = {k: v for k, v in method.items() if k != COLUMN}
        rng = np.random.default_rng(int(stable_hash({"task": task, "row": label}, 8), 16))
        out = []
        for _ in range(1, n):
            point: dict = {p.name: _round(p.draw(rng)) for p in shared}
            if own:
                point[self.params_key] = {p.name: _round(p.draw(rng)) for p in own}
            out.append(point)
        return out


def _round(x: float) -> float:
    """Four significant digits: readable configs, the same key on every machine."""
    return float(f"{x:.4g}")


def trial_cells(task, cells: Iterable[Cell]) -> list[Cell]:
    """The trial cells for the default rows among ``cells`` (seed 0 only)."""
    spec: TuningSpec | None = task.tuning
    if spec is None:
        return []
    out: list[Cell] = []
    for cell in cells:
        if not _tunable(spec, cell) or cell.seed != 0:
            continue
        n = spec.trials.get(cell.scale, 0)
        if n > MAX_TRIALS:
            raise ValueError(f"{task.name}: at most {MAX_TRIALS} tuning trials, got {n}")
        for k, point in enumerate(spec.points(task.name, cell.method, n), start=1):
            out.append(
                replace(
                    cell,
                    method={**cell.method, COLUMN: trial_value(k)},
                    config=_with_point(cell.config, {**spec.trial_config, **point}),
                )
            )
    return out


def _tunable(spec: TuningSpec, cell: Cell) -> bool:
    return cell.method.get(COLUMN) == DEFAULT and spec.tunable(cell.method)


def _with_point(config: dict, point: dict) -> dict:
    """``config`` with a point's overrides; method parameters merge into the existing ones."""
    out = dict(config)
    for key, value in point.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def _point_of(config: dict, spec: TuningSpec, method) -> dict:
    """The searched values a cell with ``config`` ran with: its config's, else the task's
    (``base_params``), else the method's signature default."""
    shared, own = spec.space(method)
    point: dict = {p.name: config.get(p.name) for p in shared}
    if own:
        params = {
            **registry.default_params(spec.family, method[spec.family]),
            **spec.base_params(method),
            **config.get(spec.params_key, {}),
        }
        point[spec.params_key] = {p.name: params.get(p.name) for p in own}
    return point


@dataclass
class Choice:
    """What the search picked for one row: the trials (valid score, point) and the winner."""

    method: dict[str, str]
    trials: list[tuple[str, float, dict]]  # (hp value, validation score, point)
    best: int  # index into trials

    @property
    def chosen(self) -> tuple[str, float, dict]:
        return self.trials[self.best]


def choices(task, records: list[Record]) -> list[Choice]:
    """Per tuned row, its trials and the chosen one, from a run's records (ok ones only)."""
    spec: TuningSpec | None = task.tuning
    if spec is None:
        return []
    by_row: dict[tuple, list[tuple[str, float, dict]]] = {}
    for rec in records:
        hp = rec.method.get(COLUMN, "")
        if rec.task != task.name or rec.status != "ok" or spec.select not in rec.metrics:
            continue
        if not (is_trial(rec.method) or (hp == DEFAULT and rec.seed == 0)):
            continue
        if not spec.tunable(rec.method):  # a row the task does not tune: no search to show
            continue
        row = tuple((k, v) for k, v in rec.method.items() if k != COLUMN)
        score = rec.metrics[spec.select]
        if score is None or not math.isfinite(score):
            continue
        point = _point_of(rec.config, spec, rec.method)
        by_row.setdefault(row, []).append((hp, float(score), point))
    out = []
    for row, trials in by_row.items():
        trials.sort(key=lambda t: (t[0] != DEFAULT, len(t[0]), t[0]))  # default, trial1, ...
        sign = 1 if spec.higher_is_better else -1
        best = max(range(len(trials)), key=lambda i: (sign * trials[i][1], -i))
        out.append(Choice(dict(row), trials, best))
    return out


def tuned_count(cells: list[Cell], get_task) -> int:
    """How many ``hp=tuned`` cells ``second_stage`` will add to ``cells`` once their trials
    have run (one per seed of every tunable default row at a scale that searches)."""
    n = 0
    for cell in cells:
        spec: TuningSpec | None = get_task(cell.task).tuning
        if spec is not None and _tunable(spec, cell):
            n += spec.trials.get(cell.scale, 0) >= 2
    return n


def second_stage(cells: list[Cell], records: list[Record], get_task) -> list[Cell]:
    """The ``hp=tuned`` cells of ``cells``' default rows, at the points chosen from the
    trials in ``records`` (``get_task(name)``: the task objects). A row none of whose
    trials finished gets no tuned cells."""
    out: list[Cell] = []
    for name in dict.fromkeys(c.task for c in cells):
        task = get_task(name)
        spec: TuningSpec | None = task.tuning
        if spec is None:
            continue
        picked = {
            tuple(sorted(c.method.items())): c
            for c in choices(task, [r for r in records if r.task == name])
        }
        for cell in cells:
            if cell.task != name or not _tunable(spec, cell):
                continue
            if spec.trials.get(cell.scale, 0) < 2:  # no search at this scale: no tuned rows
                continue
            row = tuple(sorted((k, v) for k, v in cell.method.items() if k != COLUMN))
            choice = picked.get(row)
            if choice is None:
                continue
            hp, _, point = choice.chosen
            config = _with_point(cell.config, point) if hp != DEFAULT else dict(cell.config)
            out.append(replace(cell, method={**cell.method, COLUMN: TUNED}, config=config))
    return out


def _computation(cell: Cell) -> str:
    """The key of ``cell`` without its ``hp`` label: no task reads ``hp``, and a cell is
    seeded by its seed alone (bench.cells), so equal keys mean equal computations."""
    return replace(cell, method={k: v for k, v in cell.method.items() if k != COLUMN}).key


def already_ran(tuned: list[Cell], records: list[Record]) -> dict[str, Record]:
    """Per tuned cell key, the stored ok record (a trial or a default-row cell) that ran
    the same computation: the same row, config, seed and scale."""
    ran: dict[str, Record] = {}
    for rec in records:
        if rec.status == "ok" and (is_trial(rec.method) or rec.method.get(COLUMN) == DEFAULT):
            ran[_computation(Cell(rec.task, rec.method, rec.seed, rec.scale, rec.config))] = rec
    out = {}
    for cell in tuned:
        source = ran.get(_computation(cell))
        if source is not None:
            out[cell.key] = source
    return out
