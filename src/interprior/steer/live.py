"""Steering in real time: one background thread steps a `Steering` at its control rate (30 Hz, paced against the
wall clock), and every caller (the browser page, the goal stream, Python) changes it through a `LiveLoop`, under one
lock. There is one goal loop (the `Steering`'s) and one physics loop (this thread); the page only draws `frame`.

    loop = LiveLoop(Steering("runs/prior"))
    loop.start()
    loop.apply(make_goal(loop.steering.names, object_position=[1.0, 0.0, 0.6]))
    print(loop.frame.state.object_error, loop.frame.steps_per_s)
    loop.stop()

Problems never stop the loop: a fall is reported once (reset recovers), a diverged simulation restarts the episode
and is reported, an unexpected error in a step is reported and the episode restarted (the loop pauses if even that
fails). Reports go to stderr and to `events` (what the page shows).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interprior.errors import InterpriorError, RenderingUnavailable
from interprior.steer.goals import SteerGoal
from interprior.steer.recording import MIN_CLIP_FRAMES, Recording
from interprior.steer.steering import Steering, SteerState

BEHIND_LIMIT_S = 0.25  # further behind the wall clock than this, the loop drops the lost time instead of bursting
RATE_WINDOW = 31  # steps whose times give steps/s
VIDEO_NAME = "steer.mp4"


@dataclass(frozen=True)
class Frame:
    """What the loop shows after a step: the state, the scene's qpos (for drawing) and the loop's figures."""

    number: int  # counts every step and reset
    episode: int  # counts resets (yours and divergence restarts)
    state: SteerState
    qpos: np.ndarray
    steps_per_s: float  # control steps per wall-clock second, over the last second or so
    step_ms: float  # wall time of one `Steering.step` (physics + prior + goal), running mean
    paused: bool
    recording: bool


@dataclass(frozen=True)
class Event:
    number: int
    level: str  # "error", "warning" or "info"
    text: str


def _stderr(level: str, text: str) -> None:
    print(f"steer: {level}: {text}" if level != "info" else f"steer: {text}", file=sys.stderr, flush=True)


class LiveLoop:
    def __init__(self, steering: Steering, report=_stderr, realtime: bool = True):
        """`report(level, text)`: where events go besides `events` (stderr by default); `realtime`: pace at the
        control rate (False: as fast as the machine allows, for benchmarks)."""
        self.steering, self.report, self.realtime = steering, report, realtime
        self.lock = threading.RLock()
        self.paused = False
        self.episode = 0
        self._events: deque[Event] = deque(maxlen=200)
        self._event_number = 0
        self._number = 0
        self._times: deque[float] = deque(maxlen=RATE_WINDOW)
        self._step_ms = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writers: list[threading.Thread] = []
        self.frame = self._snapshot(steering.state())

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> "LiveLoop":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="interprior-steer-loop", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop stepping and wait for recordings being written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for writer in self._writers:
            writer.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- commands (any thread) ----------------------------------------------------------------------------------
    def apply(self, goal: SteerGoal) -> SteerState:
        """Follow a validated goal (`make_goal`) from now on."""
        with self.lock:
            self.steering.apply_goal(goal)
            return self._publish(self.steering.state())

    def clear(self) -> SteerState:
        with self.lock:
            self.steering.clear_goal()
            return self._publish(self.steering.state())

    def reset(self, object_name: str | None = None) -> SteerState:
        """Back to the start (of a clip of `object_name`: that object becomes the active one); `InterpriorError`
        for an unknown object."""
        with self.lock:
            state = self.steering.reset(object_name)
            self.episode += 1
            return self._publish(state)

    def set_subtask(self, name: str | None) -> SteerState:
        """The prior's subtask token from now on ("get_up"; None: off)."""
        with self.lock:
            self.steering.set_subtask(name)
            return self._publish(self.steering.state())

    def pause(self, paused: bool | None = None) -> bool:
        """Pause (True), go on (False) or toggle (None). -> paused now."""
        with self.lock:
            self.paused = (not self.paused) if paused is None else bool(paused)
            self._times.clear()
            self._publish(self.steering.state())
            return self.paused

    def state(self) -> SteerState:
        return self.frame.state

    # --- events -------------------------------------------------------------------------------------------------
    def event(self, level: str, text: str) -> Event:
        """Report `text` (stderr and `events`)."""
        with self.lock:
            self._event_number += 1
            event = Event(self._event_number, level, text)
            self._events.append(event)
        self.report(level, text)
        return event

    def events(self, after: int = 0) -> list[Event]:
        """Events numbered above `after` (the last 200 at most)."""
        with self.lock:
            return [e for e in self._events if e.number > after]

    # --- recording ----------------------------------------------------------------------------------------------
    def start_recording(self) -> None:
        with self.lock:
            self.steering.start_recording()
            self._publish(self.steering.state())
        self.event("info", "recording")

    def save_recording(self, folder: str | Path, video: bool = True) -> threading.Thread | None:
        """Stop recording and write its clips (and `steer.mp4` when `video`) to `folder`, in a thread of its own
        (the loop keeps stepping); the outcome is reported as an event. -> the writer thread (None: nothing
        recorded)."""
        with self.lock:
            recording = self.steering.stop_recording()
            self._publish(self.steering.state())
        if recording is None:
            self.event("error", "not recording; nothing to save")
            return None
        if not recording.written_episodes():
            self.event("error", f"the recording is too short ({recording.num_frames} frame"
                       f"{'s' if recording.num_frames != 1 else ''}; a clip needs {MIN_CLIP_FRAMES}); nothing saved")
            return None
        self.event("info", f"saving the recording ({recording.num_frames} frames{', with a video' if video else ''}) "
                   f"to {folder}")
        writer = threading.Thread(target=self._write, args=(recording, Path(folder), video), daemon=True,
                                  name="interprior-steer-writer")
        self._writers.append(writer)
        writer.start()
        return writer

    def _write(self, recording: Recording, folder: Path, video: bool) -> None:
        try:
            clips = recording.write_clips(folder)
        except (InterpriorError, OSError) as err:
            self.event("error", f"recording not saved: {err}")
            return
        saved = [f"{len(clips)} clip{'s' if len(clips) != 1 else ''}"]
        if video and recording.num_frames:
            try:
                recording.write_video(folder / VIDEO_NAME, self.steering.model)
                saved.append(VIDEO_NAME)
            except (RenderingUnavailable, ImportError, InterpriorError, OSError) as err:
                self.event("warning", f"video not written: {err}")
        self.event("info", f"recording saved: {' and '.join(saved)} in {folder}")

    # --- the loop -----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        dt = self.steering.dt
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            if not self.paused:
                self._tick()
            if not self.realtime:
                continue
            next_tick += dt
            delay = next_tick - time.perf_counter()
            if delay < -BEHIND_LIMIT_S:
                next_tick = time.perf_counter()
            elif delay > 0:
                self._stop.wait(delay)

    def _tick(self) -> None:
        with self.lock:
            if self.paused:
                return
            was_fallen = self.frame.state.fallen
            started = time.perf_counter()
            try:
                state = self.steering.step(1)
            except Exception as err:  # noqa: BLE001 - any failure of a step: report it, the page must not freeze
                self._recover(err)
                return
            now = time.perf_counter()
            self._step_ms = 0.9 * self._step_ms + 0.1 * 1000.0 * (now - started) if self._step_ms else \
                1000.0 * (now - started)
            self._times.append(now)
            if state.diverged:
                self.episode += 1
            self._publish(state)
        if state.diverged:
            self.event("error", "the simulation diverged (NaN or a blow-up); the episode restarted, goal cleared")
        if state.fallen and not was_fallen:
            self.event("warning", f"the humanoid fell at {state.time:.1f} s; reset (R) recovers")

    def _recover(self, err: Exception) -> None:
        """A step raised: report, restart the episode; pause when even the restart fails. Holds the lock."""
        self.event("error", f"a step failed ({type(err).__name__}: {err}); the episode restarts")
        try:
            self.steering.reset()
            self.episode += 1
            self._publish(self.steering.state())
        except Exception as again:  # noqa: BLE001
            self.paused = True
            self.event("error", f"the restart failed too ({type(again).__name__}: {again}); paused")

    def _publish(self, state: SteerState) -> SteerState:
        self.frame = self._snapshot(state)
        return state

    def _snapshot(self, state: SteerState) -> Frame:
        self._number += 1
        times = self._times
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return Frame(number=self._number, episode=self.episode, state=state, qpos=self.steering.qpos(),
                     steps_per_s=rate, step_ms=self._step_ms, paused=self.paused,
                     recording=self.steering.record() is not None)


def next_take(folder: str | Path) -> Path:
    """`folder/take_NNN`: the first that does not exist yet."""
    folder = Path(folder)
    n = 0
    while (folder / f"take_{n:03d}").exists():
        n += 1
    return folder / f"take_{n:03d}"
