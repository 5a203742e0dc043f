"""The cell registry: one place that names every cell.

Cells are imported lazily by name so that one cell's module never slows down or
breaks the others.
"""

from __future__ import annotations

import difflib
import importlib

from metarl.agents.base import Cell

# name -> "module:Class"
_CELLS: dict[str, str] = {
    "mlp": "metarl.agents.basic:MLPCell",
    "gru": "metarl.agents.basic:GRUCell",
    "lstm": "metarl.agents.basic:LSTMCell",
    "meta-lstm": "metarl.agents.meta_lstm:MetaLSTMCell",
    "mann": "metarl.agents.mann:MANNCell",
    "ntm": "metarl.agents.ntm:NTMCell",
    "forget-memory": "metarl.agents.forget_memory:ForgetMemoryCell",
}


def cells() -> list[str]:
    """Names accepted by :func:`make_cell`."""
    return list(_CELLS)


def check_cell(name: str) -> str:
    """Return ``name`` if a cell is registered under it, else a one-line ValueError naming valid (and closest) names."""
    if name not in _CELLS:
        close = difflib.get_close_matches(name, _CELLS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown cell {name!r}.{hint} Valid cells: {', '.join(_CELLS)}")
    return name


def cell_class(name: str) -> type[Cell]:
    """The class registered under ``name`` (checked by :func:`check_cell`)."""
    module, cls = _CELLS[check_cell(name)].split(":")
    return getattr(importlib.import_module(module), cls)


def make_cell(name: str, input_size: int, hidden_size: int, **options) -> Cell:
    """Build the cell ``name`` mapping (T, B, input_size) -> (T, B, hidden_size)."""
    return cell_class(name)(input_size, hidden_size, **options)
