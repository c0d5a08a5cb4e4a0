"""Learning curves from a run's checkpoint: the per-iteration history every trainer stores (samples plus its
scalars: reward and episode length for an expert, losses and episode length for a prior), averaged over sample
buckets into a table, and drawn as a dependency-free SVG (one panel per scalar) for a browser."""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

from interprior.errors import DataFileError
from interprior.report import Column, format_table
from interprior.train.checkpoint import load_checkpoint
from interprior.train.rundir import RunDir


def load_history(path: str | Path) -> list[dict]:
    """The history of a run directory (its latest checkpoint), of one checkpoint file inside it, or of an exported
    model."""

    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    ckpt = RunDir(path).latest() if path.is_dir() else path
    if ckpt is None:
        raise DataFileError(path, "run directory has no checkpoint yet")
    history = load_checkpoint(ckpt).get("history")
    if not history:
        raise DataFileError(ckpt, "checkpoint holds no learning history (give the run directory it came from)")
    return list(history)


def chain_histories(histories: list[list[dict]]) -> list[dict]:
    """One curve from runs that continued one another (each started with --init from the one before): every
    history's samples counted on from the last sample count of the ones before it."""
    out, offset = [], 0
    for history in histories:
        out += [{**point, "samples": int(point["samples"]) + offset} for point in history]
        offset = out[-1]["samples"] if out else offset
    return out


def series_names(history: list[dict]) -> list[str]:
    """The scalars the history holds, in first-seen order ("samples" excluded)."""
    names: list[str] = []
    for point in history:
        names += [k for k in point if k != "samples" and k not in names]
    return names


def nice_width(total: float, buckets: int = 10) -> int:
    """A round bucket width (1, 2 or 5 × 10^k samples) giving about `buckets` buckets over `total` samples."""
    raw = max(total / max(buckets, 1), 1.0)
    exp = 10 ** math.floor(math.log10(raw))
    return int(next(m * exp for m in (1, 2, 5, 10) if m * exp >= raw))


def bucket_means(history: list[dict], width: int) -> list[dict]:
    """Means of every scalar over consecutive sample buckets of `width`; each row's "samples" is its bucket's end
    (the last point's count for the final, partial bucket). Scalars missing from a bucket are left out."""
    if width < 1:
        raise ValueError(f"bucket width must be >= 1 sample, got {width}")
    names = series_names(history)
    rows: dict[int, dict] = {}
    for point in history:
        b = (int(point["samples"]) - 1) // width
        acc = rows.setdefault(b, {"last": 0, "sums": {}, "counts": {}})
        acc["last"] = max(acc["last"], int(point["samples"]))
        for k in names:
            v = point.get(k)
            if v is not None and v == v:  # skip NaN
                acc["sums"][k] = acc["sums"].get(k, 0.0) + float(v)
                acc["counts"][k] = acc["counts"].get(k, 0) + 1
    out = []
    for b in sorted(rows):
        acc = rows[b]
        row = {"samples": min((b + 1) * width, acc["last"])}
        row.update({k: acc["sums"][k] / acc["counts"][k] for k in names if k in acc["counts"]})
        out.append(row)
    return out


def format_curve(rows: list[dict], names: list[str]) -> str:
    columns = [Column("samples", "samples", lambda v: f"{v / 1e6:.2f}M", 10)]
    columns += [Column(n, n, "14.4g", 14) for n in names]
    return "\n".join(format_table(rows, columns))


def curve_svg(rows: list[dict], names: list[str], title: str = "") -> str:
    """One panel per scalar (value against samples), stacked; axis ends labelled with their values."""
    w, h, pad_l, pad_r, pad_t, gap = 640, 150, 70, 20, 30, 40
    height = pad_t + len(names) * (h + gap)
    xs = [r["samples"] for r in rows]
    x0, x1 = min(xs), max(xs)
    sx = lambda x: pad_l + (w - pad_l - pad_r) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{pad_l}" y="18" font-size="14">{escape(title)}</text>']
    for i, name in enumerate(names):
        top = pad_t + i * (h + gap)
        pts = [(r["samples"], r[name]) for r in rows if name in r]
        if not pts:
            continue
        ys = [v for _, v in pts]
        y0, y1 = min(ys), max(ys)
        sy = lambda y: top + h - h * ((y - y0) / (y1 - y0) if y1 > y0 else 0.5)  # noqa: E731,B023
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts += [f'<rect x="{pad_l}" y="{top}" width="{w - pad_l - pad_r}" height="{h}" fill="none" stroke="#bbb"/>',
                  f'<text x="{pad_l + 6}" y="{top + 14}">{escape(name)}</text>',
                  f'<text x="{pad_l - 6}" y="{top + 10}" text-anchor="end">{y1:.4g}</text>',
                  f'<text x="{pad_l - 6}" y="{top + h}" text-anchor="end">{y0:.4g}</text>',
                  f'<text x="{pad_l}" y="{top + h + 15}">{x0 / 1e6:.2f}M</text>',
                  f'<text x="{w - pad_r}" y="{top + h + 15}" text-anchor="end">{x1 / 1e6:.2f}M samples</text>',
                  f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>']
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
