"""The folders of `interprior data retarget`: the source (DIR/clips/*.pt or DIR/*.pt, DIR/objects/) and the
output DIR2 (new or empty, or an earlier retarget output that ``--force`` replaces: only what its
``retarget.json`` lists is removed; a folder holding anything else is the user's and is refused)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from interprior.data.intermimic import list_clips
from interprior.errors import DataFileError, InterpriorError
from interprior.files import TMP_SUFFIX

MANIFEST = "retarget.json"
GENERATOR = "interprior data retarget"


def source_folders(source: str | Path) -> tuple[list[Path], Path]:
    """The source's motion files (DIR/clips/*.pt, else DIR/*.pt) and its objects folder (DIR/objects)."""
    source = Path(source)
    if not source.is_dir():
        raise InterpriorError(f"DIR {source}: {'is a file, not' if source.exists() else 'no such'} folder (expected "
                              "a data set folder with clips/ and objects/)")
    clips_dir = source / "clips" if (source / "clips").is_dir() else source
    try:
        clips = list_clips(clips_dir)
    except DataFileError as err:
        raise InterpriorError(f"DIR {source}: {err.problem}") from None
    objects = source / "objects"
    if not objects.is_dir():
        raise InterpriorError(f"DIR {source}: no objects/ folder beside the clips (the objects' meshes, "
                              "<name>/<name>.obj)")
    return clips, objects


def _present(out: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(out):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        found += [Path(root) / n for n in [*files, *links] if not (n.startswith(".") and n.endswith(TMP_SUFFIX))]
    return sorted(found)


def _ours(out: Path) -> set[Path] | None:
    """The files an earlier retarget output in `out` consists of (None: no manifest of ours there)."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR:
        return None
    names = [r.get("clip") for r in manifest.get("rows", []) if isinstance(r, dict)] + manifest.get("planned", [])
    files = {out / MANIFEST} | {out / "clips" / f"{n}.pt" for n in names if isinstance(n, str) and Path(n).name == n}
    return files | {p for p in _present(out / "objects")}


def prepare_out(out: str | Path, source: str | Path, force: bool) -> Path:
    """Check `out` (InterpriorError naming --out) and, with `force`, remove an earlier retarget output there."""
    out, source = Path(out), Path(source)
    if out.resolve() in {source.resolve(), (source / "clips").resolve(), (source / "objects").resolve()}:
        raise InterpriorError(f"--out {out}: must not be the source folder or its clips/ or objects/")
    if out.exists() and not out.is_dir():
        raise InterpriorError(f"--out {out}: is a file, not a folder")
    present = _present(out) if out.exists() else []
    if present:
        ours = _ours(out)
        if ours is None:
            raise InterpriorError(f"--out {out}: not empty and holds no earlier retarget output ({MANIFEST}), e.g. "
                                  f"{present[0]}; choose a new or empty folder")
        foreign = [p for p in present if p not in ours]
        if foreign:
            raise InterpriorError(f"--out {out}: holds {len(foreign)} file(s) its {MANIFEST} does not list, e.g. "
                                  f"{foreign[0]}; choose a new or empty folder")
        if not force:
            raise InterpriorError(f"--out {out}: holds an earlier retarget output; pass --force to replace it")
        for path in present:
            path.unlink()
        shutil.rmtree(out / "objects", ignore_errors=True)
    try:
        (out / "clips").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InterpriorError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return out


def copy_objects(objects: Path, out: Path) -> Path:
    """Copy the source's objects folder to `out`/objects (into a temp folder first, then one rename)."""
    staging = Path(tempfile.mkdtemp(prefix=".objects.", suffix=TMP_SUFFIX, dir=out))
    try:
        shutil.copytree(objects, staging / "objects", symlinks=False)
        os.replace(staging / "objects", out / "objects")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "objects"
