"""The normalised lifecycle: forward-only moves and the three upstream vocabularies."""

from __future__ import annotations

import itertools

import pytest

from wanflow.task import (
    TERMINAL,
    UNKNOWN_STATUS_LIMIT,
    TaskStatus,
    Vocabulary,
    allowed_previous,
    can_move,
    read_status,
    statuses_of,
    unknown_status_exhausted,
)

S = TaskStatus
PATH = [S.ACCEPTED, S.QUEUED, S.RUNNING]


def test_terminal_set() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELED, S.TIMED_OUT} == TERMINAL
    assert all(s.terminal for s in TERMINAL)
    assert not any(s.terminal for s in PATH)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(TaskStatus, TaskStatus)))
def test_moves_only_go_forward(current: TaskStatus, target: TaskStatus) -> None:
    rank = {s: i for i, s in enumerate(PATH)}
    expected = not current.terminal and (
        target.terminal or rank.get(target, 99) > rank.get(current, 99)
    )
    assert can_move(current, target) is expected


def test_allowed_previous_sets() -> None:
    assert allowed_previous(S.ACCEPTED) == set()
    assert allowed_previous(S.QUEUED) == {S.ACCEPTED}
    assert allowed_previous(S.RUNNING) == {S.ACCEPTED, S.QUEUED}
    for end in TERMINAL:
        assert allowed_previous(end) == {S.ACCEPTED, S.QUEUED, S.RUNNING}


@pytest.mark.parametrize(
    ("vocabulary", "words"),
    [
        (Vocabulary.GENERATION, ["in_queue", "processing", "done", "failed"]),
        (Vocabulary.FLASH, ["pending", "processing", "completed", "failed"]),
        (Vocabulary.UNIFIED, ["queued", "in_progress", "completed", "failed"]),
    ],
)
def test_each_vocabulary_maps_onto_the_lifecycle(vocabulary: Vocabulary, words: list[str]) -> None:
    assert list(statuses_of(vocabulary)) == words
    queued, running, done, failed = words
    assert read_status(vocabulary, queued, 0).status is S.QUEUED
    assert read_status(vocabulary, running, 0).status is S.RUNNING
    assert read_status(vocabulary, done, 1).status is S.SUCCEEDED
    assert read_status(vocabulary, failed, 0).status is S.FAILED
    assert read_status(vocabulary, f"  {done.upper()} ", 2).status is S.SUCCEEDED


@pytest.mark.parametrize("vocabulary", list(Vocabulary))
def test_success_without_output_is_not_success(vocabulary: Vocabulary) -> None:
    done = statuses_of(vocabulary)[2]
    reading = read_status(vocabulary, done, 0)
    assert reading.status is None
    assert reading.problem == "upstream_empty_result"


@pytest.mark.parametrize("word", ["weird", "", None, 3, "done?"])
def test_unknown_words_are_reported_not_guessed(word: object) -> None:
    reading = read_status(Vocabulary.FLASH, word, 1)
    assert reading.status is None
    assert reading.problem == "upstream_unknown_status"


def test_another_familys_word_is_unknown() -> None:
    assert read_status(Vocabulary.GENERATION, "in_progress", 0).status is None
    assert read_status(Vocabulary.UNIFIED, "in_queue", 0).status is None


def test_a_cancelled_upstream_task_reads_as_canceled() -> None:
    assert read_status(Vocabulary.FLASH, "cancelled", 0).status is S.CANCELED


def test_unknown_statuses_are_bounded() -> None:
    assert not unknown_status_exhausted(UNKNOWN_STATUS_LIMIT - 1)
    assert unknown_status_exhausted(UNKNOWN_STATUS_LIMIT)
