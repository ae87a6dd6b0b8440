"""Frames pushed one at a time into several writers that each pull from an iterable.

The encoders (``vidcam.io.encode``) consume iterables; an export loop produces each frame once and
feeds it to several of them (SDR, HDR10, side-by-side). Each writer runs in its own thread on a
small bounded queue, so at most a few frames per writer are in memory, whatever the clip's length.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

QUEUE_FRAMES = 2  # frames waiting per writer: bounds memory, keeps the encoders busy
_END = object()
_ABORT = object()


class WriteAborted(Exception):
    """Raised inside a writer whose producer failed: the writer's atomic output is discarded."""


class FrameSink:
    """``write(iterable)`` run in a thread; ``put(frame)`` feeds it, ``close()`` ends it and re-raises its error."""

    def __init__(self, write: Callable[[Iterable[Any]], None], name: str):
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._ended = False  # the writer's thread has taken the end marker off the queue
        self._thread = threading.Thread(target=self._run, args=(write,), name=name, daemon=True)
        self._thread.start()

    def _frames(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END or item is _ABORT:
                self._ended = True
                if item is _ABORT:
                    raise WriteAborted
                return
            yield item

    def _run(self, write: Callable[[Iterable[Any]], None]) -> None:
        try:
            write(self._frames())
        except Exception as exc:  # noqa: BLE001 - handed to the producer's thread by close()
            self._error = exc
            while not self._ended:  # drain up to the end marker, so the producer never blocks
                item = self._queue.get()
                self._ended = item is _END or item is _ABORT

    def put(self, frame: Any) -> None:
        if self._error is not None:
            self.close()
        if not self._thread.is_alive():
            raise RuntimeError(f"writer {self._thread.name} stopped before its last frame")
        self._queue.put(frame)

    def close(self, abort: bool = False) -> None:
        """End the stream (``abort``: make the writer fail, so it leaves no output) and wait for it."""
        if self._thread.is_alive():
            self._queue.put(_ABORT if abort else _END)
            self._thread.join()
        error, self._error = self._error, None
        if error is not None and not isinstance(error, WriteAborted):
            raise error


class FrameSinks:
    """Several ``FrameSink`` closed together (context manager): the first writer error is raised."""

    def __init__(self) -> None:
        self.sinks: dict[str, FrameSink] = {}

    def add(self, name: str, write: Callable[[Iterable[Any]], None]) -> None:
        self.sinks[name] = FrameSink(write, name)

    def put(self, name: str, frame: Any) -> None:
        self.sinks[name].put(frame)

    def __contains__(self, name: str) -> bool:
        return name in self.sinks

    def close(self, abort: bool = False) -> None:
        errors = []
        for sink in self.sinks.values():
            try:
                sink.close(abort)
            except Exception as exc:  # noqa: BLE001 - every sink is closed, the first error raised
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> FrameSinks:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(Exception):  # the producer's own error is the one to report
            self.close(abort=True)
