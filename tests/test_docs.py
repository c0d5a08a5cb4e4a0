import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_cmd = [c for c in _readme_commands() if "pytest" in c]
    assert test_cmd, "README has no test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd[0].strip() in ci


def test_readme_demo_command_runs_the_demo():
    first = _readme_commands()[0]
    assert "pip install torch==2.13.0" in first and first.strip().endswith("interprior demo")


def test_readme_mentions_every_command():
    from interprior.cli import COMMAND_MODULES

    text = (ROOT / "README.md").read_text()
    for name in COMMAND_MODULES:
        assert f"interprior {name}" in text


def test_readme_command_lines_parse():
    """Every `interprior ...` line in the README's code blocks is accepted by the CLI's parser (docs match code)."""
    import shlex

    from interprior.cli import build_parser

    lines = [ln.split("#")[0].strip() for block in _readme_commands() for ln in block.splitlines()]
    commands = [ln for ln in lines if ln.startswith("interprior ")]
    assert len(commands) > 10
    for line in commands:
        build_parser().parse_args(shlex.split(line)[1:])  # SystemExit (exit 2) on an unknown option
