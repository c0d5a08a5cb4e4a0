"""The browser page of `interprior steer`: a viser web app that shows the simulated humanoid and the objects
(mjviser draws the MuJoCo scene) and the goal (a ghost of the object at its target, spheres at the wrist targets, a
line for the pelvis heading), live, and steers a `LiveLoop` through gizmos, toggles, keys and a message box
(`interprior.steer.page_controls`). The page only draws and edits targets: the goal loop is the `Steering`'s and
the physics loop the `LiveLoop`'s.

The scene is drawn in the world frame from the loop's latest frame by a thread of the page (at most 30 times a
second). Goals from elsewhere (the goal stream) are adopted: the gizmos jump to them. A target the goal checks reject
(out of range, NaN) is reported on the page and stderr and the gizmos go back to the last accepted targets.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from pathlib import Path

import mujoco
import numpy as np
import viser
from mjviser import ViserMujocoScene
from mjviser.conversions import merge_geoms

from interprior.errors import InterpriorError
from interprior.steer.goals import make_goal
from interprior.steer.live import Frame, LiveLoop, next_take
from interprior.steer.page_controls import Controls
from interprior.steer.targets import Targets, events_text, readout, yaw_of, yaw_quat

PAGE_HZ = 30.0  # scene updates per second at most
READOUT_EVERY = 6  # scene updates per readout update (5 a second)
OBJECT_COLOR = (242, 140, 25)
HAND_COLOR = (51, 115, 242)
HEADING_COLOR = (40, 170, 80)


class SteerPage:
    def __init__(self, loop: LiveLoop, host: str = "127.0.0.1", port: int = 8080,
                 record_dir: str | Path = "steer_recordings", video: bool = True):
        """Starts serving at once (`url`); `start()` starts drawing. `record_dir`: where the Record button saves
        (a new `take_NNN` folder each time); `video`: write an MP4 with the clips."""
        self.loop, self.steering = loop, loop.steering
        self.record_dir, self.video = Path(record_dir), video
        self.server = viser.ViserServer(host=host, port=port, label="interprior steer", verbose=False)
        self.server.request_share_url = _no_share_url  # never tunnel the page out through viser's share service
        self.server.gui.configure_theme(show_share_button=False, show_logo=False, control_width="medium")
        self.model = copy.deepcopy(self.steering.model)  # mjviser changes the model's visual settings
        self.data = mujoco.MjData(self.model)
        self.scene = ViserMujocoScene(self.server, self.model, num_envs=1)
        self.scene.camera_tracking_enabled = False  # world frame: the goal markers are placed in it
        self.lock = threading.RLock()
        frame = loop.frame
        self.targets = Targets.at(frame.state)
        self.accepted = self.targets.copy()
        self._sent = None  # the goal the page set last
        self._episode = frame.episode
        self._draws: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._place_camera(frame)
        self._add_markers()
        self.controls = Controls(self)
        self.sync(gizmos=True)

    @property
    def port(self) -> int:
        return self.server.get_port()

    @property
    def url(self) -> str:
        host = self.server.get_host()
        host = "localhost" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    def start(self) -> "SteerPage":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="interprior-steer-page", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.server.stop()

    # --- goals ----------------------------------------------------------------------------------------------
    def send(self, source: str, gizmos: bool = True) -> bool:
        """Ask for the page's targets (what is given of them; nothing given: no goal). A rejected target is
        reported and the targets go back to the last accepted ones. `gizmos`: move the gizmos to the targets
        (not while one is being dragged)."""
        with self.lock:
            kwargs = self.targets.goal_kwargs(self.steering.hand_names)
            try:
                if kwargs:
                    goal = make_goal(self.steering.names, **kwargs)
                    self.loop.apply(goal)
                    self._sent = goal
                else:
                    self.loop.clear()
                    self._sent = None
            except InterpriorError as err:
                self.loop.event("error", f"page ({source}): {err}; target not changed")
                self.targets = self.accepted.copy()
                self.sync(gizmos=True)
                return False
            self.accepted = self.targets.copy()
            self.sync(gizmos=gizmos)
            return True

    def sync(self, gizmos: bool = True) -> None:
        """Show the targets on the gizmos and in the page's inputs."""
        with self.lock:
            t = self.targets
            if gizmos:
                self.object_gizmo.position, self.object_gizmo.wxyz = t.object, yaw_quat(t.object_yaw)
                self.hand_gizmos[0].position, self.hand_gizmos[1].position = t.left, t.right
            self.controls.show(t)

    def new_recording(self) -> None:
        """Start recording, or stop and save the recording (a new take folder)."""
        if self.loop.frame.recording:
            self.loop.save_recording(next_take(self.record_dir), video=self.video)
        else:
            self.loop.start_recording()

    # --- drawing --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        drawn, ticks = 0, 0
        while not self._stop.wait(1.0 / PAGE_HZ):
            ticks += 1
            try:
                frame = self._follow()
                if frame.number != drawn:
                    self._draw(frame)
                    drawn = frame.number
                if ticks % READOUT_EVERY == 0:  # also while paused: messages keep showing
                    self.controls.update(frame, readout(frame, self.page_fps, self.steering.falls,
                                                         self.steering.divergences),
                                         events_text(self.loop.events()))
            except Exception as err:  # noqa: BLE001 - a drawing problem is reported; the simulation goes on
                self.loop.event("error", f"page: drawing failed ({type(err).__name__}: {err})")
                self._stop.wait(1.0)

    @property
    def page_fps(self) -> float:
        times = self._draws
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def _draw(self, frame: Frame) -> None:
        self.data.qpos[:] = frame.qpos
        mujoco.mj_kinematics(self.model, self.data)
        self.scene.update_from_mjdata(self.data)
        goal = frame.state.goal
        for name, ghost in self.ghosts.items():
            ghost.visible = (name == frame.state.object_name and goal is not None
                             and (goal.object_position is not None or goal.object_yaw is not None))
        for sphere, point in zip(self.hand_spheres, (goal.left_hand, goal.right_hand) if goal else (None, None),
                                 strict=True):
            sphere.visible = point is not None
        heading = None if goal is None else goal.pelvis_heading
        self.heading_line.visible = heading is not None
        if heading is not None:
            x, y, _ = frame.state.pelvis
            end = (x + 0.6 * np.cos(heading), y + 0.6 * np.sin(heading), 0.02)
            self.heading_line.points = np.array([[[x, y, 0.02], end]], dtype=np.float32)
        now = time.perf_counter()
        self._draws = [t for t in self._draws[-30:] if now - t < 2.0] + [now]

    def _follow(self) -> Frame:
        """Keep the targets with the simulation: at a new episode they restart where things are; a goal set
        elsewhere is adopted. -> the frame to draw."""
        with self.lock:  # the frame read under the lock holds every goal the page has sent
            frame = self.loop.frame
            state = frame.state
            if frame.episode != self._episode:
                self._episode = frame.episode
                self.targets = Targets.at(state, previous=self.targets)
                self.accepted, self._sent = self.targets.copy(), state.goal
                self.sync(gizmos=True)
            elif state.goal is not self._sent:
                self._sent = state.goal
                if state.goal is not None:
                    self.targets.adopt(state.goal, self.steering.hand_names)
                    self.accepted = self.targets.copy()
                    self.sync(gizmos=True)
        return frame

    # --- scene ----------------------------------------------------------------------------------------------
    def _place_camera(self, frame: Frame) -> None:
        s = frame.state
        look = np.array([(s.pelvis[0] + s.object[0]) / 2 + 0.4, (s.pelvis[1] + s.object[1]) / 2, 0.6])
        camera = self.server.initial_camera
        camera.look_at = tuple(look)
        camera.position = tuple(look + np.array([1.2, -2.6, 1.1]))
        camera.up = (0.0, 0.0, 1.0)

    def _add_markers(self) -> None:
        """Gizmos (object: position and yaw; wrists: position) with the goal markers under them."""
        scene, t = self.server.scene, self.targets
        self.object_gizmo = scene.add_transform_controls(
            "/goal/object", scale=0.45, line_width=3.0, depth_test=False, disable_sliders=True,
            rotation_limits=((0.0, 0.0), (0.0, 0.0), (-1000.0, 1000.0)), position=t.object,
            wxyz=yaw_quat(t.object_yaw))
        self.ghosts = {}
        for name in self.steering.names.objects:
            mesh = _object_mesh(self.model, name)
            if mesh is not None:
                self.ghosts[name] = scene.add_mesh_simple(
                    f"/goal/object/ghost_{name}", np.asarray(mesh.vertices, dtype=np.float32),
                    np.asarray(mesh.faces, dtype=np.uint32), color=OBJECT_COLOR, opacity=0.45, visible=False)
        self.hand_gizmos, self.hand_spheres = [], []
        for side, point in (("left", t.left), ("right", t.right)):
            gizmo = scene.add_transform_controls(f"/goal/{side}_hand", scale=0.22, depth_test=False,
                                                 disable_rotations=True, disable_sliders=True, position=point)
            self.hand_gizmos.append(gizmo)
            self.hand_spheres.append(scene.add_icosphere(f"/goal/{side}_hand/marker", radius=0.045,
                                                         color=HAND_COLOR, opacity=0.7, visible=False))
        self.heading_line = scene.add_line_segments("/goal/heading", np.zeros((1, 2, 3), dtype=np.float32),
                                                    colors=HEADING_COLOR, thickness=0.025, visible=False)
        self.object_gizmo.on_update(self._on_object_gizmo)
        self.hand_gizmos[0].on_update(lambda event: self._on_hand_gizmo(event, 0))
        self.hand_gizmos[1].on_update(lambda event: self._on_hand_gizmo(event, 1))

    def _on_object_gizmo(self, event) -> None:
        gizmo = event.target
        if event.phase == "start":
            return
        with self.lock:
            t = self.targets
            yaw = yaw_of(gizmo.wxyz)
            t.give_yaw = t.give_yaw or abs(yaw - t.object_yaw) > 1e-4
            t.object, t.object_yaw, t.give_object = tuple(float(v) for v in gizmo.position), yaw, True
            self.send("object gizmo", gizmos=_ended(event))

    def _on_hand_gizmo(self, event, side: int) -> None:
        if event.phase == "start":
            return
        with self.lock:
            point = tuple(float(v) for v in event.target.position)
            if side == 0:
                self.targets.left = point
            else:
                self.targets.right = point
            self.targets.give_hands = True
            self.send(f"{('left', 'right')[side]} hand gizmo", gizmos=_ended(event))


def _ended(event) -> bool:
    """Whether a gizmo event ends its drag (the gizmo may then be moved from here)."""
    return getattr(event, "phase", "end") == "end"


def _no_share_url(*_args, **_kwargs) -> None:
    return None


def _object_mesh(model: mujoco.MjModel, name: str):
    """The object's geoms as one trimesh in its body frame (None if the scene has no such object body)."""
    pattern = re.compile(rf"object\d+_{re.escape(name)}")
    for body in range(model.nbody):
        if pattern.fullmatch(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body) or ""):
            geoms = [int(g) for g in np.nonzero(model.geom_bodyid == body)[0]]
            return merge_geoms(model, geoms) if geoms else None
    return None
