"""A frame read off the wire (split lazily, first question answered from the raw text) answers
every question exactly as one split eagerly by `parse_lines` does (pure)."""

from __future__ import annotations

import json

import pytest

from ctid.asterisk.frame import Frame, parse_lines
from tests.paths import TRANSCRIPTS

ODD = [
    # A line that merely starts with `Variable:` comes before the real header.
    "Event: VarSet\r\nVariable:x: y\r\nVariable: CTID_QUEUE\r\nValue: 1",
    "Event: VarSet\r\nChanVariable: a\r\nVariable: b\r\nValue: c",
    "Event: Newchannel\r\nXVariable: 1\r\nUniqueid: 1.1",
    "Event: AgentCalled\r\nChanVariable: a=1\r\nChanVariable: b=2\r\nUniqueid: 1.2",
    "Event: Hangup\r\nCause:\r\nCause-txt:Normal\r\nUniqueid: 1.3",
    "Event: Newexten\r\nAppData: a: b: c\r\n--END COMMAND--\r\nPriority: 1",
    "Response: Success\r\nActionID: lab-1\r\nMessage: Authentication accepted",
    "Response: Follows\r\nActionID:x\r\nOutput: a",
    "Variable: first\r\nVariable: second",
    "Event: VarSet\r\nVariable:",
    "Event: Odd\r\n: no name\r\nName: value",
]


def recorded_chunks() -> list[str]:
    chunks = []
    for path in [*sorted(TRANSCRIPTS.glob("*.jsonl")), *sorted(TRANSCRIPTS.glob("pjsip/*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            raw = rec["raw"]
            if rec["dir"] == "in" and ": " in raw:
                chunks.append(raw.strip("\r\n"))
    return chunks


def names_in(chunk: str) -> list[str]:
    names = {n for n, _ in parse_lines(chunk)}
    return sorted(names | {"Variable", "ActionID", "Nope", "Event", ""})


def same_answers(lazy: Frame, eager: Frame, names: list[str]) -> None:
    for name in names:
        assert lazy.get(name) == eager.get(name), name
        assert lazy.get(name, "-") == eager.get(name, "-"), name
        assert lazy.all(name) == eager.all(name), name
    assert lazy.pairs == eager.pairs
    assert list(lazy) == list(eager)
    assert len(lazy) == len(eager)
    assert lazy.event == eager.event
    # (`response` is None for any event off the wire, by its first line: not compared here.)
    assert lazy.action_id == eager.action_id


@pytest.mark.parametrize("chunk", ODD)
def test_odd_frames_first_question_then_all_the_rest(chunk: str) -> None:
    eager = Frame(parse_lines(chunk))
    for first in names_in(chunk):
        lazy = Frame.from_chunk(chunk)
        assert lazy.get(first) == eager.get(first), first
        same_answers(lazy, eager, names_in(chunk))


@pytest.mark.parametrize("chunk", ODD)
def test_odd_frames_other_first_questions(chunk: str) -> None:
    eager = Frame(parse_lines(chunk))
    for ask in (lambda f: f.pairs, lambda f: list(f), lambda f: f.all("Variable"), len):
        lazy = Frame.from_chunk(chunk)
        assert ask(lazy) == ask(eager)
        same_answers(lazy, eager, names_in(chunk))


def test_every_recorded_frame_answers_as_the_eager_split() -> None:
    chunks = recorded_chunks()
    assert len(chunks) > 1000  # both recording sets are there
    for chunk in chunks:
        eager = Frame(parse_lines(chunk))
        names = names_in(chunk)
        for first in ("Variable", "Timestamp", "Uniqueid", "ActionID", "Nope"):
            lazy = Frame.from_chunk(chunk)
            assert lazy.get(first) == eager.get(first), (first, chunk[:80])
            same_answers(lazy, eager, names)
