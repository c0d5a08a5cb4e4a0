"""Foreign text in messages: an exception text of a library that read a user's file may quote the file's own
bytes (an array name in a .npz, a line of a mesh). `printable` makes such text safe for a one-line message."""

from __future__ import annotations

import re

# ANSI / VT100 escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ST), and two-byte ESC x
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int = 300) -> str:
    """`text` on one line without terminal escape sequences or control characters (each left-over control
    character shown as ``\\xNN``, line breaks and tabs as spaces), cut to `limit` characters."""
    text = _ESCAPES.sub("", str(text))
    text = re.sub(r"[\t\r\n\v\f]+", " ", text)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
