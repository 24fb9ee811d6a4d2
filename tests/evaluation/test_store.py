"""The SQLite evaluation store: round trip, refusal of foreign files, several writers."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sqlite3

import pytest

from nas_gym.evaluation.store import APPLICATION_ID, EvaluationStore, StoreError


def _header_pragma(path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def test_round_trip_and_reopen(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    store = EvaluationStore(path)
    assert store.get("seed", "k3-relu-max", "ev") is None
    store.put("seed", "k3-relu-max", "ev", {"accuracy": 0.5, "status": "ok"})
    store.put("seed", "k3-relu-max", "other-evaluator", {"accuracy": 0.7, "status": "ok"})
    store.close()
    again = EvaluationStore(path)
    assert again.get("seed", "k3-relu-max", "ev") == {"accuracy": 0.5, "status": "ok"}
    assert again.get("seed", "k3-relu-max", "other-evaluator")["accuracy"] == 0.7
    assert len(again) == 2 and again.integrity_check() == "ok"
    again.close()
    assert _header_pragma(path, "application_id") == APPLICATION_ID


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"this is a history file, not a database\n", "not an SQLite file"),
        (b"SQLite format 3\x00" + b"\xff" * 200, "not a readable nas-gym evaluation store"),
    ],
)
def test_foreign_files_are_refused_and_left_untouched(tmp_path, content: bytes, match: str) -> None:
    path = tmp_path / "evaluations.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=match):
        EvaluationStore(path)
    assert path.read_bytes() == content


def test_other_sqlite_database_is_refused_and_left_untouched(tmp_path) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a nas-gym evaluation store \(tables: \['users'\]\)"):
        EvaluationStore(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("pragma", "match"),
    [
        ("user_version=7", r"empty SQLite database of another application \(user_version 7"),
        ("application_id=1234", r"SQLite file of another application \(application_id 0x000004d2"),
    ],
)
def test_empty_database_of_another_application_is_refused_and_left_untouched(
    tmp_path, pragma: str, match: str
) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA {pragma}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    assert before  # the header alone makes it non-empty
    with pytest.raises(StoreError, match=match + r".*it was left untouched"):
        EvaluationStore(path)
    assert path.read_bytes() == before


def test_database_with_only_a_view_is_refused_and_left_untouched(tmp_path) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIEW answer AS SELECT 42")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a nas-gym evaluation store \(schema: \['view answer'\]\)"):
        EvaluationStore(path)
    assert path.read_bytes() == before


def test_empty_database_is_adopted(tmp_path) -> None:
    """A store whose creation stopped after the WAL pragma: no tables, header values 0."""
    path = tmp_path / "s.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    assert path.stat().st_size > 0
    store = EvaluationStore(path)
    store.put("seed", "k3-relu-max", "ev", {"accuracy": 0.5})
    assert store.get("seed", "k3-relu-max", "ev") == {"accuracy": 0.5}
    store.close()
    assert _header_pragma(path, "application_id") == APPLICATION_ID


def test_store_created_before_the_application_id_is_accepted(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    EvaluationStore(path).put("seed", "a", "ev", {"accuracy": 0.25})
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id=0")
    conn.commit()
    conn.close()
    assert EvaluationStore(path).get("seed", "a", "ev") == {"accuracy": 0.25}


def test_folder_is_refused(tmp_path) -> None:
    with pytest.raises(StoreError, match="expected an evaluation store file, got the folder"):
        EvaluationStore(tmp_path)


def test_pickled_copy_opens_its_own_connection(tmp_path) -> None:
    store = EvaluationStore(tmp_path / "s.sqlite")
    store.put("nb201", "a", "ev", {"accuracy": 0.1})
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get("nb201", "a", "ev") == {"accuracy": 0.1}


def _writer(path: str, worker: int, count: int) -> None:
    store = EvaluationStore(path)
    for i in range(count):
        store.put("seed", f"arch-{worker}-{i}", "ev", {"accuracy": i / count, "worker": worker})


def test_two_processes_writing_one_store_lose_nothing(tmp_path) -> None:
    path = str(tmp_path / "shared.sqlite")
    EvaluationStore(path).close()
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = EvaluationStore(path)
    assert len(store) == 300
    assert store.get("seed", "arch-1-149", "ev")["worker"] == 1
    assert store.integrity_check() == "ok"
