"""End-to-end CLI: run, resume, failed cells, bad input, calibrate --logits, report."""

import json
import tomllib

import numpy as np
import pytest

from bench.cli import main
from bench.registry import register
from bench.report import figures

FAST = [
    "--suite",
    "quick",
    "--tasks",
    "calibration",
    "--seeds",
    "2",
    "--quiet",
    "--no-figures",
    "--methods",
    "classifier=mlp,calibrator=none,calibrator=temperature",
]


def read_records(run_dir):
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_run_writes_run_folder_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST, "--out", str(out)]) == 0
    records = read_records(out)
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert {r["method"]["calibrator"] for r in records} == {"none", "temperature"}
    rec = records[0]
    assert set(rec) >= {
        "schema",
        "run_id",
        "task",
        "method",
        "config",
        "seed",
        "scale",
        "metrics",
        "curves",
        "timing",
        "env",
        "status",
        "error",
        "started",
        "seconds",
    }
    assert 0 <= rec["metrics"]["ece"] <= 1 and rec["timing"]["train_samples_per_s"] > 0
    for name in ("report.md", "report.html", "tables.tex", "config.toml", "dataset_card.md"):
        assert (out / name).stat().st_size > 0
    assert "1,797 real 8x8" in (out / "report.md").read_text()  # the card is in the report
    config = tomllib.loads((out / "config.toml").read_text())
    assert len(config["invocation"][0]["cells"]) == 4

    capsys.readouterr()
    assert main([*FAST, "--out", str(out)]) == 0  # same command: everything is skipped
    assert "0 cells run, 4 already done" in capsys.readouterr().out
    assert len(read_records(out)) == 4


def test_figures_and_self_contained_html(tmp_path):
    out = tmp_path / "run"
    args = [a for a in FAST if a != "--no-figures"]
    assert main([*args, "--seeds", "1", "--out", str(out)]) == 0
    for stem in ("calibration_reliability", "calibration_risk_coverage", "calibration_ece"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 1000
        assert (out / "figures" / f"{stem}.pdf").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and 'src="figures/' not in html
    assert "![" in (out / "report.md").read_text()


class BrokenCalibrator:
    def fit(self, logits, labels):
        raise RuntimeError("deliberately broken for the test")


@pytest.fixture
def broken_calibrator(monkeypatch):
    """``calibrator/test_broken`` for one test (other tests list the calibrators)."""
    from bench import registry

    registry.load_all()
    monkeypatch.setitem(registry._REGISTRY, "calibrator", dict(registry._REGISTRY["calibrator"]))
    register("calibrator", "test_broken")(BrokenCalibrator)


def test_failed_cell_is_recorded_and_the_sweep_goes_on(tmp_path, capsys, broken_calibrator):
    out = tmp_path / "run"
    args = [
        "--suite",
        "quick",
        "--tasks",
        "calibration",
        "--seeds",
        "1",
        "--quiet",
        "--no-figures",
        "--methods",
        "classifier=mlp,calibrator=test_broken,calibrator=none",
        "--out",
        str(out),
    ]
    assert main(args) == 1
    status = {r["method"]["calibrator"]: r for r in read_records(out)}
    assert status["none"]["status"] == "ok"
    assert status["test_broken"]["status"] == "failed"
    assert "deliberately broken" in status["test_broken"]["error"]
    err = capsys.readouterr().err
    assert "failed cells" in err and "test_broken" in err
    assert "Failed cells" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "calibrator=nope"], "known calibrator names: histogram"),
        (["--methods", "calibrator"], "is not family=name"),
        (["--tasks", "nope"], "known task names"),
        (["--methods", "nosuchfamily=x"], "unknown family"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--amp", "fp16", "--device", "cpu"], "fp16 needs a cuda"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    assert main(["--suite", "quick", "--quiet", "--out", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err


def overconfident_logits(path, n=2000, k=5, seed=0, **extra):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 2, (n, k))
    labels = np.array([rng.choice(k, p=np.exp(r) / np.exp(r).sum()) for r in true])
    np.savez(path, logits=3 * true, labels=labels, **extra)
    return path


