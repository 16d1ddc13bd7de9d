"""The transcript comparator itself must notice what conformance relies on it to notice."""

from __future__ import annotations

from tests.simulator.support import Transcript, compare, get, list_blocks


def _answered() -> list[tuple[float, list[tuple[str, str]]]]:
    return list_blocks(Transcript.load("answered").ins())


def test_identical_recordings_match() -> None:
    frames = _answered()
    result = compare(frames, [(t, list(f)) for t, f in frames])
    assert result.ok and result.pairs == len(frames)


def test_missing_and_changed_frames_are_reported() -> None:
    frames = _answered()
    idx = next(i for i, (_, f) in enumerate(frames) if get(f, "Event") == "AgentConnect")
    dropped = frames[:idx] + frames[idx + 1 :]
    assert any(p.startswith("missing") for p in compare(frames, dropped).problems)
    changed = [(t, [(k, "Seat 9" if k == "MemberName" else v) for k, v in f]) for t, f in frames]
    problems = compare(frames, changed).problems
    assert any(p.startswith("extra") for p in problems)


def test_late_frames_are_reported() -> None:
    frames = _answered()
    idx = next(i for i, (_, f) in enumerate(frames) if get(f, "Event") == "AgentCalled")
    late = [(t + (0.2 if i == idx else 0.0), f) for i, (t, f) in enumerate(frames)]
    assert any(p.startswith("time AgentCalled") for p in compare(frames, late).problems)


def test_reordering_beyond_a_race_window_is_reported_but_not_within() -> None:
    frames = _answered()
    called = next(i for i, (_, f) in enumerate(frames) if get(f, "Event") == "AgentCalled")
    connect = next(i for i, (_, f) in enumerate(frames) if get(f, "Event") == "AgentConnect")
    swapped = list(frames)
    swapped[called], swapped[connect] = swapped[connect], swapped[called]
    problems = compare(frames, swapped, time_tol=100).problems
    assert any(p.startswith("order") for p in problems)
    # two frames Asterisk wrote in the same millisecond may come in either order
    i = next(
        i
        for i in range(len(frames) - 1)
        if abs(frames[i + 1][0] - frames[i][0]) < 0.001 and get(frames[i][1], "Event")
    )
    close = list(frames)
    close[i], close[i + 1] = close[i + 1], close[i]
    assert compare(frames, close, race_window=0.005).ok
