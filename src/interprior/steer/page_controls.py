"""The page's panel and keys: readouts, goal toggles and target inputs, key buttons and hotkeys, the simulation
buttons (active object, reset, pause, record) and a message box that takes the goal stream's JSON messages.

Keys (viser hotkeys; also buttons in the "Keys" folder and entries of viser's command palette): W/A/S/D move the
active target (the object's, or a wrist's) 10 cm away from / left of / towards / right of the view; Q/E turn the
object target 15° left / right; Space raises the active target 40 cm, or lowers it again; R resets; P pauses.
viser's camera also flies with W/A/S/D/Q/E (its own keys): the view glides along with the target.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from interprior.errors import InterpriorError
from interprior.steer.live import Frame
from interprior.steer.messages import handle_message
from interprior.steer.targets import CONTACT_MODES, KEY_TARGETS, Targets, forward_of

if TYPE_CHECKING:
    from interprior.steer.page import SteerPage

KEYS = ("W", "A", "S", "D", "Q", "E", "Space")
KEY_HELP = ("**W/A/S/D** move the active target, **Q/E** turn the object target, **Space** raises / lowers the "
            "active target, **R** resets, **P** pauses. Drag the gizmos for the object target (arrows: position, "
            "ring: yaw) and the wrist targets.")
EXAMPLE_MESSAGE = '{"object": [1.0, 0.0, 0.6], "object_yaw": 0.5, "seconds": 2}'


class Controls:
    def __init__(self, page: "SteerPage"):
        self.page = page
        gui, t = page.server.gui, page.targets
        names = page.steering.names
        with gui.add_folder("Readout"):
            self.readout = gui.add_markdown("starting …")
            self.events = gui.add_markdown("no messages")
        with gui.add_folder("Goal"):
            self.give_object = gui.add_checkbox("Object position", initial_value=t.give_object)
            self.give_yaw = gui.add_checkbox("Object yaw", initial_value=t.give_yaw)
            self.give_hands = gui.add_checkbox("Hands", initial_value=t.give_hands)
            self.contacts = gui.add_dropdown("Contacts", CONTACT_MODES, initial_value=t.contacts,
                                             hint="both wrists touch the object, keep off it, or no contact goal")
            self.give_heading = gui.add_checkbox("Pelvis heading", initial_value=t.give_heading,
                                                 visible=names.heading)
            self.seconds = gui.add_slider("Seconds to reach", min=0.2, max=10.0, step=0.1, initial_value=t.seconds)
            self.object = gui.add_vector3("Object target", t.object, step=0.05)
            self.yaw = gui.add_number("Object yaw (°)", math.degrees(t.object_yaw), step=5.0)
            self.left = gui.add_vector3("Left hand target", t.left, step=0.05)
            self.right = gui.add_vector3("Right hand target", t.right, step=0.05)
            self.heading = gui.add_slider("Pelvis heading (°)", min=-180.0, max=180.0, step=5.0,
                                          initial_value=math.degrees(t.heading), visible=names.heading)
            self.clear = gui.add_button("Clear goal")
        with gui.add_folder("Keys"):
            self.keys = gui.add_dropdown("Keys move", KEY_TARGETS, initial_value=t.keys)
            self.key_buttons = gui.add_button_group("Keys", KEYS)
            gui.add_markdown(KEY_HELP)
        with gui.add_folder("Simulation"):
            self.active = gui.add_dropdown("Active object", names.objects, initial_value=page.steering.object_name)
            self.reset = gui.add_button("Reset (R)")
            self.get_up = gui.add_checkbox("Get up first", initial_value=page.steering.subtask == "get_up",
                                           hint="the prior's get-up token: stand up, then go on to the goal")
            self.pause = gui.add_button("Pause (P)")
            self.record = gui.add_button("Record", hint=f"clips + MP4 in {page.record_dir}/take_NNN")
        with gui.add_folder("Message"):
            self.message = gui.add_text("JSON", initial_value=EXAMPLE_MESSAGE)
            self.send = gui.add_button("Send")
        self._connect_goal()
        self._connect_buttons()
        self._hotkeys()

    # --- from the page to the targets -----------------------------------------------------------------------
    def _connect_goal(self) -> None:
        def edit(name: str, convert=lambda v: v, turn_on: str | None = None):
            def callback(event) -> None:
                if event.client is None:  # our own `show`
                    return
                with self.page.lock:
                    setattr(self.page.targets, name, convert(event.target.value))
                    if turn_on:
                        setattr(self.page.targets, turn_on, True)
                    self.page.send(f"{event.target.label}")
            return callback

        point = lambda v: tuple(float(x) for x in v)  # noqa: E731
        self.give_object.on_update(edit("give_object", bool))
        self.give_yaw.on_update(edit("give_yaw", bool))
        self.give_hands.on_update(edit("give_hands", bool))
        self.contacts.on_update(edit("contacts", str))
        self.give_heading.on_update(edit("give_heading", bool))
        self.seconds.on_update(edit("seconds", float))
        self.object.on_update(edit("object", point, "give_object"))
        self.yaw.on_update(edit("object_yaw", lambda v: math.radians(float(v)), "give_yaw"))
        self.left.on_update(edit("left", point, "give_hands"))
        self.right.on_update(edit("right", point, "give_hands"))
        self.heading.on_update(edit("heading", lambda v: math.radians(float(v)), "give_heading"))

        @self.keys.on_update
        def _(event) -> None:
            if event.client is not None:
                with self.page.lock:
                    self.page.targets.keys = str(event.target.value)

        @self.clear.on_click
        def _(_event) -> None:
            with self.page.lock:
                t = self.page.targets
                t.give_object = t.give_yaw = t.give_hands = t.give_heading = False
                t.contacts = "not given"
                self.page.send("Clear goal")

    def _connect_buttons(self) -> None:
        loop = self.page.loop
        self.key_buttons.on_click(lambda event: self.key(event.target.value, event.client))
        self.reset.on_click(lambda _event: loop.reset())
        self.get_up.on_update(lambda _event: loop.set_subtask("get_up" if self.get_up.value else None))
        self.pause.on_click(lambda _event: loop.pause())
        self.record.on_click(lambda _event: self.page.new_recording())

        @self.active.on_update
        def _(event) -> None:
            if event.client is None or event.target.value == loop.frame.state.object_name:
                return
            try:
                loop.reset(str(event.target.value))
            except InterpriorError as err:
                loop.event("error", f"page: {err}")

        @self.send.on_click
        def _(_event) -> None:
            reply = handle_message(loop, self.message.value, source="page message")
            if reply["ok"]:
                loop.event("info", f"page message: {reply['kind']} done")

    def _hotkeys(self) -> None:
        gui, loop = self.page.server.gui, self.page.loop
        labels = {"W": "Target away", "A": "Target left", "S": "Target nearer", "D": "Target right",
                  "Q": "Turn object target left", "E": "Turn object target right", "space": "Raise / lower target"}
        for key, label in labels.items():
            command = gui.add_command(label, hotkey=key)
            command.on_trigger(lambda event, key=key: self.key(key, event.client))
        gui.add_command("Reset", hotkey="R").on_trigger(lambda _event: loop.reset())
        gui.add_command("Pause / go on", hotkey="P").on_trigger(lambda _event: loop.pause())

    def key(self, key: str, client) -> None:
        """A key's move of the targets (`Targets.move`), relative to `client`'s view."""
        key = "space" if key.lower() == "space" else key.upper()
        forward = (1.0, 0.0)
        if client is not None:
            forward = forward_of(client.camera.position, client.camera.look_at)
        with self.page.lock:
            self.page.targets.move(key, forward)
            self.page.send(f"key {key}")

    # --- from the targets and the simulation to the page ----------------------------------------------------
    def show(self, t: Targets) -> None:
        """Put the targets into the inputs (their callbacks ignore these updates)."""
        self.give_object.value, self.give_yaw.value, self.give_hands.value = t.give_object, t.give_yaw, t.give_hands
        self.contacts.value, self.give_heading.value, self.seconds.value = t.contacts, t.give_heading, t.seconds
        self.object.value, self.left.value, self.right.value = t.object, t.left, t.right
        self.yaw.value = round(math.degrees(t.object_yaw), 1)
        self.heading.value = round(max(-180.0, min(180.0, math.degrees(t.heading))), 1)
        self.keys.value = t.keys

    def update(self, frame: Frame, readout: str, events: str) -> None:
        self.readout.content, self.events.content = readout, events
        self.pause.label = "Go on (P)" if frame.paused else "Pause (P)"
        self.record.label = "Stop and save" if frame.recording else "Record"
        self.active.value = frame.state.object_name
