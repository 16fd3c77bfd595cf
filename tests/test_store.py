import json
import os
import tomllib
import warnings

import pytest

from bench.store import (
    Cell,
    Record,
    RunStore,
    append_jsonl,
    latest_records,
    read_jsonl,
    record_invocation,
    stable_hash,
)


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
    with pytest.warns(UserWarning, match="unreadable line"):
        recs = store.records()
    assert [r.cell_key for r in recs] == ["k1"]


def test_append_after_a_torn_line_sets_it_aside(tmp_path):
    """The next append never glues its line to a torn one: the tail goes to <name>.torn."""
    store = RunStore(tmp_path)
    store.append(make_record("k1"))
    with open(store.path, "ab") as fh:
        fh.write(b'{"run_id": "r", "tas')
    with pytest.warns(UserWarning, match="torn last line"):
        store.append(make_record("k2"))
    assert [r.cell_key for r in store.records()] == ["k1", "k2"]  # no warning: file is clean
    assert (tmp_path / "records.jsonl.torn").read_bytes() == b'{"run_id": "r", "tas\n'


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


def test_jsonl_helpers_round_trip_and_skip_foreign_lines(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"a": 1, "x": float("inf")})
    append_jsonl(path, {"b": [1.5, float("nan")]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_jsonl(path) == [{"a": 1, "x": None}, {"b": [1.5, None]}]
    with path.open("a") as fh:
        fh.write("[1, 2]\n\n")  # valid JSON but not an object, then a blank line
    with pytest.warns(UserWarning, match=r"rows.jsonl:3: unreadable line"):
        assert len(read_jsonl(path)) == 2


def test_record_invocation_appends_each_new_invocation_once(tmp_path):
    cells = [Cell("t", {"m": "a"}, seed, "quick", {"lr": 1}) for seed in (0, 1)]
    run_dir = tmp_path / "run"
    record_invocation(run_dir, {"suite": "quick", "tasks": None}, cells, "cpu", "off")
    record_invocation(run_dir, {"suite": "quick", "tasks": None}, cells, "cpu", "off")  # resume
    doc = tomllib.loads((run_dir / "config.toml").read_text())
    (entry,) = doc["invocation"]
    assert entry["suite"] == "quick" and "tasks" not in entry  # None is left out
    assert entry["device"] == "cpu" and entry["amp"] == "off"
    assert [c["key"] for c in entry["cells"]] == [c.key for c in cells]
    record_invocation(run_dir, {"suite": "quick"}, cells[:1], "cpu", "bf16")
    assert len(tomllib.loads((run_dir / "config.toml").read_text())["invocation"]) == 2
    assert not (run_dir / "config.toml.tmp").exists()
