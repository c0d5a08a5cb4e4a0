"""The output folder of `interprior data synth`: new, empty, or holding an earlier synthetic set, which its
``synth.json`` describes (every clip and object file the generator wrote). An earlier set is replaced only with
``--force``, and then only the files its manifest lists are removed; a folder holding anything else (files the
manifest does not list, or no manifest at all) is the user's, and the generator refuses to write into it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from interprior.data.synth.defects import DEFECTS
from interprior.errors import InterpriorError
from interprior.files import TMP_SUFFIX, atomic_write_text

MANIFEST = "synth.json"
GENERATOR = "interprior data synth"


def clip_file_name(name: str, defects) -> str:
    """The file name `data synth` gives clip `name` (a `ClipSpec.name`) with `defects` injected."""
    names = [d for d in DEFECTS if d in set(defects)]
    return f"{name}{'-' + '-'.join(names) if names else ''}.pt"


def _simple(name) -> bool:
    """A plain file or folder name (no separators, not '.' or '..'): never a path out of the folder."""
    return isinstance(name, str) and bool(name) and name not in (".", "..") and Path(name).name == name \
        and "/" not in name and "\\" not in name


def manifest_files(out: Path, manifest: dict) -> set[Path]:
    """Every file an earlier run wrote into `out`, as its manifest lists them (the manifest included)."""
    files = {out / MANIFEST}
    clips = [r.get("clip") for r in manifest.get("rows", []) if isinstance(r, dict)]
    for name in [*clips, *manifest.get("planned", [])]:
        if _simple(name):
            files.add(out / "clips" / f"{name}.pt")
    objects = manifest.get("objects", {})
    for name in objects if isinstance(objects, (dict, list)) else ():
        if _simple(name):
            files.update({out / "objects" / name / f"{name}.obj", out / "objects" / name / f"{name}.json"})
    return files


def _present_files(out: Path) -> list[Path]:
    """Files (and links) under `out`, without the temp files a killed atomic write leaves (``.<name>.*.tmp``)."""
    found = []
    for root, dirs, files in os.walk(out):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        for name in [*files, *links]:
            if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                found.append(Path(root) / name)
    return sorted(found)


def _read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR else None


def files_to_replace(out: str | Path, force: bool) -> list[Path]:
    """The files of an earlier synthetic set in `out` that a new one replaces (empty for a new or empty folder).
    InterpriorError naming `--out` when `out` holds an earlier set and not `force`, or holds files that are not
    a synthetic set's. Removes nothing."""
    out = Path(out)
    if not out.exists():
        return []
    if not out.is_dir():
        raise InterpriorError(f"--out {out}: is a file, not a folder")
    present = _present_files(out)
    if not present:
        return []
    manifest = _read_manifest(out)
    if manifest is None:
        raise InterpriorError(f"--out {out}: not empty and holds no synthetic set ({MANIFEST} of `{GENERATOR}`), "
                              f"e.g. {present[0]}; choose a new or empty folder")
    ours = manifest_files(out, manifest)
    foreign = [p for p in present if p not in ours]
    if foreign:
        raise InterpriorError(f"--out {out}: holds {len(foreign)} file(s) that its earlier synthetic set's "
                              f"{MANIFEST} does not list, e.g. {foreign[0]}; choose a new or empty folder")
    if not force:
        clips = sum(1 for p in ours if p.parent == out / "clips" and p.exists())
        raise InterpriorError(f"--out {out}: holds an earlier synthetic set ({clips} clips, {MANIFEST}); pass "
                              "--force to replace it")
    return sorted(p for p in ours if p.name != MANIFEST or p.parent != out)


def begin_set(out: Path, old_files: list[Path], planned: dict) -> None:
    """Remove the earlier set's files (only those its manifest listed), then record what this run will write
    (`planned`: a manifest with the planned clip names), so that an interrupted run is still recognised as ours."""
    for path in old_files:
        path.unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST, json.dumps(planned, indent=2))
