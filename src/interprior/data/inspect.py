"""Summaries of motion files for people: lengths, contact statistics and validation findings."""

from __future__ import annotations

from pathlib import Path

from interprior.data.clip import Clip
from interprior.data.intermimic import list_clips
from interprior.data.validate import Finding, clip_body, count_by_severity, validate_file
from interprior.report import Column, format_table


CONTACT_GROUPS = ("left_hand", "right_hand", "feet", "other")


def body_groups(clip: Clip) -> dict[str, tuple[int, ...]]:
    """The contact columns' groups of the clip's body (SMPL-X: hands = wrist + 15 finger bodies each)."""
    groups = clip_body(clip).resolved
    named = {"left_hand": groups.left_hand, "right_hand": groups.right_hand, "feet": groups.feet}
    taken = set(sum(named.values(), ()))
    return {**named, "other": tuple(i for i in range(groups.num_bodies) if i not in taken)}


def inspect_path(path: str | Path, tolerance: float = 0.01) -> dict:
    """Report on one .pt file or a folder of them. Files that fail to load are listed, not raised.

    A missing path or a folder without .pt files raises `DataFileError`. `tolerance` is in metres.
    """
    path = Path(path)
    files = list_clips(path)
    clips, failed = [], []
    for file in files:
        clip, findings = validate_file(file, tolerance)
        if clip is None:
            failed.append({"file": str(file), "error": findings[0].message})
        else:
            clips.append(clip_report(clip, file, findings))
    counts = {s: sum(c["finding_counts"][s] for c in clips) for s in ("error", "warning", "info")}
    counts["error"] += len(failed)
    return {
        "path": str(path),
        "kind": "folder" if path.is_dir() else "file",
        "num_files": len(files),
        "num_loaded": len(clips),
        "num_failed": len(failed),
        "total_frames": sum(c["frames"] for c in clips),
        "total_duration_s": round(sum(c["duration_s"] for c in clips), 3),
        "finding_counts": counts,
        "clips": clips,
        "failed": failed,
    }


def clip_report(clip: Clip, file: Path, findings: list[Finding]) -> dict:
    return {
        "name": clip.name,
        "file": str(file),
        "frames": clip.num_frames,
        "duration_s": round(clip.duration, 3),
        "fps": clip.fps,
        "subject": clip.subject,
        "object": clip.object_name,
        "contact": contact_stats(clip),
        "finding_counts": count_by_severity(findings),
        "findings": [f.to_dict() for f in findings],
    }


def contact_stats(clip: Clip) -> dict:
    """Fraction of frames with the object flag set, and per body group the fractions of +1 and -1 labels."""
    groups = {}
    for group, bodies in body_groups(clip).items():
        labels = clip.contact[:, list(bodies)]
        groups[group] = {
            "positive": round(float((labels == 1).float().mean()), 4),
            "negative": round(float((labels == -1).float().mean()), 4),
        }
    return {"object_in_contact": round(float((clip.obj_contact == 1).float().mean()), 4), "groups": groups}


def has_errors(report: dict) -> bool:
    return report["finding_counts"]["error"] > 0


# --- text ---------------------------------------------------------------------------------------------------

COLUMNS = (
    ("clip", "<"), ("frames", ">"), ("sec", ">"), ("subject", "<"), ("object", "<"), ("obj-con", ">"),
    ("L-hand +/-", ">"), ("R-hand +/-", ">"), ("feet +/-", ">"), ("other +/-", ">"), ("E/W/I", ">"),
)


def format_inspect(report: dict) -> str:
    """The report as a table (one row per clip), then the findings and failures in words."""
    rows = [_row(c) for c in report["clips"]]
    lines = [f"{report['path']}: {report['num_files']} file(s), {report['num_loaded']} loaded, "
             f"{report['num_failed']} failed"]
    if rows:
        columns = [Column(str(i), name, align=align, sep="  " if i else "") for i, (name, align) in enumerate(COLUMNS)]
        lines += format_table([{str(i): cell for i, cell in enumerate(r)} for r in rows], columns, rule=True)
        lines.append(
            f"total: {report['total_frames']} frames, {report['total_duration_s']:.1f} s "
            f"(contact columns: fraction of frames / labels, '+' = +1 in contact, '-' = -1 far away)"
        )
    lines += _finding_lines(report)
    for failure in report["failed"]:
        lines.append(f"FAILED  {failure['error']}")
    counts = report["finding_counts"]
    lines.append(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    return "\n".join(lines)


def _row(clip: dict) -> list[str]:
    groups = clip["contact"]["groups"]
    counts = clip["finding_counts"]
    return [
        clip["name"], str(clip["frames"]), f"{clip['duration_s']:.1f}", str(clip["subject"] or "-"),
        str(clip["object"] or "-"), _percent(clip["contact"]["object_in_contact"]),
        *(f"{_percent(groups[g]['positive'])}/{_percent(groups[g]['negative'])}" for g in CONTACT_GROUPS),
        f"{counts['error']}/{counts['warning']}/{counts['info']}",
    ]


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"




def _finding_lines(report: dict) -> list[str]:
    lines = []
    for clip in report["clips"]:
        for finding in clip["findings"]:
            lines.append(f"{finding['severity'].upper():7} {clip['name']}: [{finding['code']}] {finding['message']}")
    return lines
