"""Requests made at once on one instance, shared: Pub/Sub pushes arrive one event each, many at a time, and each
Firestore request costs a round trip and most of its CPU whatever it carries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class Gathered(Generic[T, R]):
    """`gathered(item)` is `many([item])[0]`, shared with whoever calls at the same moment: one caller at a time runs
    `many` over everything waiting (at most `limit` items), and whoever arrives meanwhile waits for the next run,
    which starts after it arrived. Each caller returns once its own run has ended: with its result, or raising that
    run's error (so a Pub/Sub push is acknowledged only for what its run made durable)."""

    def __init__(self, many: Callable[[list[T]], list[R]], limit: int):
        self.many, self.limit = many, limit
        self._changed = threading.Condition()
        self._waiting: list[_Slot[T, R]] = []
        self._running = False

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._changed:
            self._waiting.append(slot)
        while True:
            with self._changed:
                while not slot.finished and self._running:
                    self._changed.wait()
                if slot.finished:
                    break
                self._running = True
                taken, self._waiting = self._waiting[:self.limit], self._waiting[self.limit:]
            try:
                results = self.many([each.item for each in taken])
            except BaseException as error:  # handed to every caller of the run, each of which raises it
                for each in taken:
                    each.error = error
            else:
                for each, result in zip(taken, results, strict=True):
                    each.result = result
            finally:
                with self._changed:
                    for each in taken:
                        each.finished = True
                    self._running = False
                    self._changed.notify_all()
        if slot.error is not None:
            raise slot.error
        return cast(R, slot.result)


@dataclass
class _Slot(Generic[T, R]):
    item: T
    result: R | None = None
    error: BaseException | None = None
    finished: bool = False
