"""The one report writer: aligned columns, group titles over their columns, strict JSON."""

import json
import math

import numpy as np
import torch

from interprior.report import Column, Group, format_table, to_json


def test_columns_align_and_grow_to_fit():
    rows = [{"clip": "a", "ok": True, "err": 1.234}, {"clip": "a_much_longer_name", "ok": False, "err": None}]
    lines = format_table(rows, [Column("clip", "clip", align="<"), Column("ok", "ok", width=4),
                                Column("err", "err cm", "6.1f")])
    assert lines[0] == "clip                 ok err cm"
    assert lines[1] == "a                   yes    1.2"
    assert lines[2] == "a_much_longer_name   no      -"  # None prints as "-"
    assert len({len(line) for line in lines}) == 1


def test_group_titles_sit_over_their_columns_and_rule():
    rows = [{"a": 1, "b": 2, "c": 3}]
    cols = [Column("a", "a", "d", 3), Column("b", "b", "d", 5, sep=" | "), Column("c", "c", "d", 5)]
    lines = format_table(rows, cols, (Group("first", "b", "c"),), rule=True)
    header = lines[1]
    assert lines[0].index("first") >= header.index("|") and lines[0].rstrip().endswith("first")
    assert set(lines[2].replace(" ", "").replace("|", "")) == {"-"}
    assert lines[3] == "  1 |     2     3"


def test_json_is_strict():
    text = to_json({"x": math.nan, "y": [1.0, math.inf], "z": np.float32(2.5), "t": torch.tensor(3.0),
                    "n": np.float64("nan")})
    assert json.loads(text) == {"x": None, "y": [1.0, None], "z": 2.5, "t": 3.0, "n": None}
