"""Offscreen rendering (interprior.viz.render): MP4 output, markers, lighting, tracking camera, failure messages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

av = pytest.importorskip("av")

from interprior.errors import RenderingUnavailable  # noqa: E402
from interprior.viz import gl_backend, render  # noqa: E402  (no mujoco import; ensure_gl picks the backend first)

SCENE_XML = """
<mujoco model="render_test">
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".2 .3 .4" rgb2=".1 .15 .2" width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance=".1"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 .1" material="grid"/>
    <body name="humanoid" pos="0 0 0.85">
      <freejoint/>
      <geom name="torso" type="capsule" size=".15 .6" rgba=".8 .6 .4 1"/>
    </body>
    <body name="box" pos=".8 .3 .2">
      <freejoint/>
      <geom name="box" type="box" size=".2 .2 .2" rgba=".8 .2 .2 1"/>
    </body>
  </worldbody>
</mujoco>
"""

W, H = 320, 240
GREEN = (0.1, 0.9, 0.2, 0.8)
MAGENTA = (0.9, 0.1, 0.9, 0.8)


@pytest.fixture(scope="module")
def gl():
    """The GL backend in use; skips the module's rendering tests when offscreen GL really is unavailable here."""
    try:
        return render.ensure_gl()
    except RenderingUnavailable as err:
        pytest.skip(f"offscreen OpenGL unavailable on this machine: {err}")


@pytest.fixture(scope="module")
def mujoco(gl):
    import mujoco

    return mujoco


@pytest.fixture
def model(mujoco):
    return mujoco.MjModel.from_xml_string(SCENE_XML)


def moving_qpos(model, T, dx=0.5):
    q = np.tile(model.qpos0, (T, 1))
    q[:, 0] += np.linspace(0.0, dx, T)
    return q


def body_markers(q):
    """Reference "body" points around the capsule: [T, 3, 3]."""
    offsets = np.array([[0.0, 0.0, 0.85], [0.0, 0.35, 0.2], [0.0, -0.35, 0.2]])
    return q[:, None, 0:3] + offsets[None]


def strongly(frame, channel_mask):
    """Pixels whose channels in `channel_mask` are bright-ish and clearly dominate the others (a colour test that
    survives dim headlight-only lighting and H.264 chroma subsampling)."""
    f = frame.astype(np.float32)
    on = [c for c in range(3) if channel_mask[c]]
    off = [c for c in range(3) if not channel_mask[c]]
    lo_on = np.min(f[..., on], axis=-1)
    hi_off = np.max(f[..., off], axis=-1)
    return (lo_on > 50) & (lo_on > 1.8 * hi_off + 5)


def capsule_mask(frame):
    """The tan capsule (rgba .8 .6 .4): red > blue clearly, green in between; the red box has little green."""
    r, g, b = (frame[..., c].astype(np.float32) for c in range(3))
    return (r > 50) & (r > 1.5 * b) & (g > 0.55 * r) & (g < 0.95 * r)


