from bench.report.model import ReportData, TaskSection
from bench.report.render_latex import escape, render_latex
from bench.report.render_markdown import render_markdown
from bench.report.tables import build_table, fmt_entry
from bench.store import Record
from bench.tasks.base import get_task


def rec(calibrator, seed, ece, accuracy):
    return Record(
        run_id="r",
        task="calibration",
        method={"classifier": "cnn", "calibrator": calibrator},
        config={},
        seed=seed,
        scale="quick",
        metrics={"ece": ece, "accuracy": accuracy},
        cell_key=f"{calibrator}{seed}",
    )


def table():
    records = [rec("none", s, 0.10 + 0.01 * s, 0.9) for s in range(4)]
    records += [rec("temperature", s, 0.02 + 0.003 * s, 0.9) for s in range(4)]
    records += [
        rec("isotonic", s, 0.10 + 0.012 * s + (0.01 if s % 2 else -0.01), 0.95) for s in range(4)
    ]
    return build_table(get_task("calibration"), records)


def test_best_follows_metric_direction_and_paired_test_marks_significance():
    t = table()
    rows = {r.method["calibrator"]: r for r in t.rows}
    assert rows["temperature"].entries["ece"].best  # lower is better
    assert not rows["none"].entries["ece"].best
    assert rows["isotonic"].entries["accuracy"].best  # higher is better
    assert rows["none"].is_baseline and not rows["temperature"].is_baseline
    assert rows["temperature"].entries["ece"].marks == "‡"  # consistently lower on every seed
    assert not rows["isotonic"].entries["ece"].marks  # noise around the baseline
    assert fmt_entry("ece", rows["temperature"].entries["ece"]).startswith("2.45 ± ")


def test_renderers_show_units_direction_and_marks():
    t = table()
    section = TaskSection(name="calibration", table=t, timing=[], seeds=[0, 1, 2, 3])
    data = ReportData(run_id="r_1", env={}, sections=[section], n_ok=12, n_failed=0)
    md = render_markdown(data)
    assert "ece (%) ↓" in md and "accuracy (%) ↑" in md and "**2.45 ± " in md and "†" in md
    tex = render_latex(data)
    assert "\\toprule" in tex and "\\textbf{2.45 $\\pm$" in tex and "$^\\dagger$" in tex
    assert "r\\_1" in tex and escape("50% & $x_1$") == "50\\% \\& \\$x\\_1\\$"


def test_best_is_ranked_within_each_baseline_group():
    records = [rec("none", s, 0.05, 0.9) for s in range(2)]
    records += [rec("temperature", s, 0.04, 0.9) for s in range(2)]
    for r in [rec("none", s, 0.20, 0.8) for s in range(2)] + [
        rec("temperature", s, 0.10, 0.8) for s in range(2)
    ]:
        r.method = {"classifier": "mlp", "calibrator": r.method["calibrator"]}
        r.cell_key += "mlp"
        records.append(r)
    t = build_table(get_task("calibration"), records)
    best = {
        (r.method["classifier"], r.method["calibrator"]) for r in t.rows if r.entries["ece"].best
    }
    assert best == {("cnn", "temperature"), ("mlp", "temperature")}


def test_column_p_values_are_holm_adjusted_and_rows_state_n():
    from bench.report.stats import holm

    t = table()
    entries = [r.entries["ece"] for r in t.rows]
    assert [e.p_holm for e in entries] == holm([e.pvalue for e in entries])
    rows = {r.method["calibrator"]: r for r in t.rows}
    raw, adjusted = (
        rows["temperature"].entries["ece"].pvalue,
        rows["temperature"].entries["ece"].p_holm,
    )
    assert adjusted == min(1.0, 2 * raw) or adjusted > raw  # two tests in the column
    section = TaskSection(name="calibration", table=t, timing=[], seeds=[0, 1, 2, 3])
    md = render_markdown(ReportData(run_id="r", env={}, sections=[section], n_ok=12, n_failed=0))
    assert "| method | n |" in md and "| classifier=cnn, calibrator=temperature | 4 |" in md
    assert "Holm" in md and "Student-t" in md


def test_deterministic_cells_show_no_interval_and_no_test():
    records = [rec("none", s, 0.10, 0.9) for s in range(3)]
    records += [rec("temperature", s, 0.08, 0.9) for s in range(3)]
    t = build_table(get_task("calibration"), records)
    rows = {r.method["calibrator"]: r for r in t.rows}
    entry = rows["temperature"].entries["ece"]
    assert entry.summary.deterministic and not entry.marks
    assert fmt_entry("ece", entry) == "8.00 (det.)"


def test_a_timing_row_with_mfu_above_100_percent_is_invalid_and_prints_no_number():
    from bench.report.tables import timing_rows
    from bench.store import Record

    def rec(seed, mfu):
        return Record(
            run_id="r",
            task="t",
            method={"m": "a"},
            config={},
            seed=seed,
            scale="quick",
            metrics={},
            timing={"mfu": mfu, "train_samples_per_s": 100.0},
        )

    ((label, values),) = timing_rows([rec(0, 0.4), rec(1, 1.86)], ("mfu", "train_samples_per_s"))
    assert "invalid: MFU 186% > 100%" in label and values == {}
    ((label, values),) = timing_rows([rec(0, 0.4)], ("mfu", "train_samples_per_s"))
    assert values == {"mfu": 0.4, "train_samples_per_s": 100.0}


def test_latex_labels_are_keys_not_escaped_text():
    """A label is not typeset: ``\\label{tab:digits\\_metric}`` stops pdflatex with "Extra
    \\endcsname", so every character other than letters, digits and ':' becomes '-'."""
    from bench.report.render_latex import label

    t = table()
    section = TaskSection(name="digits_metric", table=t, timing=[], seeds=[0, 1, 2, 3])
    tex = render_latex(ReportData(run_id="r", env={}, sections=[section], n_ok=1, n_failed=0))
    assert "\\label{tab:digits-metric}" in tex and "\\label{tab:digits\\_" not in tex
    assert label("tab:a b/é_1") == "tab:a-b---1"


def test_tables_tex_compiles_with_pdflatex(tmp_path):
    """The LaTeX output compiles: a document that inputs it (booktabs, textcomp, graphicx) runs
    through pdflatex without an error. Skipped where no TeX is installed."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-recommended)")
    t = table()
    sections = [
        TaskSection(name=name, table=t, timing=[], seeds=[0, 1, 2, 3])
        for name in ("calibration", "digits_metric")
    ]
    data = ReportData(run_id="run_1", env={}, sections=sections, n_ok=12, n_failed=0)
    (tmp_path / "tables.tex").write_text(render_latex(data))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}"
        "\\usepackage{booktabs,textcomp,graphicx}\\begin{document}\\input{tables}\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith("!")]
    assert done.returncode == 0 and not errors, "\n".join(errors) or done.stdout[-2000:]
