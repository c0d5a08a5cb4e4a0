"""`interprior eval curve`: bucket means of a run's stored history, as a table, JSON and an SVG."""

import json
import xml.etree.ElementTree as ET

from interprior.cli import main
from interprior.eval.curve import bucket_means, nice_width
from interprior.train.rundir import RunDir


def _run_with_history(tmp_path, history):
    run = RunDir(tmp_path / "run")
    run.save(len(history), {"history": history, "samples": history[-1]["samples"] if history else 0})
    return run.root


def test_bucket_means_average_each_scalar_per_bucket():
    history = [{"samples": 100, "reward": 1.0, "episode_length": 10.0},
               {"samples": 200, "reward": 3.0},  # no episode ended in this iteration
               {"samples": 300, "reward": 5.0, "episode_length": 30.0},
               {"samples": 350, "reward": float("nan"), "episode_length": 50.0}]
    rows = bucket_means(history, width=200)
    assert [r["samples"] for r in rows] == [200, 350]  # the partial last bucket ends at its last point
    assert rows[0] == {"samples": 200, "reward": 2.0, "episode_length": 10.0}
    assert rows[1] == {"samples": 350, "reward": 5.0, "episode_length": 40.0}  # NaN skipped


def test_nice_width_is_round():
    assert nice_width(3_240_000) == 500_000
    assert nice_width(2_770_000) == 500_000
    assert nice_width(900) == 100
    assert nice_width(1) == 1


def test_eval_curve_cli_table_json_and_svg(tmp_path, capsys):
    history = [{"samples": 2048 * (i + 1), "reward": 0.1 + 0.01 * i, "episode_length": 20.0 + i} for i in range(50)]
    run = _run_with_history(tmp_path, history)
    svg = tmp_path / "plots" / "curve.svg"
    assert main(["eval", "curve", str(run), "--every", "20480", "--json", "--svg", str(svg)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bucket_samples"] == 20480 and len(res["rows"]) == 5
    first = res["rows"][0]
    assert first["samples"] == 20480 and abs(first["episode_length"] - 24.5) < 1e-9  # mean of 20..29
    root = ET.parse(svg).getroot()
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 2  # one panel per scalar
    assert len(lines[0].get("points").split()) == 25  # five times the table's resolution
    assert main(["eval", "curve", str(run)]) == 0
    out = capsys.readouterr().out
    assert "episode_length" in out and "reward" in out and "0.10M" in out


def test_eval_curve_errors_name_the_path(tmp_path, capsys):
    assert main(["eval", "curve", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    empty = RunDir(tmp_path / "empty")
    empty.root.mkdir(parents=True, exist_ok=True)
    assert main(["eval", "curve", str(empty.root)]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err
    run = _run_with_history(tmp_path, [{"samples": 10, "reward": 1.0}])
    assert main(["eval", "curve", str(run), "--every", "0.5"]) == 2
    assert "--every" in capsys.readouterr().err


def test_runs_continued_by_init_chain_into_one_curve(tmp_path, capsys):
    from interprior.train.checkpoint import save_checkpoint

    first = tmp_path / "first.pt"  # an exported model keeps its history
    save_checkpoint(first, {"history": [{"samples": 1000 * (i + 1), "reward": 1.0} for i in range(10)]})
    second = RunDir(tmp_path / "second")  # started with --init from it: its own samples count from 0
    second.save(5, {"history": [{"samples": 1000 * (i + 1), "reward": 2.0} for i in range(5)], "samples": 5000})
    assert main(["eval", "curve", str(first), str(second.root), "--every", "5000", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["samples"], r["reward"]) for r in rows] == [(5000, 1.0), (10000, 1.0), (15000, 2.0)]