def decode(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_write_video_with_markers(model, tmp_path):
    T = 10
    q = moving_qpos(model, T)
    box_ref = q[:, None, 7:10] + np.array([0.0, 0.0, 0.25])  # a reference object point above the box
    out = render.write_video(
        tmp_path / "clip.mp4",
        model,
        q,
        width=W,
        height=H,
        fps=30,
        markers=[(body_markers(q), GREEN, 0.08), (box_ref, MAGENTA, 0.08)],
        overlay_text=lambda t: f"t={t}",
    )
    assert out == tmp_path / "clip.mp4" and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left behind

    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 30
    frames = decode(out)
    assert len(frames) == T
    assert all(f.shape == (H, W, 3) for f in frames)
    for f in frames:
        assert f.std() > 10.0, "frame is nearly uniform"
        assert f.mean() > 10.0, "frame is nearly black"
        assert strongly(f, (0, 1, 0)).sum() > 20, "green body markers not visible"
        assert strongly(f, (1, 0, 1)).sum() > 20, "magenta object marker not visible"

    # Without markers there is no green in this scene: the green above really comes from the markers.
    plain = next(render.render_frames(model, q[:1], width=W, height=H))
    assert strongly(plain, (0, 1, 0)).sum() == 0


def test_render_frames_plain_array_markers_and_shapes(model):
    q = moving_qpos(model, 3)
    frames = list(render.render_frames(model, q, width=W, height=H, markers=body_markers(q), marker_radius=0.08))
    assert len(frames) == 3
    for f in frames:
        assert f.dtype == np.uint8 and f.shape == (H, W, 3)
        assert strongly(f, (0, 1, 0)).sum() > 20  # default marker colour is green


def test_frames_are_lit_even_without_lights(mujoco):
    # No <light> and the headlight switched off: render_frames turns the headlight on for the duration.
    xml = SCENE_XML.replace("<mujoco model=\"render_test\">", "<mujoco><visual><headlight active=\"0\"/></visual>")
    m = mujoco.MjModel.from_xml_string(xml)
    assert m.nlight == 0 and m.vis.headlight.active == 0
    frame = next(render.render_frames(m, m.qpos0[None], width=W, height=H))
    assert frame.mean() > 10.0 and frame.std() > 10.0
    assert m.vis.headlight.active == 0  # model restored


def test_tracking_camera_keeps_root_centred(model):
    # Move the humanoid 3 m; a rigidly tracking camera keeps it in the middle of the image.
    q = moving_qpos(model, 2, dx=3.0)
    frames = list(
        render.render_frames(model, q, width=W, height=H, camera=render.TrackingCamera(smoothing=0.0))
    )
    for f in frames:
        tan = capsule_mask(f)
        assert tan.sum() > 100, "capsule not visible"
        cx = np.nonzero(tan)[1].mean()
        assert abs(cx - W / 2) < W * 0.1


def test_large_frames_grow_offscreen_buffer(model):
    # Default offscreen buffer is 640x480; bigger frames must still work and the model is left unchanged.
    before = (model.vis.global_.offwidth, model.vis.global_.offheight)
    frame = next(render.render_frames(model, model.qpos0[None], width=800, height=600))
    assert frame.shape == (600, 800, 3)
    assert (model.vis.global_.offwidth, model.vis.global_.offheight) == before


def test_argument_validation(model):
    q = moving_qpos(model, 4)
    with pytest.raises(ValueError, match="qpos_seq"):
        render.render_frames(model, q[:, :5])
    with pytest.raises(ValueError, match="markers"):
        render.render_frames(model, q, markers=np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="overlay_text"):
        render.render_frames(model, q, overlay_text=["a", "b"])


def test_renderer_failure_raises_rendering_unavailable(model, monkeypatch, tmp_path):
    mujoco = pytest.importorskip("mujoco")

    def broken_renderer(*args, **kwargs):
        raise RuntimeError("Failed to create OSMesa GL context.\nsecond line of a traceback-ish message")

    monkeypatch.setattr(mujoco, "Renderer", broken_renderer)
    monkeypatch.setattr(gl_backend, "_probed_ok", set())  # force ensure_gl to probe again (restored afterwards)

    with pytest.raises(RenderingUnavailable) as info:
        render.ensure_gl()
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install libosmesa6" in message and "MUJOCO_GL=osmesa" in message and "egl" in message
    assert "Failed to create OSMesa GL context" in message

    with pytest.raises(RenderingUnavailable):
        render.write_video(tmp_path / "never.mp4", model, moving_qpos(model, 3), width=W, height=H)
    assert list(tmp_path.iterdir()) == []  # neither the video nor its temp file


HIDE_LIBS = """
import ctypes, ctypes.util
HIDDEN = {hidden!r}
_find = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if name.lower() in HIDDEN else _find(name)
_init = ctypes.CDLL.__init__
def _cdll(self, name, *args, **kwargs):
    base = str(name or "").rsplit("/", 1)[-1].lower()
    if any(base.startswith("lib" + h + ".so") for h in HIDDEN):
        raise OSError(f"{{name}}: cannot open shared object file: No such file or directory")
    _init(self, name, *args, **kwargs)
ctypes.CDLL.__init__ = _cdll
"""


def run_without_libs(hidden, body, mujoco_gl=None):
    """Run `body` in a fresh interpreter with no DISPLAY where the given GL libraries cannot be loaded."""
    script = HIDE_LIBS.format(hidden=tuple(hidden)) + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "PYOPENGL_PLATFORM", "MUJOCO_GL")}
    if mujoco_gl:
        env["MUJOCO_GL"] = mujoco_gl
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


