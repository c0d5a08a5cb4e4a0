"""Config dataclasses ⇄ JSON, type-checked. The one path every training config takes:

    dataclass defaults → named preset (code) → ``--config FILE`` overlays → command-line flags → ``--set KEY=VALUE``

An **overlay** is a partial nested JSON object: only the keys it names change, so a full dump (a run's
``config.json``, an old recipe) is an overlay too. Every value that enters through an overlay or ``--set`` is checked
against its field's annotation (``int``, ``float``, ``bool``, ``str``, ``Path``, ``tuple[int, ...]``,
``tuple[float, float]``, ``X | None``, nested dataclass sections); a mismatch is one :class:`ConfigMismatch` line
naming the dotted key, the expected form and the value given.

Top-level keys starting with ``_`` are notes, not fields: :func:`dict_to_config` ignores them. ``_preset`` names the
preset an overlay is relative to (read by ``--config``); a run's ``config.json`` also records ``_overlays`` and
``_set``, how it was made.

Bottom layer: the standard library and :mod:`interprior.errors` (itself standard library only), nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from interprior.errors import InterpriorError

META_PREFIX = "_"


class ConfigMismatch(InterpriorError):
    """A config value of the wrong type or an unknown key, or an existing run directory made with a different
    configuration."""


class OutOfRange(ValueError):
    """A field's value outside its range; the message starts with the field's name."""


def require(section: Any, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
            fraction: tuple[str, ...] = ()) -> None:
    """Range checks for a config section's ``__post_init__``: the named fields (None passes: "not set") must be
    > 0, >= 0, or within [0, 1]; a tuple's entries are checked one by one. Raises :class:`OutOfRange`, which the
    config loader reports as '<dotted key> must be ..., got ...'."""
    for names, ok, rule in ((positive, lambda v: v > 0, "> 0"), (non_negative, lambda v: v >= 0, ">= 0"),
                            (fraction, lambda v: 0 <= v <= 1, "within [0, 1]")):
        for name in names:
            value = getattr(section, name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            if any(v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and ok(v))
                   for v in values):
                raise OutOfRange(f"{name} must be {rule}{' (each entry)' if values is value else ''}, "
                                 f"got {_show(value)}")


# ------------------------------------------------------------------------------------------------------- to JSON


def config_to_dict(cfg: Any) -> dict:
    """Dataclass (possibly nested) → JSON-compatible dict (tuples become lists, paths strings)."""
    d = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    return json.loads(json.dumps(d, default=str))


def split_meta(d: dict) -> tuple[dict, dict]:
    """(fields, notes): a config dict's top-level keys split by the ``_`` prefix."""
    fields = {k: v for k, v in d.items() if not str(k).startswith(META_PREFIX)}
    return fields, {k: v for k, v in d.items() if str(k).startswith(META_PREFIX)}


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dict → {dotted key: leaf value}."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ (or exist on one side only), sorted."""
    a, b = flatten(saved), flatten(current)
    return sorted(k for k in a.keys() | b.keys() if a.get(k, "<missing>") != b.get(k, "<missing>"))


# ------------------------------------------------------------------------------------------------------- types


class _Wrong(Exception):
    """A value that does not fit a type; the message is ready for '<key> is <message>'."""


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _union_args(tp: Any) -> tuple | None:
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else None


