"""dataset_card.md: written once per run from each task's card, read back per task."""

from __future__ import annotations

from bench.report.dataset_cards import card_section, write_dataset_cards
from bench.store import Cell


class _Task:
    def __init__(self, card):
        self.card = card

    def dataset_card(self, config):
        return None if self.card is None else f"{self.card} at {config['size']}"


def test_cards_written_per_task_and_read_back(tmp_path):
    cells = [
        Cell("alpha", {"m": "a"}, 0, "quick", {"size": 1}),
        Cell("alpha", {"m": "b"}, 1, "quick", {"size": 1}),
        Cell("beta", {"m": "a"}, 0, "quick", {"size": 2}),
        Cell("gamma", {"m": "a"}, 0, "quick", {"size": 3}),
    ]
    tasks = {"alpha": _Task("digits"), "beta": _Task("speech"), "gamma": _Task(None)}
    path = write_dataset_cards(tmp_path, cells, task_of=tasks.__getitem__)
    text = path.read_text()
    assert text.startswith("# Dataset card") and text.count("## ") == 2
    assert card_section(tmp_path, "alpha") == "digits at 1"
    assert card_section(tmp_path, "beta") == "speech at 2"
    assert card_section(tmp_path, "gamma") is None


def test_no_card_no_file(tmp_path):
    cells = [Cell("gamma", {"m": "a"}, 0, "quick", {"size": 3})]
    assert write_dataset_cards(tmp_path, cells, task_of=lambda name: _Task(None)) is None
    assert not (tmp_path / "dataset_card.md").exists()
    assert card_section(tmp_path, "gamma") is None


def test_the_card_is_rendered_as_html_not_raw_markdown(tmp_path):
    """report.html shows the card's Markdown as HTML: bold, paragraphs, and pipe tables as
    tables (each in its own scroll box); HTML inside the card is escaped, never run."""
    from bench.report.model import ReportData, TaskSection
    from bench.report.render_html import markdown_html, render_html
    from bench.report.tables import Table

    card = "**Corpus** <script>x</script>\n\n| split | n |\n|---|---|\n| test | 48 |\n"
    out = markdown_html(card)
    assert "<strong>Corpus</strong>" in out and "&lt;script&gt;" in out and "<script>" not in out
    assert '<div class="scroll"><table>' in out and "<td>test</td>" in out and "|" not in out
    section = TaskSection(
        name="t", table=Table("t", "T", [], []), timing=[], dataset_card=card, seeds=[0]
    )
    page = render_html(ReportData("r", {}, [section], 1, 0), tmp_path)
    assert '<div class="card"><p><strong>Corpus</strong>' in page and "<pre>" not in page