def test_calibrate_user_logits(tmp_path):
    f = overconfident_logits(tmp_path / "model.npz")
    out = tmp_path / "cal"
    assert (
        main(
            [
                "calibrate",
                "--logits",
                str(f),
                "--seeds",
                "2",
                "--quiet",
                "--no-figures",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = {(r["method"]["calibrator"], r["seed"]): r for r in read_records(out)}
    assert len(records) == 10
    for seed in (0, 1):  # logits are 3x too sharp: temperature ~3 and lower ECE
        ts, none = records[("temperature", seed)], records[("none", seed)]
        assert ts["metrics"]["temperature"] == pytest.approx(3.0, rel=0.15)
        assert ts["metrics"]["ece"] < none["metrics"]["ece"] / 2
    assert "user-supplied logits" in (out / "report.md").read_text()


def test_calibrate_with_split_array_uses_one_seed(tmp_path):
    split = np.where(np.arange(2000) % 2 == 0, "valid", "test")
    f = overconfident_logits(tmp_path / "model.npz", split=split)
    out = tmp_path / "cal"
    assert (
        main(
            [
                "calibrate",
                "--logits",
                str(f),
                "--quiet",
                "--no-figures",
                "--out",
                str(out),
                "--methods",
                "calibrator=temperature",
            ]
        )
        == 0
    )
    records = read_records(out)  # temperature and its baseline (none), one seed each
    assert sorted((r["method"]["calibrator"], r["seed"]) for r in records) == [
        ("none", 0),
        ("temperature", 0),
    ]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"logits": np.zeros((4, 3))}, "missing array(s) labels"),
        (
            {"logits": np.zeros((4, 3)), "labels": np.zeros(5, int)},
            "labels must be (N,) with N = 4",
        ),
        ({"logits": np.full((4, 3), np.nan), "labels": np.zeros(4, int)}, "NaN or inf in 4 row(s)"),
        (
            {"logits": np.zeros((4, 3)), "labels": np.array([0, 1, 2, 3])},
            "labels must lie in [0, 3)",
        ),
        ({"logits": np.zeros(4), "labels": np.zeros(4, int)}, "logits must be (N, K)"),
        (
            {"logits": np.zeros((4, 3)), "labels": np.zeros(4, int), "split": np.array(["a"] * 4)},
            "split values must be 'valid' or 'test'",
        ),
    ],
)
def test_calibrate_bad_files(tmp_path, capsys, arrays, message):
    f = tmp_path / "bad.npz"
    np.savez(f, **arrays)
    assert main(["calibrate", "--logits", str(f), "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.npz" in err


def test_calibrate_missing_file(tmp_path, capsys):
    assert main(["calibrate", "--logits", str(tmp_path / "none.npz"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_report_subcommand_regenerates(tmp_path):
    out = tmp_path / "run"
    assert main([*FAST, "--seeds", "1", "--out", str(out)]) == 0
    (out / "report.md").unlink()
    assert main(["report", str(out), "--no-figures"]) == 0
    assert (out / "report.md").exists()


def test_report_figures_only_as_pdf_from_records_alone(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST, "--seeds", "1", "--out", str(out)]) == 0  # --no-figures: none yet
    assert not (out / "figures").exists()
    (out / "report.md").unlink()
    assert main(["report", str(out), "--figures-only", "--format", "pdf"]) == 0
    assert "3 figures" in capsys.readouterr().out
    assert sorted(p.suffix for p in (out / "figures").iterdir()) == [".pdf"] * 3
    assert not (out / "report.md").exists()  # figures only: no tables rewritten
    assert figures.FORMATS == ("pdf", "png")  # --format is passed down, not set globally
    assert main(["report", str(out), "--format", "png"]) == 0
    assert len(list((out / "figures").glob("*.png"))) == 3 and (out / "report.md").exists()


def test_report_of_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no records found" in capsys.readouterr().err


def test_list(capsys):
    assert main(["--list"]) == 0
    assert "calibrator: histogram, isotonic, none" in capsys.readouterr().out


def small_logits(path, n=200, k=5):
    rng = np.random.default_rng(0)
    np.savez(path, logits=rng.normal(0, 2, (n, k)), labels=rng.integers(0, k, n))
    return path


@pytest.mark.parametrize("command", ["run", "calibrate"])
def test_seeds_0_fails_naming_seeds_before_any_folder_exists(tmp_path, capsys, command):
    out = tmp_path / "run"
    given = ["calibrate", "--logits", str(small_logits(tmp_path / "L.npz"))]
    args = given if command == "calibrate" else ["--suite", "quick", "--tasks", "calibration"]
    assert main([*args, "--seeds", "0", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--seeds must be at least 1" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_out_that_cannot_be_a_folder_exits_2_naming_it(tmp_path, capsys, where):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    out = taken if where == "file" else taken / "run"
    assert main([*FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and len(err.strip().splitlines()) == 1
    assert taken.read_text() == "not a folder"


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--seeds must be at least 1"):
        main(["--debug", *FAST, "--seeds", "0", "--out", str(tmp_path / "run")])


def test_report_of_a_missing_folder_creates_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_speechbench_console_script_is_the_cli():
    """`speechbench ...` (installed by pip from [project.scripts]) runs bench.cli.main, the
    same as `python run_all.py ...`."""
    from importlib.metadata import entry_points

    import bench.cli

    (script,) = entry_points(group="console_scripts", name="speechbench")
    assert script.value == "bench.cli:main" and script.load() is bench.cli.main