def describe(tp: Any, plural: bool = False) -> str:
    """'an int', 'a list of 2 numbers', 'an int or null', ... (``plural``: 'ints', 'numbers', ...)."""
    args = _union_args(tp)
    if args is not None:
        parts = [describe(a, plural) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true/false values" if plural else "true or false"
    if tp is int:
        return "ints" if plural else "an int"
    if tp is float:
        return "numbers" if plural else "a number"
    if tp is str:
        return "strings" if plural else "a string"
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        return "paths (strings)" if plural else "a path (string)"
    if tp is tuple or origin in (tuple, list) or tp is list:
        args = typing.get_args(tp)
        lists = "lists" if plural else "a list"
        if not args:
            return lists
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{lists} of {describe(args[0], plural=True)}"
        if len(set(args)) == 1:
            return f"{lists} of {len(args)} {describe(args[0], plural=True)}"
        return f"{lists} [{', '.join(describe(a) for a in args)}]"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(_show(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"{tp.__name__} sections" if plural else f"a section ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _comma_list_hint(tp: Any, value: Any) -> str:
    """For ``"256,256"`` given to a list field: '; write it as JSON: [256,256]' when that would fit."""
    if not isinstance(value, str) or not value.strip():
        return ""
    args = _union_args(tp)
    if args is not None:
        return next((h for a in args if a is not type(None) and (h := _comma_list_hint(a, value))), "")
    if not (tp in (tuple, list) or typing.get_origin(tp) in (tuple, list)):
        return ""
    items = []
    for part in value.strip("()[] ").split(","):
        try:
            items.append(json.loads(part))
        except json.JSONDecodeError:
            items.append(part.strip())
    try:
        _coerce(tp, items, "")
    except (_Wrong, ConfigMismatch):
        return ""
    return f"; write it as JSON: {json.dumps(items, separators=(',', ':'))}"


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` (from JSON or Python) as type ``tp``; raises :class:`_Wrong` (or :class:`ConfigMismatch` from a
    nested section, whose message names its own key)."""
    if tp is Any or tp is object:
        return value
    args = _union_args(tp)
    if args is not None:
        if value is None and type(None) in args:
            return None
        wanted = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _coerce(arm, value, key)
            except _Wrong as e:
                wanted.append(str(e))
        raise _Wrong(" or ".join(wanted) + (" or null" if type(None) in args else ""))
    origin = typing.get_origin(tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Wrong(describe(tp))
    if tp is int:
        if isinstance(value, bool):
            raise _Wrong(describe(tp))
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():  # 2e7 samples
            return int(value)
        raise _Wrong(describe(tp))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Wrong("a finite number")
            return float(value)
        raise _Wrong(describe(tp))
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Wrong(describe(tp))
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Wrong(describe(tp))
    if tp is tuple or tp is list or origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Wrong(describe(tp))
        targs = typing.get_args(tp)
        kind = list if (tp is list or origin is list) else tuple
        if not targs:
            return kind(value)
        if kind is list or (len(targs) == 2 and targs[1] is Ellipsis):
            elem = [targs[0]] * len(value)
        elif len(targs) == len(value):
            elem = list(targs)
        else:
            raise _Wrong(describe(tp))
        try:
            return kind(_coerce(t, v, key) for t, v in zip(elem, value))
        except _Wrong:
            raise _Wrong(describe(tp)) from None
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise _Wrong(describe(tp))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _Wrong(f"{describe(tp)} with fields like {key}.{dataclasses.fields(tp)[0].name}")
        return _from_dict(tp, value, key + ".")
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise _Wrong("an object")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _Wrong(describe(tp))
    return value


def _default_type(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return Any if f.default is None else type(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return type(f.default_factory())
    return Any


def field_types(cls: type) -> dict[str, Any]:
    """{field name: resolved annotation} of the dataclass ``cls`` (init fields)."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # annotations naming local classes: fall back to the declared defaults' types
        hints = {f.name: _default_type(f) for f in dataclasses.fields(cls)}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def check_value(tp: Any, value: Any, key: str) -> Any:
    """``value`` as type ``tp``, or a :class:`ConfigMismatch` '<key> is an int, got 4.5'."""
    try:
        return _coerce(tp, value, key)
    except _Wrong as e:
        raise ConfigMismatch(f"{key} is {e}, got {_show(value)}{_comma_list_hint(tp, value)}") from None


def _from_dict(cls: type, d: dict, prefix: str) -> Any:
    types_ = field_types(cls)
    unknown = sorted(k for k in d if k not in types_)
    if unknown:
        where = f"section {prefix.rstrip('.')} ({cls.__name__})" if prefix else cls.__name__
        raise ConfigMismatch(f"no config field {', '.join(prefix + str(k) for k in unknown)} in {where}")
    kwargs = {k: check_value(types_[k], v, prefix + k) for k, v in d.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a section's own check (__post_init__, e.g. `require`)
        if isinstance(e, OutOfRange):
            raise ConfigMismatch(f"{prefix}{e}") from None
        raise ConfigMismatch(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def dict_to_config(cls: type, d: dict) -> Any:
    """Inverse of :func:`config_to_dict`; missing keys keep the dataclass defaults, unknown keys and values of the
    wrong type are a :class:`ConfigMismatch` naming the dotted key. Top-level ``_notes`` are ignored."""
    if not isinstance(d, dict):
        raise ConfigMismatch(f"a config is a JSON object of fields, got {_show(d)[:60]}")
    fields, _ = split_meta(d)
    return _from_dict(cls, fields, "")


# ------------------------------------------------------------------------------------------------------- overlays


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def overlay(cfg: Any, d: dict) -> Any:
    """A new config: ``cfg`` with the fields named in the nested dict ``d`` replaced (a section's unnamed fields are
    kept), each checked against its type. Top-level ``_notes`` in ``d`` are ignored."""
    if not isinstance(d, dict):
        raise ConfigMismatch(f"an overlay is a JSON object of fields, got {_show(d)[:60]}")
    fields, _ = split_meta(d)
    return dict_to_config(type(cfg), _merge(config_to_dict(cfg), fields))


def read_overlay(path: str | Path) -> tuple[dict, dict]:
    """(fields, notes) of a JSON overlay file; an unreadable file or one that is no JSON object is a
    :class:`ConfigMismatch` naming it."""
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigMismatch(f"--config {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigMismatch(f"--config {path}: not JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigMismatch(f"--config {path}: expected a JSON object of config fields, got {_show(d)[:60]}")
    return split_meta(d)


def overlay_file(cfg: Any, path: str | Path) -> Any:
    """``cfg`` with the overlay file ``path`` applied; errors name the file."""
    fields, _ = read_overlay(path)
    try:
        return overlay(cfg, fields)
    except ConfigMismatch as e:
        raise ConfigMismatch(f"--config {path}: {e}") from None


def diff_overlay(base: Any, target: Any) -> dict:
    """The smallest overlay that turns ``base`` into ``target`` (same class): nested, only differing leaves."""
    def walk(a: dict, b: dict) -> dict:
        out = {}
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                sub = walk(a[k], v)
                if sub:
                    out[k] = sub
            elif a.get(k, object()) != v or type(a.get(k)) is not type(v):
                out[k] = v
        return out

    return walk(config_to_dict(base), config_to_dict(target))


# ------------------------------------------------------------------------------------------------------- --set


def _field_type(cls: type, parts: list[str], item: str) -> Any:
    """The annotation of the dotted field ``parts`` under ``cls``; ConfigMismatch for an unknown one."""
    tp = cls
    for i, part in enumerate(parts):
        section = ".".join(parts[:i])
        if not dataclasses.is_dataclass(tp):
            raise ConfigMismatch(f"--set {item}: {section} is {describe(tp)}, not a section with field {part!r}")
        types_ = field_types(tp)
        if part not in types_:
            where = f"section {section} ({tp.__name__})" if section else tp.__name__
            raise ConfigMismatch(f"--set {item}: no config field {'.'.join(parts[: i + 1])} in {where}")
        tp = types_[part]
    return tp


def apply_overrides(cfg: Any, assignments: list[str]) -> Any:
    """``["ppo.epochs=4", "env.reward.p=20"]`` → a new config with those fields set. Values are JSON (bare words
    are strings; a number given to a string field is its text); each is checked against its field's type, and an
    unknown key or a value of the wrong type is a one-line :class:`ConfigMismatch` naming the assignment."""
    d = config_to_dict(cfg)
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigMismatch(f"--set {item}: expected KEY=VALUE, e.g. ppo.epochs=4")
        parts = key.split(".")
        tp = _field_type(type(cfg), parts, item)
        try:
            value, is_json = json.loads(text), True
        except json.JSONDecodeError:
            value, is_json = text, False
        try:
            checked = check_value(tp, value, key)
        except ConfigMismatch as e:
            try:  # `--set env.device=0`, `--set init=123`: a number for a string field is its text
                if not (is_json and isinstance(value, (int, float)) and not isinstance(value, bool)):
                    raise
                checked, value = check_value(tp, text, key), text
            except ConfigMismatch:
                raise ConfigMismatch(f"--set {item}: {e}") from None
        node = d
        for part in parts[:-1]:
            node = node[part]
        if dataclasses.is_dataclass(checked) and isinstance(value, dict):  # a section given as a JSON object
            node[parts[-1]] = _merge(node[parts[-1]], value) if isinstance(node[parts[-1]], dict) else value
        else:
            node[parts[-1]] = config_to_dict({"v": checked})["v"]
    try:
        return dict_to_config(type(cfg), d)
    except ConfigMismatch as e:
        raise ConfigMismatch(f"--set {' '.join(assignments)}: {e}") from None