ENSURE_GL = """
from interprior.errors import RenderingUnavailable
from interprior.viz.render import ensure_gl
try:
    print("BACKEND:", ensure_gl())
except RenderingUnavailable as err:
    print("UNAVAILABLE:", err)
"""


def test_missing_libosmesa_is_reported_in_one_line():
    """MUJOCO_GL=osmesa with libOSMesa really missing (hidden from ctypes in a fresh interpreter)."""
    lines = run_without_libs(["osmesa"], ENSURE_GL, mujoco_gl="osmesa")
    assert len(lines) == 1 and lines[0].startswith("UNAVAILABLE:"), lines
    assert "libOSMesa" in lines[0] and "apt-get install libosmesa6" in lines[0] and "MUJOCO_GL=egl" in lines[0]


def test_no_gl_library_leaves_mujoco_importable():
    """No DISPLAY, no MUJOCO_GL, neither libOSMesa nor libEGL: rendering is refused, simulation still imports."""
    body = ENSURE_GL + """
import os
print("MUJOCO_GL:", os.environ.get("MUJOCO_GL"))
import mujoco
m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><body><freejoint/><geom size='.1'/></body></worldbody></mujoco>")
d = mujoco.MjData(m); mujoco.mj_step(m, d)
print("SIM OK")
"""
    lines = run_without_libs(["osmesa", "egl"], body)
    assert lines[0].startswith("UNAVAILABLE:") and "apt-get install libosmesa6" in lines[0], lines
    assert lines[1:] == ["MUJOCO_GL: None", "SIM OK"]


def test_egl_is_used_when_only_egl_is_present():
    lines = run_without_libs(["osmesa"], ENSURE_GL)
    # Where EGL works without a GPU (Mesa) this renders with egl; elsewhere the failure names EGL.
    assert lines[0] in ("BACKEND: egl",) or (lines[0].startswith("UNAVAILABLE:") and "egl" in lines[0]), lines


def test_switches_backend_when_mujoco_was_imported_first(gl):
    """mujoco imported before ensure_gl (so it picked GLFW, useless without a display): switched in place."""
    body = """
import importlib
import numpy as np
import mujoco
from interprior.viz import render


def gl_context_module():  # the module of the GLContext class mujoco.Renderer instantiates (place varies by version)
    for name in ("mujoco.rendering.classic.gl_context", "mujoco.gl_context"):
        try:
            return importlib.import_module(name).GLContext.__module__
        except (ImportError, AttributeError):
            continue


print("BEFORE:", gl_context_module())
print("BACKEND:", render.ensure_gl())
m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom type='sphere' size='.5'/></worldbody></mujoco>")
frame = next(render.render_frames(m, m.qpos0[None], width=64, height=48, camera="free"))
print("MEAN>5:", bool(frame.mean() > 5))
"""
    lines = run_without_libs([], body)
    assert lines[0].startswith("BEFORE: mujoco.glfw") and lines[1] in ("BACKEND: osmesa", "BACKEND: egl") and lines[2] == "MEAN>5: True"


# ---- VideoWriter on synthetic frames (no GL needed) -------------------------------------------------------


def test_video_writer_pads_odd_sizes(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "odd.mp4"
    with render.VideoWriter(path, fps=25) as writer:
        for _ in range(5):
            writer.write(rng.integers(0, 255, size=(21, 33, 3), dtype=np.uint8))
    frames = decode(path)
    assert len(frames) == 5 and frames[0].shape == (22, 34, 3)


def test_video_writer_is_atomic_on_error(tmp_path):
    path = tmp_path / "sub" / "broken.mp4"
    with pytest.raises(KeyError):
        with render.VideoWriter(path, fps=30) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise KeyError("boom")
    assert list(path.parent.iterdir()) == []


def test_video_writer_replaces_existing_file_only_on_success(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="frame size changed"):
        with render.VideoWriter(path) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.write(np.zeros((18, 16, 3), np.uint8))
    assert path.read_bytes() == b"old"
    with render.VideoWriter(path) as writer:
        writer.write(np.full((16, 16, 3), 128, np.uint8))
    assert len(decode(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_video_writer_rejects_empty_and_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        with render.VideoWriter(tmp_path / "empty.mp4"):
            pass
    with pytest.raises(ValueError, match="uint8"):
        with render.VideoWriter(tmp_path / "bad.mp4") as writer:
            writer.write(np.zeros((16, 16, 3), np.float32))
    assert list(tmp_path.iterdir()) == []
