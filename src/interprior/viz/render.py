"""Offscreen rendering of a MuJoCo scene to RGB frames and H.264 MP4 files, on machines with no display.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported. This module imports
``mujoco`` lazily: call :func:`ensure_gl` (``render_frames``/``write_video`` do) and it selects a headless
backend first (``osmesa`` when there is no ``DISPLAY``; an explicit ``MUJOCO_GL`` is respected). If ``mujoco``
was already imported with a backend that cannot work here (GLFW without a display), it switches the backend in
place when PyOpenGL allows it, and otherwise raises :class:`RenderingUnavailable` with a one-line fix.

Typical use::

    from interprior.viz.render import write_video
    write_video("out/clip.mp4", model, qpos_seq, markers=[(ref_body_pos, (0.1, 0.9, 0.2, 0.6), 0.03)])
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interprior.errors import RenderingUnavailable

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

_HEADLESS = ("osmesa", "egl")
_GLFW_ALIASES = ("", "glfw", "enable", "enabled", "on", "true", "1", "glx")
_DISABLED_ALIASES = ("disable", "disabled", "off", "false", "0")

# Backends whose GL context has been created successfully in this process (probe cache).
_probed_ok: set[str] = set()


# --------------------------------------------------------------------------------------------------------------
# Backend selection
# --------------------------------------------------------------------------------------------------------------


def _normalize_backend(value: str) -> str:
    value = value.strip().lower()
    if value in _GLFW_ALIASES:
        return "glfw"
    if value in _DISABLED_ALIASES:
        return "disabled"
    return value


def _fix_hint(backend: str) -> str:
    if backend not in ("osmesa", "egl", "glfw", "cgl", "wgl", "disabled"):
        what = f"MUJOCO_GL={backend} is not a known backend"
    elif backend == "osmesa":
        what = "libOSMesa (software OpenGL) is missing or unusable"
    elif backend == "egl":
        what = "EGL (GPU OpenGL) is missing or unusable"
    elif backend == "disabled":
        what = "MUJOCO_GL disables OpenGL"
    elif backend == "glfw" and not os.environ.get("DISPLAY"):
        what = "GLFW needs a display and DISPLAY is not set"
    else:
        what = f"the {backend} OpenGL backend could not create a context"
    return (
        f"{what}; fix: install OSMesa (apt-get install libosmesa6) and run with MUJOCO_GL=osmesa, "
        "or on a GPU machine use MUJOCO_GL=egl (needs the NVIDIA driver's libEGL)"
    )


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}"


def _unavailable(backend: str, cause: BaseException | str, fix: str | None = None) -> RenderingUnavailable:
    detail = cause if isinstance(cause, str) else _one_line(cause)
    return RenderingUnavailable(
        f"offscreen rendering unavailable (MUJOCO_GL={backend}: {detail}); {fix or _fix_hint(backend)}"
    )


def _gl_context_module():
    """The module whose ``GLContext`` attribute ``mujoco.Renderer`` instantiates."""
    import importlib

    for name in ("mujoco.rendering.classic.gl_context", "mujoco.gl_context"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _active_backend() -> str:
    """Backend that the already-imported mujoco will use, judged by its GLContext class."""
    mod = _gl_context_module()
    cls = getattr(mod, "GLContext", None) if mod is not None else None
    if cls is None:
        return "disabled"
    module = getattr(cls, "__module__", "") or ""
    for name in ("osmesa", "egl", "glfw", "cgl", "wgl"):
        if module == f"mujoco.{name}" or module.startswith(f"mujoco.{name}."):
            return name
    return "unavailable"  # mujoco's placeholder class: the backend's dependencies failed to import


def _switch_backend(wanted: str) -> None:
    """Point an already-imported mujoco at a headless backend (``osmesa``/``egl``)."""
    import importlib

    pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if pyopengl and pyopengl != wanted:
        raise _unavailable(
            wanted,
            f"PYOPENGL_PLATFORM={pyopengl} conflicts with it",
            f"fix: unset PYOPENGL_PLATFORM or set it to {wanted}, and set MUJOCO_GL={wanted} before Python starts",
        )
    platform_mod = sys.modules.get("OpenGL.platform")
    if platform_mod is not None:
        loaded = type(getattr(platform_mod, "PLATFORM", None)).__name__.lower().removesuffix("platform")
        if wanted not in loaded:
            raise _unavailable(
                wanted,
                f"PyOpenGL was already initialised with the {loaded or 'another'} platform in this process",
                f"fix: set MUJOCO_GL={wanted} (and PYOPENGL_PLATFORM={wanted}) before Python starts, "
                "or call interprior.viz.render.ensure_gl() before importing mujoco/OpenGL",
            )
    os.environ["PYOPENGL_PLATFORM"] = wanted
    try:
        backend_mod = importlib.import_module(f"mujoco.{wanted}")
        context_cls = backend_mod.GLContext
    except Exception as err:  # noqa: BLE001 - any failure here means the backend is unusable
        raise _unavailable(wanted, err) from None
    glc = _gl_context_module()
    if glc is None:
        raise _unavailable(wanted, "this mujoco version has no gl_context module")
    glc.GLContext = context_cls
    mujoco_mod = sys.modules.get("mujoco")
    if mujoco_mod is not None and hasattr(mujoco_mod, "GLContext"):
        mujoco_mod.GLContext = context_cls


def _make_renderer(model: "mujoco.MjModel", width: int, height: int, max_geom: int = 10000):
    """Create a ``mujoco.Renderer``; any failure becomes :class:`RenderingUnavailable`."""
    import mujoco

    backend = _active_backend()
    if backend == "unavailable":  # mujoco's placeholder: name the backend that was asked for
        backend = _normalize_backend(os.environ.get("MUJOCO_GL", ""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GLFW emits warnings before failing without a display
            return mujoco.Renderer(model, height=height, width=width, max_geom=max_geom)
    except Exception as err:  # noqa: BLE001 - ImportError, RuntimeError, mujoco.FatalError, OSError, ...
        raise _unavailable(backend, err) from None


_GL_LIBRARIES = {"osmesa": "OSMesa", "egl": "EGL"}


def _library_loads(name: str) -> bool:
    """Whether lib<name>.so[.N] can be dlopen'ed (the names PyOpenGL tries)."""
    import ctypes

    for filename in [f"lib{name}.so"] + [f"lib{name}.so.{i}" for i in range(9, -1, -1)]:
        try:
            ctypes.CDLL(filename, mode=ctypes.RTLD_GLOBAL)
            return True
        except OSError:
            continue
    return False


