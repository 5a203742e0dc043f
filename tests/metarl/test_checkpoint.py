"""Checkpoints: atomic writes, weights_only loads with a format version, RNG round trips, load_agent."""

import os
import random

import numpy as np
import pytest
import torch

from metarl import checkpoint as C


def test_rng_round_trip_reproduces_every_stream():
    gen = torch.Generator().manual_seed(5)
    state = C.capture_rng(gen)
    a = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen))
    torch.rand(7), np.random.rand(2), random.random(), torch.rand(2, generator=gen)  # drift
    C.restore_rng(state, gen)
    b = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and torch.equal(a[3], b[3])


def test_save_is_atomic_and_load_is_weights_only(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    C.save_checkpoint({"model": {"w": torch.ones(2)}, "rng": [C.capture_rng(torch.Generator())]}, path)
    state = torch.load(path, weights_only=True)  # plain tensors and scalars only
    assert state["format_version"] == C.FORMAT_VERSION
    # A failing write leaves the previous file as it was and no temp files behind.
    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        C.save_checkpoint({"model": Boom()}, path)
    assert torch.equal(C.load_checkpoint(tmp_path)["model"]["w"], torch.ones(2))
    assert sorted(os.listdir(path.parent)) == ["last.pt"]


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        C.load_checkpoint(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a metarl run directory"):
        C.load_checkpoint(tmp_path)
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable metarl checkpoint") as err:
        C.load_checkpoint(foreign)
    assert "\n" not in str(err.value)
    torch.save({"format_version": 999}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format 999"):
        C.load_checkpoint(tmp_path / "future.pt")
