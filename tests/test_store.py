import json
import os
import threading
import tomllib
import warnings
from dataclasses import asdict, fields

import numpy as np
import pytest

from bench import store as store_module
from bench.store import (
    Cell,
    Record,
    RunStore,
    append_jsonl,
    latest_records,
    read_items,
    read_jsonl,
    record_invocation,
    record_problem,
    stable_hash,
    write_atomic,
    write_items,
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
    """The next append never glues its line to a torn one: the tail goes to a new
    records.jsonl.torn-<UTC time> file, and the warning names that file."""
    store = RunStore(tmp_path)
    store.append(make_record("k1"))
    store.append(make_record("k2"))
    with open(store.path, "ab") as fh:
        fh.write(b'{"run_id": "r", "tas')
    with pytest.warns(UserWarning, match="torn last line") as caught:
        store.append(make_record("k3"))
    (aside,) = tmp_path.glob("records.jsonl.torn-*")
    assert aside.read_bytes() == b'{"run_id": "r", "tas'
    assert str(aside) in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file is clean again: no warning
        assert [r.cell_key for r in store.records()] == ["k1", "k2", "k3"]


def test_each_torn_tail_gets_its_own_file(tmp_path):
    """A second crash in the same second does not overwrite the first one's bytes."""
    path = tmp_path / "rows.jsonl"
    for fragment in (b'{"a"', b'{"b"'):
        with path.open("ab") as fh:
            fh.write(fragment)
        with pytest.warns(UserWarning, match="rows.jsonl.torn-"):
            append_jsonl(path, {"ok": 1})
    asides = sorted(p.read_bytes() for p in tmp_path.glob("rows.jsonl.torn-*"))
    assert asides == [b'{"a"', b'{"b"']
    assert read_jsonl(path) == [{"ok": 1}, {"ok": 1}]


def test_unreadable_lines_anywhere_are_skipped_and_reported_by_number(tmp_path):
    store = RunStore(tmp_path)
    store.append(make_record("k1"))
    with store.path.open("ab") as fh:  # an old fragment glued to a line, and non-UTF-8 bytes
        fh.write(b'{"run_id": "r", "tas{"run_id": "r"}\n\xff\xfe\n')
    store.append(make_record("k2"))
    with pytest.warns(UserWarning, match=r"records.jsonl: 2 unreadable line\(s\)") as caught:
        recs = store.records()
    assert [r.cell_key for r in recs] == ["k1", "k2"]
    message = str(caught[0].message)
    assert "line 2: not JSON" in message and "line 3: not JSON" in message
    assert "line 1:" not in message and "line 4:" not in message


@pytest.mark.parametrize(
    "bad, why",
    [
        ([1, 2], "a JSON list, not an object"),
        ({"metrics": "oops"}, "metrics is not an object of numbers or null"),
        ({"metrics": {"ece": "0.1"}}, "metrics is not an object of numbers or null"),
        ({"seed": True}, "seed is not an integer"),
        ({"seed": 0.5}, "seed is not an integer"),
        ({"method": {"m": 1}}, "method is not an object of strings"),
        ({"warnings": "w"}, "warnings is not a list of strings"),
        ({"error": 3}, "error is not a string or null"),
        ({"task": None}, "task is not a string"),
        ({"config": []}, "config is not an object"),
    ],
)
def test_json_lines_that_are_not_records_are_reported_and_skipped(tmp_path, bad, why):
    store = RunStore(tmp_path)
    store.append(make_record("k1"))
    line = bad if isinstance(bad, list) else {**asdict(make_record("kx")), **bad}
    append_jsonl(store.path, line)
    store.append(make_record("k2"))
    with pytest.warns(UserWarning, match="unreadable line") as caught:
        assert [r.cell_key for r in latest_records(tmp_path)] == ["k1", "k2"]
    assert f"line 2: {why}" in str(caught[0].message)


def test_record_check_covers_every_field_and_allows_nulls_and_extras():
    checked = set(store_module._FIELD_CHECKS)
    assert checked == {f.name for f in fields(Record)}
    data = asdict(make_record("k", ece=None, accuracy=1))  # null: a NaN as stored
    assert record_problem({**data, "from_a_newer_writer": 1}) is None
    del data["seed"], data["task"]
    assert record_problem(data) == "missing task, seed"


def test_report_is_written_despite_a_bad_line(tmp_path):
    """`run_all.py report DIR` builds the report from the good records around a bad one."""
    from bench import registry
    from bench.report import write_report

    registry.load_all()
    store = RunStore(tmp_path)
    for seed in (0, 1):
        for calibrator, ece in (("none", 0.1), ("temperature", 0.03)):
            method = {"classifier": "cnn", "calibrator": calibrator}
            rec = Record("r", "calibration", method, {}, seed, "quick", {"ece": ece})
            rec.cell_key = stable_hash([method, seed])
            store.append(rec)
        if seed == 0:
            append_jsonl(store.path, {**asdict(make_record("x")), "metrics": "oops"})
    with pytest.warns(UserWarning, match=r"line 3: metrics is not an object"):
        paths = write_report(tmp_path, figures=False)
    report = paths["markdown"].read_text()
    assert "calibrator=temperature" in report and "calibrator=none" in report
    assert "oops" not in report


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
    with pytest.warns(UserWarning, match=r"rows.jsonl: 1 unreadable line\(s\) skipped \(line 3: a"):
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
    assert os.listdir(run_dir) == ["config.toml"]  # no temporary file left behind


def test_write_atomic_uses_a_unique_temporary_name_per_call(tmp_path, monkeypatch):
    sources = []
    real_replace = os.replace

    def spy_replace(src, dst):
        sources.append(str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    target = tmp_path / "report.md"
    write_atomic(target, "one")
    write_atomic(target, "two")
    assert len(set(sources)) == 2 and str(target) + ".tmp" not in sources
    assert target.read_text() == "two" and os.listdir(tmp_path) == ["report.md"]
    assert (target.stat().st_mode & 0o777) == 0o644  # not mkstemp's owner-only mode


def test_write_atomic_from_racing_threads_never_fails_or_leaves_temporaries(tmp_path):
    target = tmp_path / "config.toml"
    texts = [f"writer = {n}\n" * 200 for n in range(4)]
    errors = []

    def write_many(text):
        try:
            for _ in range(25):
                write_atomic(target, text)
        except Exception as exc:  # a shared temporary name fails here (renamed away)
            errors.append(exc)

    threads = [threading.Thread(target=write_many, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and target.read_text() in texts
    assert os.listdir(tmp_path) == ["config.toml"]


def test_temporary_files_are_removed_on_error(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "report.md", "text")
    with pytest.raises(OSError, match="disk full"):
        write_items(tmp_path, "k", {"test": {"item_id": ["a", "b"], "correct": [1, 0]}})
    assert os.listdir(tmp_path) == ["items"] and os.listdir(tmp_path / "items") == []
    monkeypatch.undo()
    write_items(tmp_path, "k", {"test": {"item_id": ["a", "b"], "correct": [1, 0]}})
    assert read_items(tmp_path, "k")["test"]["correct"].tolist() == [1, 0]


def test_cli_resume_after_a_torn_records_file_keeps_every_cell(tmp_path):
    """Reproduction of issue 17: a crash tears the last record; the resume re-runs that cell
    and appends it on a fresh line, so every cell is readable afterwards."""
    from bench.cli import main

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (200, 5))
    np.savez(tmp_path / "L.npz", logits=3 * logits, labels=logits.argmax(1))
    out = tmp_path / "R"
    args = ["calibrate", "--logits", str(tmp_path / "L.npz"), "--seeds", "2"]
    args += ["--out", str(out), "--no-figures", "--quiet"]
    assert main(args) == 0
    expected = {r.cell_key for r in latest_records(out)}
    records = out / "records.jsonl"
    os.truncate(records, records.stat().st_size - 40)
    with pytest.warns(UserWarning) as caught:
        assert main(args) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert "line 10: not JSON" in messages and "torn last line" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert {r.cell_key for r in latest_records(out)} == expected
    assert len(expected) == 10 and len(list(out.glob("records.jsonl.torn-*"))) == 1
