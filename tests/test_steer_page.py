"""The live steering app: the real-time loop, the goal stream (JSON lines over TCP) with malformed messages, the
viser page in-process on a free port, `interprior steer` without --headless, and a real browser (Debian's Chromium,
headless, driven by playwright) that loads the page, draws the scene and moves the target through the page's own
controls. One tiny prior is distilled from the bundled expert in a few seconds."""

import io
import json
import math
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from interprior.cli import main
from interprior.data.intermimic import load_clip
from interprior.steer.live import LiveLoop
from interprior.steer.page import SteerPage
from interprior.steer.steering import Steering
from interprior.steer.stream import GoalStream, is_loopback

pytestmark = pytest.mark.slow  # a live server, a real browser and a tiny prior: about a minute

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def prior_run(tiny_prior_run) -> Path:
    """The shared tiny Stage II run (conftest `tiny_prior_run`)."""
    return tiny_prior_run


class App:
    """The loop, the page and the goal stream of one scene (the box and the cylinder), on free ports."""

    def __init__(self, prior_run, record_dir, object_names=("box", "cylinder")):
        self.messages: list[tuple[str, str]] = []
        self.loop = LiveLoop(Steering(prior_run, object_names=list(object_names)),
                             report=lambda level, text: self.messages.append((level, text)))
        self.page = SteerPage(self.loop, port=0, record_dir=record_dir)
        self.stream = GoalStream(self.loop, port=0)
        self.loop.start(), self.page.start(), self.stream.start()
        self.sock = socket.create_connection(("127.0.0.1", self.stream.port), timeout=10)
        self.lines = self.sock.makefile("rb")

    def send(self, raw: bytes | str) -> dict:
        raw = raw.encode() if isinstance(raw, str) else raw
        self.sock.sendall(raw + b"\n")
        return json.loads(self.lines.readline())

    def steps_on(self, timeout: float = 10.0) -> None:
        """Wait until the loop has stepped twice more (it keeps stepping)."""
        start = self.loop.frame.number
        end = time.monotonic() + timeout
        while self.loop.frame.number < start + 2:
            assert time.monotonic() < end, "the loop stopped stepping"
            time.sleep(0.02)

    def close(self) -> None:
        self.sock.close()
        self.stream.stop()
        self.page.stop()
        self.loop.stop()


@pytest.fixture(scope="module")
def app(prior_run, tmp_path_factory):
    app = App(prior_run, tmp_path_factory.mktemp("takes"))
    yield app
    app.close()


