"""Running `hqc` in-process (click's CliRunner) and checking its user-facing errors."""

from __future__ import annotations

import re

from click.testing import CliRunner

from hqc.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """`hqc ARGS…` in-process -> (exit code, stdout, stderr)."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def one_line_error(code: int, out: str, err: str, pattern: str) -> None:
    """Exit code 2 and one `error: …` line on stderr matching `pattern`, no traceback."""
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    assert re.search(pattern, lines[0]), lines[0]
