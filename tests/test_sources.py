"""Task versions are hashes of the source their results depend on."""

import sys

from bench import sources
from bench.tasks.base import get_task


def test_version_follows_the_source_and_its_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "layerpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("from layerpkg.model import X\n")
    (pkg / "model.py").write_text("X = 1\n")
    (pkg / "unrelated.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sources, "VERSIONED_LAYERS", ("layerpkg",))
    monkeypatch.setattr(sources, "_SOURCE_HASHES", {})
    first = sources.source_hash({"layerpkg.task"})
    (pkg / "unrelated.py").write_text("Y = 2\n")
    sources._SOURCE_HASHES.clear()
    assert sources.source_hash({"layerpkg.task"}) == first  # not imported: not hashed
    (pkg / "model.py").write_text("X = 2\n")
    sources._SOURCE_HASHES.clear()
    assert sources.source_hash({"layerpkg.task"}) != first  # an import changed
    sys.modules.pop("layerpkg", None)


def test_each_task_has_a_version_of_its_own():
    versions = {name: get_task(name).version for name in ("calibration", "speaker", "asr")}
    assert len(set(versions.values())) == 3
    assert all(len(v) == 12 for v in versions.values())
