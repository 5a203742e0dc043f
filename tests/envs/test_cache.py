"""Meta-World task lists are built once, then read from the disk cache."""

from __future__ import annotations

import pickle

import pytest

from metarl.envs import metaworld_tasks


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METARL_CACHE", str(tmp_path))
    metaworld_tasks.load_tasks.cache_clear()
    yield tmp_path
    metaworld_tasks.load_tasks.cache_clear()  # later tests go back to the shared cache


def test_built_once_then_read_from_disk(fresh_cache, monkeypatch) -> None:
    built = metaworld_tasks.load_tasks("ML1/reach-v3")
    files = list(fresh_cache.rglob("*.pkl"))
    assert len(files) == 1 and "ML1_reach-v3-seed0" in files[0].name
    assert not list(fresh_cache.rglob("*.tmp"))  # atomic write left no temp file
    metaworld_tasks.load_tasks.cache_clear()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("benchmark rebuilt although cached")

    monkeypatch.setattr(metaworld_tasks, "build_benchmark", no_rebuild)
    again = metaworld_tasks.load_tasks("ML1/reach-v3")
    assert [t.data for t in again["test"]] == [t.data for t in built["test"]]
    assert len(again["train"]) == len(again["test"]) == 50


def test_corrupt_cache_file_is_rebuilt(fresh_cache) -> None:
    metaworld_tasks.load_tasks("ML1/reach-v3")
    (path,) = fresh_cache.rglob("*.pkl")
    path.write_bytes(b"\x80\x05truncated")
    metaworld_tasks.load_tasks.cache_clear()
    tasks = metaworld_tasks.load_tasks("ML1/reach-v3")
    assert len(tasks["train"]) == 50
    with open(path, "rb") as f:
        assert len(pickle.load(f)["train"]) == 50  # rewritten whole
