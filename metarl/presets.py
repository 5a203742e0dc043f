"""Named presets: the YAML configs in ``configs/`` of the source tree, usable by bare name.

``metarl train ml1_reach`` reads ``configs/ml1_reach.yaml``. The folder sits at
the repository root next to ``metarl/``; an install without the source tree
has none, and then a bare name is an error that says so.
"""

from __future__ import annotations

import difflib
from pathlib import Path

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


def preset_names() -> list[str]:
    """Sorted preset names (file stems of ``configs/*.yaml``); [] without the folder."""
    if not CONFIGS_DIR.is_dir():
        return []
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml") if p.is_file())


def preset_path(name: str) -> Path:
    return CONFIGS_DIR / f"{name}.yaml"


def resolve_config(arg: str | Path) -> tuple[Path, str | None]:
    """``(path, preset name or None)`` for a CONFIG argument: an existing file, else a preset name.

    A preset may be given as ``ml1_reach`` or ``ml1_reach.yaml``. Anything else is a
    one-line FileNotFoundError naming the closest preset and listing them all.
    """
    path = Path(arg)
    if path.is_file():
        return path, None
    text = str(arg)
    bare = "/" not in text and "\\" not in text
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    names = preset_names()
    if bare and stem in names:
        return preset_path(stem), stem
    if not CONFIGS_DIR.is_dir():
        raise FileNotFoundError(
            f"config file not found: {arg} (and no presets: the configs folder {CONFIGS_DIR} is missing; "
            "give a YAML file path)"
        )
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.4)
    hint = f"; did you mean preset '{close[0]}'?" if close else ""
    listing = ", ".join(names) if names else "none"
    raise FileNotFoundError(f"config file not found: {arg}{hint} (presets: {listing})")
