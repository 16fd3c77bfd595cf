"""Calibrate a user's own model outputs: ``python run_all.py calibrate --logits FILE.npz``.

The file holds ``logits`` (N, K) and ``labels`` (N,), and optionally ``split`` marking each
row "valid" or "test" (or 0 = valid, 1 = test). Without ``split``, each seed draws its own
random valid/test split of ``valid_fraction``, so the report's CIs cover split variation.
The same calibrators, metrics and report as the digits calibration task are used
(``bench.scoring``); each test row is an item, named by its row in the file (``row<i>``).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.config import build_config
from bench.context import RunContext
from bench.metrics import weighted
from bench.metrics.calibration import metrics_from_items
from bench.registry import register
from bench.scoring import score_calibrator
from bench.store import Cell
from bench.tasks.base import CellResult, Items, Task, product


@dataclass
class LogitsConfig:
    path: str = ""  # absolute path of the .npz file
    sha256: str = ""  # content hash, so a changed file is a different cell
    valid_fraction: float = 0.5  # used only when the file has no `split`
    has_split: bool = False
    n_bins: int = 15

    def validate(self) -> None:
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"--valid-fraction must be in (0, 1), got {self.valid_fraction}")


@dataclass(frozen=True)
class LogitsFile:
    logits: np.ndarray
    labels: np.ndarray
    split: np.ndarray | None  # True where the row is a test row


def load_logits_file(path: str | Path) -> LogitsFile:
    """Read and check a logits file; every problem names the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give an .npz with arrays logits and labels")
    data = _open_npz(path)
    with data:
        missing = [k for k in ("logits", "labels") if k not in data.files]
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {', '.join(missing)}; "
                f"found {', '.join(data.files) or 'none'}. "
                "Save with numpy.savez(path, logits=..., labels=..., [split=...])"
            )
        logits, labels = _array(data, path, "logits"), _array(data, path, "labels")
        split = _array(data, path, "split") if "split" in data.files else None
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(
            f"{path}: logits must be (N, K) with K >= 2 classes, got shape {logits.shape}"
        )
    if len(logits) == 0:
        raise ValueError(f"{path}: logits has no rows (N = 0); save at least one row per item")
    if not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"{path}: logits must be floating point, got {logits.dtype}")
    if not np.all(np.isfinite(logits)):
        bad = int((~np.isfinite(logits)).any(axis=1).sum())
        raise ValueError(f"{path}: logits contain NaN or inf in {bad} row(s); remove or fix them")
    if labels.ndim != 1 or len(labels) != len(logits):
        raise ValueError(
            f"{path}: labels must be (N,) with N = {len(logits)} (rows of logits), "
            f"got {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integer class ids, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(
            f"{path}: labels must lie in [0, {logits.shape[1]}) (K = logits.shape[1]); "
            f"found {labels.min()}..{labels.max()}"
        )
    is_test = None
    if split is not None:
        is_test = _parse_split(path, split, len(logits))
    return LogitsFile(logits.astype(np.float64), labels.astype(np.int64), is_test)


