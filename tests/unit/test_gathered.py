"""Calls made at once share a run; each caller gets its own result, or its own run's error, from a run begun after
it arrived."""

import threading
import time

import pytest

from billing.store.gathered import Gathered


class Runs:
    """`many` for Gathered: records each run; the first run waits until the test releases it."""

    def __init__(self, fail_with: int | None = None):
        self.runs: list[list[int]] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.fail_with = fail_with

    def __call__(self, items: list[int]) -> list[int]:
        self.runs.append(list(items))
        if len(self.runs) == 1:
            self.started.set()
            assert self.release.wait(10)
        if self.fail_with in items:
            raise RuntimeError(f"run with {self.fail_with} failed")
        return [item * 10 for item in items]


def call_at_once(gathered: Gathered, runs: Runs, items: list[int]) -> dict[int, object]:
    """Item 0 starts the first run; the others arrive while it runs, then it is released."""
    answers: dict[int, object] = {}

    def call(item: int) -> None:
        try:
            answers[item] = gathered(item)
        except RuntimeError as error:
            answers[item] = error

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert runs.started.wait(10)
    others = [threading.Thread(target=call, args=(item,)) for item in items[1:]]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(gathered._waiting) < len(others):  # every later caller is queued behind the running one
        assert time.monotonic() < deadline
        time.sleep(0.001)
    runs.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return answers


def test_callers_arriving_during_a_run_share_the_next_one_and_each_gets_its_own_result():
    runs = Runs()
    answers = call_at_once(Gathered(runs, limit=100), runs, list(range(8)))
    assert answers == {item: item * 10 for item in range(8)}
    assert runs.runs[0] == [0] and sorted(runs.runs[1]) == list(range(1, 8)) and len(runs.runs) == 2


def test_a_run_takes_at_most_its_limit():
    runs = Runs()
    answers = call_at_once(Gathered(runs, limit=3), runs, list(range(8)))
    assert answers == {item: item * 10 for item in range(8)}
    assert [len(run) for run in runs.runs] == [1, 3, 3, 1]


def test_a_failed_run_fails_each_of_its_callers_and_no_one_else():
    runs = Runs(fail_with=0)
    answers = call_at_once(Gathered(runs, limit=100), runs, list(range(5)))
    assert isinstance(answers[0], RuntimeError)
    assert {item: answers[item] for item in range(1, 5)} == {item: item * 10 for item in range(1, 5)}


def test_one_caller_alone_runs_at_once():
    runs = Runs()
    runs.release.set()
    assert Gathered(runs, limit=10)(7) == 70 and runs.runs == [[7]]
    failing = Runs(fail_with=3)
    failing.release.set()
    with pytest.raises(RuntimeError):
        Gathered(failing, limit=10)(3)
