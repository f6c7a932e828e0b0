"""The rule of what one emoji is (``workers/stores/rules/emoji.py``), and the ``react`` command's
check built on it: a table of real emoji and of near misses, and generated sequences."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.rules.emoji import MAX_EMOJI_BYTES, is_emoji
from workers.stores.rules.reactions import check_emoji

ONE_EMOJI = [
    "👍",  # pictograph
    "😂",
    "🙏",
    "❤️",  # text-default character with VS16
    "❤",  # the same without it, as some keyboards send it
    "☺️",
    "©️",
    "👍🏽",  # skin tone
    "🧑🏿",
    "🇫🇷",  # flag
    "🇺🇳",
    "1️⃣",  # keycap
    "#️⃣",
    "*⃣",  # keycap without VS16
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # subdivision flag (tag sequence)
    "👨‍👩‍👧‍👦",  # ZWJ family
    "🏳️‍🌈",  # ZWJ with VS16 inside
    "❤️‍🔥",
    "🧑🏽‍💻",  # skin tone inside a ZWJ sequence
    "🧑🏽‍🤝‍🧑🏻",
    "👁️‍🗨️",
    "🐈‍⬛",
    "🫨",  # Unicode 15: newer than this Python's unicodedata
    "🪿",
]

NOT_ONE_EMOJI = [
    "",
    "a",
    "ok",
    "1",  # a digit is not a keycap
    "#",
    " 👍",  # surrounding space
    "👍 ",
    "👍👍",  # two emoji
    "👍❤️",
    "🇫🇷🇩🇪",  # two flags
    "🇫",  # half a flag
    "1️⃣2️⃣",
    "🏽",  # a skin tone alone
    "\u200d",  # a joiner alone
    "👍\u200d",  # a trailing joiner
    "\u200d👍",
    "👍\u200d\u200d👍",
    "\ufe0f",
    "👍\ufe0f\ufe0f",
    "é",
    "→",  # a symbol that is not an emoji
    "\U0001f3f4\U000e0067\U000e0062",  # a tag sequence without its CANCEL TAG
    "👩🏻‍❤️‍💋‍👨🏼",  # one emoji, but 35 bytes
    "\x00",
    "<b>",
]


@pytest.mark.parametrize("text", ONE_EMOJI)
def test_one_emoji_is_accepted(text: str) -> None:
    assert is_emoji(text)
    assert check_emoji(text) == text


@pytest.mark.parametrize("text", NOT_ONE_EMOJI)
def test_anything_else_is_refused(text: str) -> None:
    assert not is_emoji(text)
    if text == "":
        assert check_emoji(text) is None  # "" removes the reaction
        return
    with pytest.raises(CommandError) as raised:
        check_emoji(text)
    assert raised.value.code == ErrorCode.BAD_REQUEST


def _pictographs() -> st.SearchStrategy[str]:
    """Characters every emoji list has (the Emoticons and two Supplemental blocks)."""
    ranges = [(0x1F600, 0x1F64F), (0x1F300, 0x1F3FA), (0x1F90C, 0x1F93A), (0x1F947, 0x1F9FF)]
    return st.one_of(*(st.integers(a, b) for a, b in ranges)).map(chr)


_MODIFIER = st.integers(0x1F3FB, 0x1F3FF).map(chr)
_FLAG = st.tuples(st.integers(0x1F1E6, 0x1F1FF), st.integers(0x1F1E6, 0x1F1FF)).map(
    lambda pair: chr(pair[0]) + chr(pair[1])
)
_KEYCAP = st.tuples(st.sampled_from("0123456789#*"), st.sampled_from(["", "\ufe0f"])).map(
    lambda pair: pair[0] + pair[1] + "\u20e3"
)
_ELEMENT = st.one_of(
    _pictographs(),
    st.tuples(_pictographs(), st.one_of(st.just("\ufe0f"), _MODIFIER)).map("".join),
    _FLAG,
    _KEYCAP,
)
_EMOJI = st.lists(_ELEMENT, min_size=1, max_size=4).map("\u200d".join)


@given(_EMOJI)
def test_every_emoji_sequence_within_the_limit_is_one_emoji(text: str) -> None:
    assert is_emoji(text) == (len(text.encode()) <= MAX_EMOJI_BYTES)


@given(_EMOJI, _EMOJI)
def test_two_emoji_side_by_side_are_not_one(first: str, second: str) -> None:
    assert not is_emoji(first + second)


_PLAIN = st.characters(categories=["L", "N", "P", "Z", "Cc"])
"""Letters, digits, punctuation, spaces, controls: never part of an emoji."""


@given(_EMOJI, st.text(_PLAIN, min_size=1, max_size=3))
@example("👍", " ")
@example("1\ufe0f\u20e3", "a")
def test_an_emoji_with_text_around_it_is_not_one(emoji: str, text: str) -> None:
    assert not is_emoji(text + emoji)
    assert not is_emoji(emoji + text)


@given(st.text(max_size=8))
def test_no_letter_digit_space_or_control_is_ever_part_of_one(text: str) -> None:
    """Whatever the input: an accepted one has no letter, no spacing, no control, no bare digit."""
    if not is_emoji(text):
        return
    assert 0 < len(text.encode()) <= MAX_EMOJI_BYTES
    for i, c in enumerate(text):
        category = unicodedata.category(c)
        assert category[0] not in "LZ"
        if category == "Cc":
            pytest.fail(f"control character {c!r}")
        if category == "Nd":  # only as a keycap's base
            assert text[i + 1 : i + 3] in ("\u20e3", "\ufe0f\u20e3")
