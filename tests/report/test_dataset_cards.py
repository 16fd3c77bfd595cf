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
