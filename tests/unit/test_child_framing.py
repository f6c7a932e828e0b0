"""The messages between the node and its commands process (workers/runners/child/framing.py): what
one side writes, the other reads back equal, whether marshal or pickle wrote it."""

from __future__ import annotations

from typing import Any

from workers.runners.child.framing import Frames, dumps, frame, loads


class Label(str):
    """A subclass of str: marshal does not write it, pickle does."""


BATCH = (
    "batch",
    "n1",
    [
        {"user": "alice", "cmd": {"v": 1, "type": "send", "id": "c1", "to": "bob", "text": "é 🙂 \u2028"}},
        {
            "user": "bob",
            "cmd": {"v": 1, "type": "history", "id": "c2", "chat": "dm:alice:bob", "limit": 2**70},
            "response": {"topic": "r/bob", "correlation": "eA==", "user_properties": [["k", "v"]]},
        },
    ],
    False,
)
ANSWER = ("done", 2, "n1", [("bob", '{"v":1}', 1, None), ("alice", "{}", 0, {"expiry": 5})], [], None, [])


def test_what_dumps_writes_loads_reads_back_equal() -> None:
    for message in (BATCH, ANSWER, ("retrying", 0.25), ("ready",), ("stop",)):
        assert loads(dumps(message)) == message


def test_a_type_marshal_does_not_write_goes_as_a_pickle() -> None:
    message = ("done", 1, "n1", [("bob", Label("x"), 1, None)], [], {"internal": 1.0}, [])

    back = loads(dumps(message))

    assert back == message and type(back[3][0][1]) is Label


def test_frames_split_anywhere_are_read_back_whole_in_order() -> None:
    read: list[Any] = []
    frames = Frames(read.append, lambda exc: None)
    labelled = ("done", 1, "n1", [("bob", Label("x"), 1, None)], [], None, [])
    data = frame(BATCH) + frame(labelled) + frame(ANSWER)

    for i in range(0, len(data), 7):
        frames.data_received(data[i : i + 7])

    assert read == [BATCH, ("done", 1, "n1", [("bob", "x", 1, None)], [], None, []), ANSWER]
