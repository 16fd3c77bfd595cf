import json
import os

import pytest

from bench.store import Cell, Record, RunStore, latest_records, stable_hash


def make_record(key: str, status: str = "ok", **metrics) -> Record:
    return Record(
        run_id="r",
        task="t",
        method={"m": "a"},
        config={},
        seed=0,
        scale="quick",
        metrics=metrics,
        status=status,
        cell_key=key,
    )


def test_append_and_read_back(tmp_path):
    store = RunStore(tmp_path)
    store.append(make_record("k1", ece=0.1))
    store.append(make_record("k2", ece=0.2))
    recs = store.records()
    assert [r.cell_key for r in recs] == ["k1", "k2"]
    assert recs[1].metrics == {"ece": 0.2}
    assert all(json.loads(line)["schema"] == 1 for line in store.path.read_text().splitlines())


def test_nan_is_stored_as_null(tmp_path):
    store = RunStore(tmp_path)
    store.append(make_record("k", auroc=float("nan")))
    assert '"auroc": null' in store.path.read_text()
    assert store.records()[0].metrics["auroc"] is None


def test_torn_last_line_is_skipped_and_earlier_lines_survive(tmp_path):
    store = RunStore(tmp_path)
    store.append(make_record("k1", ece=0.1))
    line = make_record("k2").to_json()
    with open(store.path, "ab") as fh:  # simulate a crash halfway through a write
        fh.write(line[: len(line) // 2].encode())
    with pytest.warns(UserWarning, match="unreadable record"):
        recs = store.records()
    assert [r.cell_key for r in recs] == ["k1"]


def test_resume_skips_ok_and_retries_failed(tmp_path):
    store = RunStore(tmp_path)
    store.append(make_record("ok_cell"))
    store.append(make_record("bad_cell", status="failed"))
    assert store.completed_keys() == {"ok_cell"}
    store.append(make_record("bad_cell"))  # a later retry succeeds
    assert store.completed_keys() == {"ok_cell", "bad_cell"}
    assert len(latest_records(tmp_path)) == 2


def test_append_is_one_write_call(tmp_path, monkeypatch):
    """Atomicity: each record goes out in a single os.write on an O_APPEND descriptor."""
    calls = []
    real_write, real_open = os.write, os.open

    def spy_open(path, flags, *a):
        calls.append(("open", flags & os.O_APPEND))
        return real_open(path, flags, *a)

    def spy_write(fd, data):
        calls.append(("write", len(data)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    RunStore(tmp_path).append(make_record("k"))
    assert [c[0] for c in calls] == ["open", "write"]
    assert calls[0][1] == os.O_APPEND


def test_cell_key_depends_on_everything_that_matters():
    base = Cell("t", {"m": "a"}, 0, "quick", {"lr": 1})
    assert base.key == Cell("t", {"m": "a"}, 0, "quick", {"lr": 1}).key
    for other in (
        Cell("t", {"m": "b"}, 0, "quick", {"lr": 1}),
        Cell("t", {"m": "a"}, 1, "quick", {"lr": 1}),
        Cell("t", {"m": "a"}, 0, "default", {"lr": 1}),
        Cell("t", {"m": "a"}, 0, "quick", {"lr": 2}),
    ):
        assert other.key != base.key


def test_stable_hash_ignores_dict_order():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
