"""Offscreen rendering of a MuJoCo scene to RGB frames and H.264 MP4 files, on machines with no display.

The OpenGL backend is chosen by :func:`ensure_gl` (`interprior.viz.gl_backend`; ``render_frames``/``write_video``
call it before importing ``mujoco``), and MP4 files are written by :class:`VideoWriter` (`interprior.viz.video`);
both are re-exported here.

Typical use::

    from interprior.viz.render import write_video
    write_video("out/clip.mp4", model, qpos_seq, markers=[(ref_body_pos, (0.1, 0.9, 0.2, 0.6), 0.03)])
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interprior.viz.gl_backend import (  # noqa: F401  (re-exported: public API of this module)
    _active_backend,
    _make_renderer,
    ensure_gl,
    find_headless_backend,
)
from interprior.viz.video import VideoWriter

if TYPE_CHECKING:  # mujoco must not be imported before ensure_gl() has chosen a backend
    import mujoco

__all__ = [
    "ensure_gl",
    "find_headless_backend",
    "TrackingCamera",
    "VideoWriter",
    "render_frames",
    "write_video",
]


@dataclass
class TrackingCamera:
    """Free camera whose look-at point follows the model's root (first free-joint body) with exponential smoothing.

    ``smoothing`` is the time constant in seconds (0 = rigid follow). Models without a free joint look at the
    model centre.
    """

    distance: float = 3.5
    elevation: float = -20.0
    azimuth: float = 135.0
    smoothing: float = 0.25


def _root_body(model: "mujoco.MjModel") -> int:
    import mujoco

    for j in range(model.njnt):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            return int(model.jnt_bodyid[j])
    return -1


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a numeric array ({err})") from None


def _normalize_markers(markers, T: int, radius: float, rgba) -> list[tuple[np.ndarray, np.ndarray, float]]:
    if markers is None or (isinstance(markers, (list, tuple)) and len(markers) == 0):
        return []
    is_sets = (
        isinstance(markers, (list, tuple))
        and len(markers) > 0
        and isinstance(markers[0], (list, tuple))
        and len(markers[0]) in (1, 2, 3)
        and np.ndim(_as_numpy(markers[0][0], "markers")) >= 2
    )
    raw = list(markers) if is_sets else [(markers,)]
    out = []
    for i, spec in enumerate(raw):
        pts = _as_numpy(spec[0], f"markers[{i}]")
        color = np.asarray(spec[1] if len(spec) > 1 and spec[1] is not None else rgba, dtype=np.float32)
        rad = float(spec[2]) if len(spec) > 2 and spec[2] is not None else float(radius)
        if pts.ndim == 2:
            pts = pts[:, None, :]
        if pts.ndim != 3 or pts.shape[2] != 3 or pts.shape[0] != T:
            raise ValueError(f"markers[{i}]: expected shape [T={T}, K, 3], got {list(pts.shape)}")
        if color.shape != (4,):
            raise ValueError(f"markers[{i}]: rgba must have 4 values, got {color.tolist()}")
        if not rad > 0:
            raise ValueError(f"markers[{i}]: radius must be > 0, got {rad}")
        out.append((pts, color, rad))
    return out


def _overlay_for(overlay_text, t: int, T: int) -> str | None:
    if overlay_text is None:
        return None
    if callable(overlay_text):
        return overlay_text(t)
    if isinstance(overlay_text, str):
        return overlay_text
    if len(overlay_text) != T:
        raise ValueError(f"overlay_text: expected {T} strings (one per frame), got {len(overlay_text)}")
    return overlay_text[t]


def _add_markers(scene, specs, t: int, warned: list[bool]) -> None:
    import mujoco

    eye = np.eye(3).ravel()
    size = np.zeros(3)
    for pts, rgba, rad in specs:
        size[0] = rad
        for p in pts[t]:
            if not np.all(np.isfinite(p)):
                continue  # NaN marks a missing point
            if scene.ngeom >= scene.maxgeom:
                if not warned[0]:
                    warnings.warn(f"scene is full ({scene.maxgeom} geoms); some markers are not drawn", stacklevel=3)
                    warned[0] = True
                return
            mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, size, p, eye, rgba)
            scene.geoms[scene.ngeom].category = mujoco.mjtCatBit.mjCAT_DECOR
            scene.ngeom += 1


def _render_with_text(renderer, text: str) -> np.ndarray:
    """Render the current scene plus a top-left text overlay (uses the renderer's MuJoCo GL context)."""
    import mujoco

    ctx = getattr(renderer, "_mjr_context", None)
    gl = getattr(renderer, "_gl_context", None)
    if ctx is None:
        return renderer.render()
    if gl is not None:
        gl.make_current()
    rect = mujoco.MjrRect(0, 0, renderer.width, renderer.height)
    mujoco.mjr_render(rect, renderer.scene, ctx)
    mujoco.mjr_overlay(mujoco.mjtFont.mjFONT_NORMAL, mujoco.mjtGridPos.mjGRID_TOPLEFT, rect, text, None, ctx)
    buf = np.empty((renderer.height, renderer.width, 3), dtype=np.uint8)
    mujoco.mjr_readPixels(buf, None, rect, ctx)
    return np.flipud(buf).copy() if gl is not None else buf


def render_frames(
    model: "mujoco.MjModel",
    qpos_seq,
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 30,
    camera: "str | int | TrackingCamera | mujoco.MjvCamera | None" = "track",
    markers=None,
    marker_radius: float = 0.03,
    marker_rgba: Sequence[float] = (0.1, 0.9, 0.2, 0.8),
    overlay_text: "str | Sequence[str] | Callable[[int], str] | None" = None,
) -> Iterator[np.ndarray]:
    """Yield one ``[height, width, 3]`` uint8 RGB frame per row of ``qpos_seq`` ``[T, nq]``.

    camera: ``"track"`` (default; :class:`TrackingCamera` defaults), a :class:`TrackingCamera`, ``"free"`` /
        ``None`` (MuJoCo's default free camera), a model camera name or id, or an ``mujoco.MjvCamera``.
    markers: world points drawn as translucent spheres: either one ``[T, K, 3]`` array (drawn with
        ``marker_radius``/``marker_rgba``) or a list of ``(points[T, K, 3], rgba, radius)`` tuples (rgba/radius may
        be omitted or None for the defaults). NaN points are skipped.
    overlay_text: text drawn top-left: one string, one string per frame, or ``f(frame_index) -> str``.

    Arguments are validated when called; the GL context is created on the first ``next()`` and closed when the
    generator finishes, is closed, or raises.
    """
    qpos = _as_numpy(qpos_seq, "qpos_seq")
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise ValueError(f"qpos_seq: expected shape [T, nq={model.nq}], got {list(qpos.shape)}")
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"width/height must be positive, got {width}x{height}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    T = qpos.shape[0]
    specs = _normalize_markers(markers, T, marker_radius, marker_rgba)
    if overlay_text is not None and not callable(overlay_text) and not isinstance(overlay_text, str):
        _overlay_for(overlay_text, 0, T)  # length check
    if isinstance(camera, str) and camera == "track":
        camera = TrackingCamera()
    return _frames(model, qpos, width, height, float(fps), camera, specs, overlay_text)


def _frames(model, qpos, width, height, fps, camera, specs, overlay_text) -> Iterator[np.ndarray]:
    ensure_gl()
    import mujoco

    n_markers = sum(p.shape[1] for p, _, _ in specs)
    saved = (model.vis.global_.offwidth, model.vis.global_.offheight, model.vis.headlight.active)
    model.vis.global_.offwidth = max(saved[0], width)
    model.vis.global_.offheight = max(saved[1], height)
    if model.nlight == 0 and not model.vis.headlight.active:
        model.vis.headlight.active = 1  # never render a black frame for lack of light
    renderer = None
    try:
        renderer = _make_renderer(model, width, height, max_geom=10000 + n_markers)
        data = mujoco.MjData(model)

        track: TrackingCamera | None = camera if isinstance(camera, TrackingCamera) else None
        cam_arg: Any
        if track is not None:
            cam_arg = mujoco.MjvCamera()
            cam_arg.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam_arg.distance = track.distance
            cam_arg.elevation = track.elevation
            cam_arg.azimuth = track.azimuth
            root = _root_body(model)
            alpha = 1.0 if track.smoothing <= 0 else 1.0 - math.exp(-1.0 / (fps * track.smoothing))
        elif camera is None or (isinstance(camera, str) and camera == "free"):
            cam_arg = mujoco.MjvCamera()
            mujoco.mjv_defaultFreeCamera(model, cam_arg)
        else:
            cam_arg = camera  # model camera name / id, or a user MjvCamera
        lookat: np.ndarray | None = None
        warned = [False]

        for t in range(qpos.shape[0]):
            data.qpos[:] = qpos[t]
            mujoco.mj_forward(model, data)
            if track is not None:
                target = data.xpos[root].copy() if root >= 0 else np.asarray(model.stat.center, dtype=np.float64)
                lookat = target if lookat is None else lookat + alpha * (target - lookat)
                cam_arg.lookat[:] = lookat
            renderer.update_scene(data, camera=cam_arg)
            _add_markers(renderer.scene, specs, t, warned)
            text = _overlay_for(overlay_text, t, qpos.shape[0])
            yield _render_with_text(renderer, text) if text else renderer.render()
    finally:
        if renderer is not None:
            renderer.close()
        model.vis.global_.offwidth, model.vis.global_.offheight, model.vis.headlight.active = saved


def write_video(path: str | os.PathLike[str], model: "mujoco.MjModel", qpos_seq, **kwargs) -> Path:
    """Render ``qpos_seq`` with :func:`render_frames` (same keyword arguments) into an H.264 MP4 at ``path``.

    The file appears atomically (complete or not at all). Returns ``path`` as a :class:`Path`.
    """
    fps = kwargs.get("fps", 30)
    frames = render_frames(model, qpos_seq, **kwargs)  # validates before any file is created
    with contextlib.closing(frames), VideoWriter(path, fps=fps) as writer:  # closing(): GL freed on any error
        for frame in frames:
            writer.write(frame)
    return Path(path)