def find_headless_backend() -> str | None:
    """``"osmesa"`` if libOSMesa loads, else ``"egl"`` if libEGL loads, else None. Imports nothing heavy.

    Useful before importing mujoco: with ``MUJOCO_GL=osmesa`` and no libOSMesa, PyOpenGL makes ``import mujoco``
    itself fail (AttributeError in OpenGL.GL), not just rendering.
    """
    for backend, lib in _GL_LIBRARIES.items():
        if _library_loads(lib):
            return backend
    return None


def _require_library(backend: str) -> None:
    lib = _GL_LIBRARIES.get(backend)
    if lib is not None and sys.platform.startswith("linux") and not _library_loads(lib):
        raise _unavailable(backend, f"lib{lib}.so could not be loaded")


def ensure_gl(*, probe: bool = True) -> str:
    """Select a headless-capable OpenGL backend for MuJoCo and return its name (``osmesa``, ``egl``, ``glfw``...).

    * An existing ``MUJOCO_GL`` is respected; otherwise, when ``DISPLAY`` is unset, ``osmesa`` is chosen (``egl``
      if only libEGL is present).
    * Call this before importing mujoco where possible; if mujoco is already imported with GLFW and there is
      no display, the backend is switched in place when PyOpenGL allows it.
    * If the backend's library is missing, MUJOCO_GL is left alone (so ``import mujoco`` keeps working for
      simulation) and :class:`RenderingUnavailable` is raised.
    * With ``probe`` (default) a tiny offscreen context is created once per backend per process, so any other
      failure is also reported here as :class:`RenderingUnavailable` (one line, with the fix), never a traceback.
    """
    explicit = os.environ.get("MUJOCO_GL", "").strip()
    if explicit:
        wanted = _normalize_backend(explicit)
    elif not os.environ.get("DISPLAY"):
        wanted = (find_headless_backend() if sys.platform.startswith("linux") else None) or "osmesa"
    else:
        wanted = "glfw"
    if wanted == "disabled":
        raise _unavailable("disabled", "OpenGL is turned off")

    if "mujoco" not in sys.modules:
        if wanted in _HEADLESS:
            _require_library(wanted)
        if not explicit:
            os.environ["MUJOCO_GL"] = wanted
            if wanted in _HEADLESS:
                os.environ.setdefault("PYOPENGL_PLATFORM", wanted)
        try:
            import mujoco  # noqa: F401
        except Exception as err:  # noqa: BLE001
            raise _unavailable(wanted, err) from None

    active = _active_backend()
    if active != wanted:
        if wanted in _HEADLESS and sys.platform.startswith("linux"):
            # Keep a headless backend that is already in use unless MUJOCO_GL asks for another one.
            if explicit or active not in _HEADLESS:
                _require_library(wanted)
                _switch_backend(wanted)
        elif active == "unavailable":
            raise _unavailable(wanted, "mujoco could not import its OpenGL backend")
    backend = _active_backend()

    if probe and backend not in _probed_ok:
        import mujoco

        tiny = mujoco.MjModel.from_xml_string("<mujoco/>")
        _make_renderer(tiny, 16, 16, max_geom=16).close()
        _probed_ok.add(backend)
    return backend


# --------------------------------------------------------------------------------------------------------------
# Video writing
# --------------------------------------------------------------------------------------------------------------


class VideoWriter:
    """Write RGB uint8 frames to an H.264 (yuv420p) MP4 with PyAV, atomically.

    Frames go to a temporary file in the destination directory, renamed onto ``path`` by :meth:`close`; if the
    ``with`` block raises (or :meth:`abort` is called), the temporary file is removed and ``path`` is untouched.
    yuv420p needs even dimensions: odd-sized frames are padded by one replicated row/column.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 30, *, crf: int = 20, preset: str = "fast"):
        if not (isinstance(fps, (int, float, Fraction)) and fps > 0 and math.isfinite(float(fps))):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (height, width) of the input frames
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def _open(self, height: int, width: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width = width + (width % 2)
        stream.height = height + (height % 2)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one ``[H, W, 3]`` uint8 RGB frame (all frames must have the same size)."""
        if self._closed:
            raise ValueError(f"{self.path}: VideoWriter is closed")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be [H, W, 3] uint8 RGB, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        if self._size is None:
            self._size = (height, width)
            self._open(height, width)
        elif self._size != (height, width):
            raise ValueError(f"frame size changed from {self._size} to {(height, width)}")
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")

        import av

        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames_written
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder, close the file and move it onto ``path``. Returns ``path``."""
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Discard everything written so far (removes the temporary file)."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
            self._container = None
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.abort()


# --------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------


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
