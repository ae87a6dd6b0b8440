"""Progress reports on stderr: a live bar on a terminal, a plain line every few seconds elsewhere.

tqdm redraws its bar with carriage returns many times a second; in a log file or CI output every
redraw stays (a 3-minute run left ~700 of them, 58 KB). Off a terminal this module prints one
line every ``PLAIN_INTERVAL_S`` seconds and a last line when the loop ends:

    flow: 120/500 pairs (24%), 3.21 pairs/s, 0:37 elapsed, ETA 1:58
    flow: 500/500 pairs (100%) in 2:35, 3.22 pairs/s

``set_quiet(True)`` (the CLI's ``--quiet``) silences every report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

# Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL_S = 5.0
# tqdm layout for loops whose count means nothing to a user (the trainer counts ticks of a
# progress fraction that follows the step limit or the time budget, whichever ends first).
_FRACTION_BAR_FORMAT = "{l_bar}{bar}| {elapsed}<{remaining}{postfix}"

_quiet = False

T = TypeVar("T")


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress report of this process."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    return _quiet


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress(Generic[T]):
    """Counts work done; reports it as a bar, as plain lines, or not at all. Iterate over it
    (when made with an iterable) or call ``update``; ``close`` (or the end of the iteration, or
    leaving its ``with`` block) ends it."""

    def __init__(
        self,
        iterable: Iterable[T] | None,
        desc: str,
        total: int | None,
        unit: str,
        initial: int,
        show_count: bool,
        leave: bool,
        disable: bool,
        stream: TextIO | None,
        clock: Callable[[], float],
        interval: float,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.desc = desc
        self.total = total
        self.unit = unit
        self.n = initial
        self._initial = initial
        self._show_count = show_count
        self._postfix: dict[str, Any] = {}
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._interval = interval
        self._silent = disable or _quiet
        self._closed = False
        self._started = self._last_line = clock()
        self._bar: tqdm | None = None
        if not self._silent and _is_terminal(self._stream):
            from tqdm import (
                tqdm,  # only for a terminal: the CLI starts faster without it
            )

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=self._stream,
                leave=leave,
                dynamic_ncols=True,
                bar_format=None if show_count else _FRACTION_BAR_FORMAT,
            )

    # ----- counting
    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("this progress report was made without an iterable; call update()")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self._silent and (self.total is None or self.n < self.total):  # close() says "done"
            now = self._clock()
            if now - self._last_line >= self._interval:
                self._write(self._line(now, final=False))
                self._last_line = now

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (replacing the previous ones), e.g. ``loss=0.012``."""
        self._postfix = dict(values)
        if self._bar is not None:
            self._bar.set_postfix(values)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif not self._silent:
            self._write(self._line(self._clock(), final=True))

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- plain lines
    def _line(self, now: float, final: bool) -> str:
        elapsed = now - self._started
        done = self.n - self._initial
        rate = done / elapsed if elapsed > 0 else None
        parts = [self._count_text()]
        if final:
            parts[0] += f" in {_clock_text(elapsed)}"
        if self._show_count and rate is not None:
            parts.append(f"{rate:.3g} {self.unit}/s")
        if not final:
            parts.append(f"{_clock_text(elapsed)} elapsed")
            if self.total is not None and rate:
                parts.append(f"ETA {_clock_text(max(self.total - self.n, 0) / rate)}")
        line = f"{self.desc}: " + ", ".join(parts)
        if self._postfix:
            line += " | " + " ".join(f"{key}={value}" for key, value in self._postfix.items())
        return line

    def _count_text(self) -> str:
        if self.total is None:
            return f"{self.n} {self.unit}"
        percent = f"{100.0 * self.n / self.total:.0f}%" if self.total > 0 else "100%"
        return f"{self.n}/{self.total} {self.unit} ({percent})" if self._show_count else percent

    def _write(self, line: str) -> None:
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr gone (closed pipe): progress is not worth failing for
            self._silent = True


def progress(
    iterable: Iterable[T] | None = None,
    desc: str = "",
    total: int | None = None,
    *,
    unit: str = "it",
    initial: int = 0,
    show_count: bool = True,
    leave: bool = True,
    disable: bool = False,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    interval: float = PLAIN_INTERVAL_S,
) -> Progress[T]:
    """Report progress over ``iterable`` (or over ``update`` calls up to ``total``) on ``stream``
    (default stderr): a tqdm bar on a terminal, else a plain line every ``interval`` seconds and
    one at the end; nothing when ``disable`` or after ``set_quiet(True)``. ``show_count=False``
    shows a percentage instead of done/total and rate (for counts that are not units of work).
    ``leave=False`` clears a terminal bar at the end."""
    return Progress(iterable, desc, total, unit, initial, show_count, leave, disable, stream, clock, interval)