def _wait_for(condition, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_app_serves_the_page_and_takes_goals_from_the_stream(app):
    assert app.page.port > 0 and app.page.url == f"http://127.0.0.1:{app.page.port}"
    with urllib.request.urlopen(app.page.url, timeout=10) as response:
        assert response.status == 200 and b"<html" in response.read().lower()
    app.send('{"reset": true}')
    start = app.loop.frame.state
    target = [start.object[0] + 1.0, start.object[1], start.object[2]]
    reply = app.send(json.dumps({"object": target, "object_yaw": 0.5, "seconds": 1.5}))
    assert reply["ok"] and reply["kind"] == "goal" and reply["goal"]["object"] == target
    assert app.loop.steering.goal.object_position == tuple(target) and app.loop.steering.goal.seconds == 1.5
    app.steps_on()
    state = app.send('{"state": true}')["state"]
    assert state["goal"]["object_position"] == target and state["steps"] > 0 and state["object_error"] > 0
    reply = app.send('{"pause": true}')
    assert reply["ok"] and reply["paused"] is True
    paused_at = app.loop.frame.state.steps
    time.sleep(0.3)
    assert app.loop.frame.state.steps == paused_at  # paused: no steps
    assert app.send('{"pause": false}')["paused"] is False
    app.steps_on()
    assert app.send('{"clear": true}')["ok"] and app.loop.steering.goal is None
    reply = app.send('{"reset": "cylinder"}')  # the other object of the scene becomes the active one
    assert reply["ok"] and reply["steps"] == 0 and app.loop.frame.state.object_name == "cylinder"
    assert app.send('{"reset": "box"}')["ok"] and app.loop.frame.state.object_name == "box"
    reply = app.send('{"subtask": "get_up"}')  # the prior's get-up token, as the page's "Get up first" box sets it
    assert reply["ok"] and reply["subtask"] == "get_up" and app.loop.steering.subtask == "get_up"
    app.steps_on()
    assert app.send('{"subtask": null}')["ok"] and app.loop.steering.subtask is None


BAD_MESSAGES = [
    (b'{"object": [1, 0', "not JSON"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'{"objct": [1, 0, 0.5]}', "unknown key 'objct'"),
    (b'{"object": "up"}', "object must be a list of numbers"),
    (b'{"left_hand": [1, 2]}', "must be 3 numbers"),
    (b'{"object": [NaN, 0, 0.5]}', "object must be finite"),
    (b'{"object": [50, 0, 0.5]}', "within 20 m"),
    (b'{"right_hand": [0.5, 0, 9]}', "height must be within"),
    (b'{"object": [1, 0, 0.5], "seconds": 0}', "seconds must be within"),
    (b'{"contacts": {"Nose": true}}', "'Nose' is not a contact body"),
    (b'{"reset": "chair"}', "unknown object 'chair'"),
    (b'{"clear": true, "reset": true}', "a message is one of"),
    (b"{}", "a message is one of"),
    (b'{"pause": "yes"}', "pause must be true or false"),
    (b'{"subtask": "dance"}', "subtask must be one of"),
    (b'\xff\xfe{"clear": true}', "not UTF-8"),
    (b'{"object": [' + b"0, " * 30000 + b"0]}", "longer than 64 KiB"),
]


@pytest.mark.parametrize("raw, problem", BAD_MESSAGES, ids=[p for _, p in BAD_MESSAGES])
def test_malformed_messages_get_an_error_and_the_loop_keeps_stepping(app, raw, problem):
    app.send('{"pause": false}')
    kept = app.send('{"object": [0.8, 0.1, 0.5], "seconds": 3}')["goal"]
    before = len(app.messages)
    reply = app.send(raw)
    assert reply["ok"] is False and problem in reply["error"], reply
    assert app.loop.steering.goal.to_dict() == {**kept, "object": tuple(kept["object"])}  # nothing changed
    assert any(problem in text and "message ignored" in text for _, text in app.messages[before:])  # stderr
    app.steps_on()
    assert app.send('{"state": true}')["ok"]  # the connection stays open


def test_a_divergence_and_a_fall_are_reported_and_reset_recovers(app):
    app.send('{"reset": true}')
    sim = app.loop.steering.env.sim
    with app.loop.lock:  # an absurd push: MuJoCo blows up, the episode restarts
        qpos, qvel = sim.backend.qpos().clone(), sim.backend.qvel().clone()
        sim.backend.reset(torch.tensor([0]), qpos, torch.full_like(qvel, 1e12))
    _wait_for(lambda: any("diverged" in e.text for e in app.loop.events()), what="the divergence report")
    assert math.isfinite(app.loop.frame.state.pelvis[2])
    with app.loop.lock:  # the pelvis on the floor: a fall
        qpos = sim.backend.qpos().clone()
        qpos[0, 2] = 0.2
        sim.backend.reset(torch.tensor([0]), qpos, torch.zeros_like(sim.backend.qvel()))
    _wait_for(lambda: any("fell" in e.text for e in app.loop.events()), what="the fall report")
    reply = app.send('{"reset": true}')
    assert reply["ok"] and reply["steps"] == 0 and not app.loop.frame.state.fallen
    app.steps_on()
    assert any(level == "error" and "diverged" in text for level, text in app.messages)


def test_the_record_button_saves_clips_and_a_video(app):
    app.send('{"reset": true}')
    app.page.new_recording()  # what the Record button does
    _wait_for(lambda: app.loop.frame.recording, what="recording")
    app.steps_on()
    app.page.new_recording()  # Stop and save
    _wait_for(lambda: any("recording saved" in e.text or "not saved" in e.text for e in app.loop.events()),
              timeout=120, what="the recording to be written")
    take = app.page.record_dir / "take_000"
    clips = sorted(take.glob("*.pt"))
    assert clips and load_clip(clips[0]).num_frames >= 3 and load_clip(clips[0]).object_name == "box"
    saved = [e.text for e in app.loop.events() if "recording saved" in e.text][-1]
    assert ("steer.mp4" in saved) == (take / "steer.mp4").is_file()


def test_steer_command_serves_the_page_and_records(prior_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("interprior.commands.steer.is_loopback", lambda host: False)  # as if on another address
    monkeypatch.setattr("interprior.commands.steer._video_available", lambda: False)  # clips only: quicker
    record = tmp_path / "rec"
    assert main(["steer", "--checkpoint", str(prior_run), "--port", "0", "--stream-port", "0", "--seconds", "1",
                 "--record", str(record)]) == 0
    captured = capsys.readouterr()
    assert "steer: page at http://127.0.0.1:" in captured.out and "goal stream at tcp://127.0.0.1:" in captured.out
    assert "warning: listening on 127.0.0.1, not only on this machine" in captured.err
    assert sorted(p.name for p in (record / "take_000").glob("*.pt")) == ["sub0_box_000.pt"]
    assert main(["steer", "--checkpoint", str(prior_run), "--script", "x.jsonl"]) == 2
    assert "--script plays with --headless" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


# --- a real browser -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _drawn_pixels(png: bytes) -> tuple[float, int]:
    """(grey-level standard deviation, pixels of the humanoid's skin and the object targets: warm colours)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
    warm = (rgb[..., 0] - rgb[..., 2] > 40) & (rgb[..., 0] > 120)
    return float(rgb.mean(axis=-1).std()), int(warm.sum())


def test_a_real_browser_shows_the_scene_and_moves_the_target(app, browser, tmp_path):
    app.send('{"reset": true}')
    app.send('{"clear": true}')
    page = browser.new_page(viewport={"width": 960, "height": 640})
    page.goto(app.page.url)
    canvas = page.locator("canvas").first
    canvas.wait_for(timeout=30000)
    page.get_by_text("steps/s").first.wait_for(timeout=30000)  # the readout is live
    # paused, the page renders only on changes: software WebGL then answers screenshots at once
    assert app.send('{"pause": true}')["paused"]
    std, warm = _wait_for(lambda: (s := _drawn_pixels(page.screenshot(clip=canvas.bounding_box())))[1] > 300 and s,
                          timeout=40, what="the humanoid on the canvas")
    assert std > 5.0 and warm > 300  # not blank: the floor grid and the humanoid's skin
    page.screenshot(path=str(tmp_path / "page.png"))
    _wait_for(lambda: app.page._episode == app.loop.frame.episode, what="the page to follow the reset")
    before = app.page.targets.object  # where the object was at the reset
    page.get_by_role("button", name="D", exact=True).click()  # the Keys panel: the target a step right
    goal = _wait_for(lambda: app.loop.steering.goal, what="the goal")
    assert math.dist(goal.object_position[:2], before[:2]) == pytest.approx(0.1, abs=1e-6)  # 10 cm sideways
    assert goal.object_position[2] == pytest.approx(before[2]) and goal.object_yaw is None
    # the message box: a malformed message is shown on the page, a good one moves the target 1 m
    box = page.locator('input[value*="object_yaw"]').element_handle()  # the message box (its example)
    box.fill('{"object": [1, 0, NaN]}')
    page.get_by_role("button", name="Send").click()
    page.get_by_text("object must be finite").first.wait_for(timeout=15000)
    x, y, z = goal.object_position
    box.fill(json.dumps({"object": [x + 1.0, y, z], "seconds": 2}))
    page.get_by_role("button", name="Send").click()
    moved = _wait_for(lambda: (g := app.loop.steering.goal) and g.object_position[0] == pytest.approx(x + 1.0) and g,
                      what="the 1 m target")
    assert moved.object_position[1:] == pytest.approx((y, z))
    _wait_for(lambda: app.page.targets.object[0] == pytest.approx(x + 1.0), what="the page to adopt the goal")
    page.keyboard.press("p")  # a hotkey: go on
    _wait_for(lambda: not app.loop.frame.paused, what="the pause key")
    app.steps_on()
    page.keyboard.press("p")
    _wait_for(lambda: app.loop.frame.paused, what="the pause key again")
    page.close()
    assert app.send('{"pause": false}')["ok"]


# --- the G1 -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def g1_prior_run(synth_data, tmp_path_factory) -> Path:
    """A tiny G1 expert and prior on standing G1 clips (tests/toy_body.py); skips where the G1 is not fetched."""
    from interprior.assets.g1 import g1_fetched

    if not g1_fetched():
        pytest.skip("the Unitree G1 is not fetched: run `interprior assets fetch g1`")
    from toy_body import g1_clips, tiny_body_expert, tiny_body_prior, write_clips

    before = torch.get_num_threads()
    root = tmp_path_factory.mktemp("g1_prior")
    clips_dir = write_clips(g1_clips(synth_data.objects_dir), root / "clips")
    expert = tiny_body_expert("g1", clips_dir, synth_data.objects_dir, root / "expert")
    tiny_body_prior(expert, root / "prior")
    torch.set_num_threads(before)
    return root / "prior"


def test_steer_names_the_body_of_the_prior(g1_prior_run, tmp_path, capsys):
    script = tmp_path / "goals.jsonl"
    script.write_text('{"t": 0, "object": [0.9, 0.2, 0.2]}\n{"end": 0.5}\n')
    assert main(["steer", "--embodiment", "g1", "--checkpoint", str(g1_prior_run), "--headless", "--script",
                 str(script), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["steps"] == 15
    assert main(["steer", "--embodiment", "full", "--checkpoint", str(g1_prior_run), "--headless", "--script",
                 str(script)]) != 0
    err = capsys.readouterr().err
    assert "--embodiment full: " in err and "a prior of the 'g1' body" in err


def test_the_g1_in_a_real_browser(g1_prior_run, browser, tmp_path):
    """The page of a G1 prior: the robot's meshes on the canvas, the live readout, and the page's keys move the
    object target."""
    app = App(g1_prior_run, tmp_path / "takes", object_names=("box",))
    try:
        page = browser.new_page(viewport={"width": 960, "height": 640})
        page.goto(app.page.url)
        canvas = page.locator("canvas").first
        canvas.wait_for(timeout=30000)
        page.get_by_text("steps/s").first.wait_for(timeout=30000)
        assert app.send('{"pause": true}')["paused"]
        empty = _drawn_pixels(page.screenshot(clip=canvas.bounding_box()))[0]
        std = _wait_for(lambda: (s := _drawn_pixels(page.screenshot(clip=canvas.bounding_box()))[0]) > 5.0 and s,
                        timeout=40, what="the G1 on the canvas")
        page.screenshot(path=str(tmp_path / "g1_page.png"))
        assert std > 5.0, (std, empty)
        _wait_for(lambda: app.page._episode == app.loop.frame.episode, what="the page to follow the reset")
        before = app.page.targets.object
        page.get_by_role("button", name="D", exact=True).click()
        goal = _wait_for(lambda: app.loop.steering.goal, what="the goal")
        assert math.dist(goal.object_position[:2], before[:2]) == pytest.approx(0.1, abs=1e-6)
        assert app.loop.steering.env.body.name == "g1"
        page.close()
    finally:
        app.close()