SAVE_HINT = (
    "save numeric arrays with numpy.savez(path, logits=..., labels=...): "
    "logits float (N, K), labels int (N,)"
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # what every .npz (a zip archive) starts with


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """``path`` opened as an .npz archive, never through pickle. Anything else is refused
    with the file's name and how to write it; numpy's own message is not passed on, since
    it suggests allow_pickle, which would run code from the file."""
    with path.open("rb") as fh:
        head = fh.read(6)
    if not head.startswith(_ZIP_MAGIC):
        if not head:
            what = "it is empty"
        elif head.startswith(b"\x93NUMPY"):
            what = "it is a one-array .npy file, as numpy.save writes"
        else:
            what = "it is not a zip archive"
        raise ValueError(f"{path}: not an .npz file ({what}); {SAVE_HINT}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        why = str(exc) if isinstance(exc, zipfile.BadZipFile) else "damaged"
        raise ValueError(f"{path}: not a readable .npz file ({why}); {SAVE_HINT}") from None
    return data  # a zip archive is always read as an NpzFile


def _array(data: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    """Array ``key`` of an open .npz; an object array or a member that is not an array is
    refused with the file, the array and the fix."""
    try:
        value = data[key]
    except ValueError as exc:  # an object array: reading it needs pickle, which is refused
        if "pickle" in str(exc) or "object" in str(exc).lower():
            raise ValueError(
                f"{path}: array {key!r} holds Python objects (dtype=object), which are not "
                f"read; {SAVE_HINT}, converted first (logits.astype(float), labels.astype(int))"
            ) from None
        raise ValueError(f"{path}: array {key!r} cannot be read; {SAVE_HINT}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: array {key!r} cannot be read ({exc}); {SAVE_HINT}") from None
    if not isinstance(value, np.ndarray):  # a zip member that is not an .npy array
        raise ValueError(f"{path}: {key!r} in the archive is not a numpy array; {SAVE_HINT}")
    return value


def _parse_split(path: Path, split: np.ndarray, n: int) -> np.ndarray:
    if split.shape != (n,):
        raise ValueError(f"{path}: split must be (N,) = ({n},), got {split.shape}")
    if split.dtype.kind in "US":
        values = set(np.unique(split).tolist())
        if not values <= {"valid", "test"}:
            raise ValueError(
                f"{path}: split values must be 'valid' or 'test', found {sorted(values)}"
            )
        is_test = split == "test"
    else:
        values = set(np.unique(split).tolist())
        if not values <= {0, 1}:
            raise ValueError(
                f"{path}: split values must be 0 (valid) or 1 (test), found {sorted(values)}"
            )
        is_test = split.astype(bool)
    if is_test.all() or not is_test.any():
        raise ValueError(f"{path}: split must mark at least one valid and one test row")
    return is_test


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@register("task", "calibrate_logits")
class UserLogitsTask(Task):
    """Post-hoc calibrators on a user's own logits (not part of any suite)."""

    title = "Calibration of user-supplied logits (fitted on valid, scored on test)"
    in_suites = False
    families = ("calibrator",)
    # no suite scales: the rows of the one "user" scale, run on the file's cells
    rows = {"user": product(calibrator=("none", "temperature", "vector", "histogram", "isotonic"))}
    baseline = {"calibrator": "none"}
    table_metrics = ("accuracy", "nll", "brier", "ece", "mce", "adaptive_ece", "auroc", "aurc")

    def config(self, scale: str) -> dict[str, object]:
        raise ValueError(
            "calibrate_logits needs a file: use `python run_all.py calibrate --logits F`"
        )

    def cells_for_file(
        self,
        path: Path,
        seeds: int,
        valid_fraction: float,
        selected: dict[str, list[str]] | None = None,
    ) -> list[Cell]:
        """The cells of ``path``: the selected rows x ``seeds`` seeds (one seed when the file
        fixes the split)."""
        data = load_logits_file(path)
        config = build_config(
            LogitsConfig,
            path=str(path.resolve()),
            sha256=file_sha256(path),
            valid_fraction=valid_fraction,
            has_split=data.split is not None,
        )
        seed_list = [0] if data.split is not None else list(range(seeds))
        return [
            Cell(task=self.name, method=method, seed=seed, scale="user", config=asdict(config))
            for method in self.grid(selected, "user")
            for seed in seed_list
        ]

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(LogitsConfig, cell.config)
        if file_sha256(config.path) != config.sha256:
            raise ValueError(f"{config.path} changed since this run started; use a new --out")
        data = load_logits_file(config.path)
        if data.split is not None:
            is_test = data.split
        else:  # a random valid/test split per seed
            n_valid = max(1, int(round(config.valid_fraction * len(data.labels))))
            is_test = np.ones(len(data.labels), dtype=bool)
            is_test[ctx.rng().permutation(len(data.labels))[:n_valid]] = False
        metrics, curves, timing, items = score_calibrator(
            cell.method["calibrator"],
            (data.logits[~is_test], data.labels[~is_test]),
            (data.logits[is_test], data.labels[is_test]),
            np.array([f"row{i}" for i in np.flatnonzero(is_test)]),
            n_bins=config.n_bins,
        )
        return CellResult(metrics, curves, {**timing}, {"test": items})

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.classifier_forms("test", build_config(LogitsConfig, config).n_bins)

    def metrics_from_items(self, items: Items, config: dict[str, object]) -> dict[str, float]:
        return metrics_from_items(items["test"], n_bins=build_config(LogitsConfig, config).n_bins)

    def data_identity(self, config: dict[str, object]) -> dict[str, object]:
        return {"sha256": config["sha256"]}  # the data are the file
