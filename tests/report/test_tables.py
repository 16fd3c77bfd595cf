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


def test_ties_with_the_best_are_bold_by_direction():
    """Hand-made ECE (lower is better) over 4 seeds: ``temperature`` is best; ``vector`` is
    within seed noise of it (paired t-test p ≥ 0.05: tied, bold); ``none`` is higher on every
    seed by a constant shift (p = 0: not tied); ``histogram`` prints as the best's value at
    its precision (tied by rounding) though it is consistently higher by 1e-6."""
    from bench.report.tables import TIE_RULE

    best = [0.020, 0.030, 0.025, 0.035]
    noise = [0.032, 0.019, 0.036, 0.024]  # about the same mean, shuffled across seeds
    ece = {
        "none": [v + 0.05 for v in best],
        "temperature": best,
        "vector": noise,
        "histogram": [v + 1e-6 for v in best],
    }
    records = [rec(k, s, v, 0.9 + 0.01 * s) for k, vals in ece.items() for s, v in enumerate(vals)]
    t = build_table(get_task("calibration"), records)
    rows = {r.method["calibrator"]: r.entries["ece"] for r in t.rows}
    assert rows["temperature"].best and not rows["temperature"].tied
    assert rows["vector"].tied and rows["vector"].bold and not rows["vector"].best
    assert rows["histogram"].tied
    assert not rows["none"].bold
    # accuracy is identical in every row: every row prints as the best's value, all bold
    assert all(r.entries["accuracy"].bold for r in t.rows)
    section = TaskSection(name="calibration", table=t, timing=[], seeds=[0, 1, 2, 3])
    md = render_markdown(ReportData(run_id="r", env={}, sections=[section], n_ok=1, n_failed=0))
    line = next(x for x in md.splitlines() if "calibrator=vector" in x)
    assert line.split(" | ")[3].startswith("**2.77 ± ")  # ece column, bold
    assert "uncorrected" in TIE_RULE and "tied with it" in md


def test_higher_is_better_ties():
    """Accuracy (higher is better): the top row is best, a noisy equal-mean row is tied,
    a row lower on every seed is not."""
    top = [0.95, 0.96, 0.94, 0.97]
    acc = {"none": top, "temperature": [0.96, 0.94, 0.97, 0.95], "vector": [v - 0.1 for v in top]}
    records = [rec(k, s, 0.1, v) for k, vals in acc.items() for s, v in enumerate(vals)]
    rows = {
        r.method["calibrator"]: r.entries["accuracy"]
        for r in build_table(get_task("calibration"), records).rows
    }
    assert rows["none"].best or rows["temperature"].best
    assert rows["none"].bold and rows["temperature"].bold and not rows["vector"].bold


def test_rows_show_display_names_in_latex_and_html(tmp_path):
    from bench.report.render_html import render_html
    from bench.report.tables import display_label

    assert display_label({"classifier": "cnn", "calibrator": "temperature"}) == (
        "classifier=cnn · Temperature scaling"
    )
    assert display_label({"loss": "-", "miner": "-"}) == "loss=- · miner=-"
    assert display_label({"quantizer": "-", "loss": "ntxent"}) == "NT-Xent"
    section = TaskSection(name="calibration", table=table(), timing=[], seeds=[0, 1, 2, 3])
    data = ReportData(run_id="r", env={}, sections=[section], n_ok=1, n_failed=0)
    assert "classifier=cnn $\\cdot$ Temperature scaling &" in render_latex(data)
    page = render_html(data, tmp_path)
    assert "classifier=cnn · Temperature scaling</td>" in page
    assert '<div class="scroll"><table class="results">' in page
    assert "td.num{white-space:nowrap}" in page and 'class="num best"' in page


class _StubTask:
    """A task of many rows whose display names hold LaTeX-special characters."""

    name = "stub_long"
    title = "A long table: 50% of #1 & more_of it"
    table_metrics = ["ece", "accuracy"]
    headline = "ece"
    baseline = {"stub_display": "m0"}

    def baseline_of(self, method):
        return None if method["stub_display"] == "m0" else {"stub_display": "m0"}

    def item_forms(self, config):
        return {}


def _long_table(monkeypatch, n_rows=30):
    """``n_rows`` stub methods registered with display names, in copies of the registry that
    the test's monkeypatch restores (nothing leaks into other tests)."""
    from bench import registry

    registry.load_all()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_DISPLAY", dict(registry._DISPLAY))
    for i in range(n_rows):
        registry.register("stub_display", f"m{i}", display=f"Method_{i} & 50% #{i}")(
            type(f"Stub{i}", (), {})
        )
    records = [
        Record(
            run_id="r",
            task="stub_long",
            method={"stub_display": f"m{i}"},
            config={},
            seed=s,
            scale="quick",
            metrics={"ece": 0.1 + 0.001 * i + 0.002 * s, "accuracy": 0.9 - 0.001 * i},
            cell_key=f"m{i}-{s}",
        )
        for i in range(n_rows)
        for s in range(2)
    ]
    return build_table(_StubTask(), records)


def test_long_tables_are_split_with_continued_captions(monkeypatch):
    t = _long_table(monkeypatch, 30)
    section = TaskSection(name="stub_long", table=t, timing=[], seeds=[0, 1])
    tex = render_latex(ReportData(run_id="r", env={}, sections=[section], n_ok=1, n_failed=0))
    assert tex.count("\\begin{table}") == 2 and tex.count("(continued)}") == 1
    assert tex.count("\\label{tab:stub-long}") == 1
    assert "Method\\_3 \\& 50\\% \\#3" in tex and "50\\% of \\#1 \\& more\\_of it" in tex
    assert tex.count(" \\\\\n") == 2 * 1 + 30  # header rows of both parts + every row once


def test_tables_tex_compiles_with_pdflatex(tmp_path, monkeypatch):
    """tables.tex compiles: a document that inputs it (booktabs, textcomp, graphicx) runs
    through pdflatex with no error and no overfull box, with a table long enough to be split
    and display names holding LaTeX-special characters (_ & % #). Skipped without TeX."""
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
    sections.append(
        TaskSection(name="stub_long", table=_long_table(monkeypatch, 60), timing=[], seeds=[0, 1])
    )
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
    log = (tmp_path / "doc.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    overfull = [
        line for line in log.splitlines() if line.startswith(("Overfull", "Underfull \\vbox"))
    ]
    assert done.returncode == 0 and not errors, "\n".join(errors) or done.stdout[-2000:]
    assert not overfull, "\n".join(overfull)
    assert (tmp_path / "tables.tex").read_text().count("(continued)}") == 2  # 60 rows: 3 parts
