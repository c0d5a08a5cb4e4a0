"""Headless OpenGL backend selection for MuJoCo's offscreen renderer.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported. This module imports
``mujoco`` lazily: call :func:`ensure_gl` and it selects a headless backend first (``osmesa`` when there is no
``DISPLAY``; an explicit ``MUJOCO_GL`` is respected). If ``mujoco`` was already imported with a backend that cannot
work here (GLFW without a display), it switches the backend in place when PyOpenGL allows it, and otherwise raises
:class:`RenderingUnavailable` with a one-line fix. Rendering itself lives in `interprior.viz.render`.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
import warnings
from typing import TYPE_CHECKING

from interprior.errors import RenderingUnavailable

if TYPE_CHECKING:  # mujoco must not be imported before ensure_gl() has chosen a backend
    import mujoco

__all__ = ["ensure_gl", "find_headless_backend"]

_HEADLESS = ("osmesa", "egl")
_GLFW_ALIASES = ("", "glfw", "enable", "enabled", "on", "true", "1", "glx")
_DISABLED_ALIASES = ("disable", "disabled", "off", "false", "0")

# Backends whose GL context has been created successfully in this process (probe cache).
_probed_ok: set[str] = set()


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
