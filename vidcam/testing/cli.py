"""Running the command line in-process and checking its promise: bad input ends in one line."""

from __future__ import annotations

from typing import Any

from vidcam.cli import main


def run_cli(capsys: Any, *argv: object) -> tuple[int, str, str]:
    """``vidcam ARGV`` in this process: (exit code, stdout, stderr); ``capsys`` is pytest's fixture."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(code: int, err: str, expected_code: int = 2) -> str:
    """The one 'vidcam: error' line of a failed command (asserting there is exactly one, no traceback)."""
    assert code == expected_code, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("vidcam: error")]
    assert len(lines) == 1, err
    return lines[0]


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2, one error line, and each of ``fragments`` in it."""
    line = error_line(code, err)
    for fragment in fragments:
        assert fragment in line, line
