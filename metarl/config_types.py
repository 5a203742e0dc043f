"""Nested config dataclasses from plain dicts, with one-line errors.

Every dotted leaf key of a dataclass tree (:func:`all_keys`); values checked
against their annotations (:func:`coerce`: ints widen to floats, integer
spellings such as ``1e5`` become ints, nothing else converts); unknown keys
named with the closest valid one (:func:`unknown_key`). ``metarl.config``
builds :class:`~metarl.config.TrainConfig` with :func:`build`.

Written by hand, not with OmegaConf structured configs or tyro (both tried, 2026-12-02: omegaconf
2.4.0, tyro 1.0.17): neither accepts ``1e5`` for an int key, and OmegaConf converts where this
refuses; the line above each piece says what the library lacks there.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad config key or value (one line, names the closest valid key)."""


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a config class (``env.num_envs`` ...)."""
    keys = []
    hints = field_types(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            keys.extend(all_keys(t, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


# OmegaConf's key error is 3 lines and names a misspelt section ('agnt'), not the closest key ('agent.cell').
def unknown_key(key: str, root: type) -> ConfigError:
    """The error for a key ``root`` (a config dataclass) does not have, naming its closest key."""
    close = difflib.get_close_matches(key, all_keys(root), n=1, cutoff=0.4)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", str(t).replace("typing.", ""))


# Integer spellings in scientific notation (``1e5``, ``2E6``, ``1_000e3``): an integer
# mantissa and a non-negative exponent, so the value is exact. Anything else with an
# exponent or a point (``1.5e3``, ``1e-3``) is refused for int keys.
_SCI_INT = re.compile(r"[+-]?[0-9](_?[0-9])*[eE]\+?[0-9]+")
_SCI_FLOAT = re.compile(r"[+-]?([0-9][0-9_]*)?\.?[0-9_]*[eE][+-]?[0-9]+|[+-]?[0-9][0-9_]*\.[0-9_]*")


class _NotAnInteger(ConfigError):
    """A number spelling that is no exact integer, given for an int key."""


# OmegaConf refuses 1e5 for int keys (as 100000.0 or as '1e5'), and converts '3' -> 3, 123 -> '123', 'yes' -> True.
def coerce(key: str, value: Any, t: Any) -> Any:
    """Check ``value`` against annotation ``t``; ints widen to floats, integer spellings like
    ``1e5`` become ints, nothing else converts."""
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(t)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(key, value, a)
            except ConfigError as exc:
                errors.append(exc)
        for exc in errors:
            if isinstance(exc, _NotAnInteger):  # "1.5e3" for an int-or-None key: say why
                raise exc
        raise ConfigError(f"config key '{key}' expects {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if t is bool:
        if isinstance(value, bool):
            return value
    elif t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _SCI_INT.fullmatch(value.strip()):  # PyYAML reads "1e5" as a string
            mantissa, exponent = re.split("[eE]", value.strip())
            if int(exponent) > 100:
                raise _NotAnInteger(f"config key '{key}' expects int, got {value!r}: too large")
            return int(mantissa) * 10 ** int(exponent)
        if isinstance(value, str) and _SCI_FLOAT.fullmatch(value.strip()):
            raise _NotAnInteger(
                f"config key '{key}' expects int, got {value!r}: not an integer spelling "
                "(write digits, 1_500, or an integer mantissa such as 15e2)"
            )
    elif t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif t is str:
        if isinstance(value, str):
            return value
    elif t is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif origin in (list, tuple):
        (item,) = typing.get_args(t)[:1] or (Any,)
        if isinstance(value, (list, tuple)):
            return [v if item is Any else coerce(key, v, item) for v in value]
    else:  # pragma: no cover - only for new annotation kinds
        return value
    raise ConfigError(f"config key '{key}' expects {_type_name(t)}, got {value!r} ({type(value).__name__})")


# OmegaConf.structured + merge would build the same dataclasses, but with coerce's gaps above and multi-line errors.
def build(cls: type, data: dict, prefix: str = "", root: type | None = None) -> Any:
    """An instance of dataclass ``cls`` from nested ``data`` (missing keys keep defaults), every value
    checked against its annotation; ``root``: the outermost class, whose keys a typo is matched against."""
    root = root or cls
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    hints = field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if k not in names:
            raise unknown_key(key, root)
        t = hints[k]
        if dataclasses.is_dataclass(t):
            kwargs[k] = build(t, v or {}, f"{key}.", root)
        else:
            kwargs[k] = coerce(key, v, t)
    return cls(**kwargs)
