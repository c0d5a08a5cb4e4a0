"""Data set recipes: a committed JSON file that names what `interprior data synth` makes (`configs/data/*.json`).

    {"skills": [...], "objects": [...], "seconds": [5, 15], "seed": 0, "clips": 210,
     "eval": {"seed": 1, "clips": 63}}

`skills` and `objects` cycle over the clips as with `--skills` / `--objects`; `seconds` is the range every clip's
length must fall in (`--check` counts the clips outside it); `seed` and `clips` make the training set, `eval`
(optional) the evaluation set from another seed. Keys starting with `_` are comments.
"""

from __future__ import annotations

import json
from pathlib import Path

from interprior.errors import InterpriorError

KEYS = ("name", "skills", "objects", "seconds", "seed", "clips", "eval")


def _fail(path, what: str) -> InterpriorError:
    return InterpriorError(f"--recipe {path}: {what}")


def _names(path, recipe: dict, key: str) -> tuple[str, ...]:
    value = recipe.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, f"`{key}` must be a non-empty list of names")
    return tuple(value)


def _count(path, where: dict, key: str, low: int) -> int:
    value = where.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(path, f"`{key}` must be an integer >= {low}, got {value!r}")
    return value


def load_recipe(path: str | Path, part: str = "train") -> dict:
    """-> {"name", "skills", "objects", "seconds", "seed", "clips", "part", "path"} of the recipe's training set
    (`part` "train") or evaluation set ("eval"). One-line InterpriorError naming `--recipe` for a missing file,
    bad JSON, unknown keys or bad values (skill and object names are checked with the other options)."""
    path = Path(path)
    try:
        recipe = json.loads(path.read_text())
    except OSError as err:
        raise _fail(path, f"cannot read it ({err.strerror or err})") from None
    except ValueError as err:
        raise _fail(path, f"not valid JSON ({err})") from None
    if not isinstance(recipe, dict):
        raise _fail(path, "must be a JSON object")
    unknown = [k for k in recipe if not k.startswith("_") and k not in KEYS]
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; expected {', '.join(KEYS)}")
    seconds = recipe.get("seconds")
    if seconds is not None and not (isinstance(seconds, list) and len(seconds) == 2
                                    and all(isinstance(x, (int, float)) for x in seconds) and 0 < seconds[0] <= seconds[1]):
        raise _fail(path, f"`seconds` must be [shortest, longest] in seconds, got {seconds!r}")
    where = recipe
    if part == "eval":
        where = recipe.get("eval")
        if not isinstance(where, dict):
            raise _fail(path, "has no `eval` set ({\"seed\": S, \"clips\": N})")
    return {"name": str(recipe.get("name", path.stem)), "skills": _names(path, recipe, "skills"),
            "objects": _names(path, recipe, "objects"),
            "seconds": None if seconds is None else (float(seconds[0]), float(seconds[1])),
            "seed": _count(path, where, "seed", 0) if "seed" in where else 0, "clips": _count(path, where, "clips", 1),
            "part": part, "path": str(path)}
