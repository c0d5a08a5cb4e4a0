"""Argument types for numeric options: each checks type and range when the command line is parsed, before anything
is read or written, so `--samples 0`, `--envs -4` or `--hours nan` are one-line usage errors, not a default in
disguise or a traceback an hour later."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, rule: str, ok) -> float | int:
    try:
        value = kind(float(text)) if kind is int and _is_integral(text) else kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} {rule}, got "
                                         f"{text!r}") from None
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} {rule}, got {text}")
    return value


def _is_integral(text: str) -> bool:  # "2e7" is a fine sample count
    try:
        v = float(text)
    except ValueError:
        return False
    return math.isfinite(v) and v.is_integer()


def positive_int(text: str) -> int:
    return _number(text, int, "> 0", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    return _number(text, int, ">= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "> 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    return _number(text, float, ">= 0", lambda v: v >= 0)
