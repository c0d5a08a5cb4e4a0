"""The `interprior` command. Each subcommand lives in `interprior.commands.<name>` and registers itself."""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def _choose_gl_backend() -> None:
    """Offscreen rendering needs a GL backend chosen before mujoco is imported. Only pick one whose library is
    present: a missing libOSMesa with MUJOCO_GL=osmesa would break `import mujoco` itself."""
    if "MUJOCO_GL" in os.environ or os.environ.get("DISPLAY"):
        return
    from interprior.viz.render import find_headless_backend

    backend = find_headless_backend()
    if backend:
        os.environ["MUJOCO_GL"] = backend
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)


_choose_gl_backend()

COMMAND_MODULES = ("demo", "data", "replay", "bench", "train", "eval", "steer", "deploy", "assets")


from interprior.errors import InterpriorError  # noqa: E402
from interprior.train.stopping import SIGPIPE, Stopped, exit_code, silence_stdout  # noqa: E402


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command (the full usage is in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="interprior",
        description="Physics-based human-object interaction on MuJoCo: data tools, replay, training, evaluation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"interprior.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed: the status, as for every error
        return int(done.code or 0)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout's reader went away (`| head`): not an error of ours; say nothing more there
        silence_stdout()
        return 128 + SIGPIPE
    except InterpriorError as err:
        print(f"interprior {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unwritable output folder, full disk, ...: the message names the path
        print(f"interprior {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C 130, SIGTERM 143, SIGHUP 129, closed stdout 141
        if not isinstance(stop, Stopped):
            print("interrupted", file=sys.stderr)
        return exit_code(stop)


if __name__ == "__main__":
    sys.exit(main())
