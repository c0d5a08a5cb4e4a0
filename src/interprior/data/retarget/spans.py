"""Small batched helpers over boolean frame masks: spans, nearest marked frame, holding values constant over
spans (with the jumps spread over the frames between spans)."""

from __future__ import annotations

import numpy as np


def span_starts(mask: np.ndarray) -> np.ndarray:
    """[T] the first frame of the span each frame of `mask` [T] belongs to (unmarked frames: their own index)."""
    t = np.arange(len(mask))
    start = mask & ~np.concatenate([[False], mask[:-1]])
    return np.where(mask, np.maximum.accumulate(np.where(start, t, 0)), t)


def nearest_marked(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every frame, the nearest marked frame of `mask` [T] and its distance in frames (no marked frame: the
    frame itself and an infinite distance)."""
    t = np.arange(len(mask))
    marked = np.flatnonzero(mask)
    if marked.size == 0:
        return t, np.full(len(mask), np.inf)
    right = np.clip(np.searchsorted(marked, t), 0, marked.size - 1)
    left = np.clip(right - 1, 0, marked.size - 1)
    pick = np.where(np.abs(marked[left] - t) <= np.abs(marked[right] - t), marked[left], marked[right])
    return pick, np.abs(pick - t).astype(np.float64)


def hold_over_spans(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`values` [T, D] made constant (their mean) over every span of `mask` [T]; between spans the change this
    makes is blended linearly from one span's end to the next span's start, so the track stays continuous."""
    marked = np.flatnonzero(mask)
    if marked.size == 0:
        return values.copy()
    start = span_starts(mask)[marked]
    _, label = np.unique(start, return_inverse=True)
    counts = np.bincount(label)
    means = np.stack([np.bincount(label, weights=values[marked, d]) / counts for d in range(values.shape[1])], -1)
    change = means[label] - values[marked]
    t = np.arange(len(mask))
    blended = np.stack([np.interp(t, marked, change[:, d]) for d in range(values.shape[1])], -1)
    return values + blended
