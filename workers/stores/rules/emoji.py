"""What counts as one emoji: the grammar of an emoji sequence (Unicode TS #51, ED-14 to ED-17),
over the Extended_Pictographic code points of ``emoji-data.txt``.

The standard library's ``unicodedata`` has no emoji properties, and the emoji themselves are one
short table of code point ranges, so the check is written here rather than pulled in with a
library. Extended_Pictographic is meant to be stable: it already covers the blocks reserved for
future emoji, so an emoji newer than this table (or than the server's Python) is accepted.

One emoji is one *element*, or elements joined by ZERO WIDTH JOINER (family, profession,
"heart on fire"...). An element is:

- a pictographic character, optionally followed by VARIATION SELECTOR-16 (emoji presentation) or
  by a skin tone modifier (``👍🏽``);
- a flag: two regional indicator letters (``🇫🇷``);
- a keycap: ``0``-``9``, ``#`` or ``*``, optionally VS16, then COMBINING ENCLOSING KEYCAP (``1️⃣``);
- a subdivision flag: BLACK FLAG, tag letters, CANCEL TAG (``🏴󠁧󠁢󠁳󠁣󠁴󠁿``).

Text, digits, spaces, two emoji side by side, a lone modifier or joiner: none of these is one
emoji. A client's picker sends fully-qualified emoji; the check also takes the unqualified form
(without VS16), as keyboards send it. Extended_Pictographic is a little wider than the Emoji
property (a few pictographs such as BLACK STAR are in it without being emoji); those pass too,
which costs nothing: each is still one pictograph.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

__all__ = ["MAX_EMOJI_BYTES", "is_emoji"]

MAX_EMOJI_BYTES: Final = 32
"""The longest emoji accepted, in UTF-8 bytes: every single-person and most family sequences."""

_ZWJ: Final = 0x200D
_VS16: Final = 0xFE0F
_KEYCAP: Final = 0x20E3
_KEYCAP_BASES: Final = frozenset(map(ord, "0123456789#*"))
_MODIFIERS: Final = range(0x1F3FB, 0x1F3FF + 1)
_REGIONAL: Final = range(0x1F1E6, 0x1F1FF + 1)
_BLACK_FLAG: Final = 0x1F3F4
_TAGS: Final = range(0xE0020, 0xE007E + 1)
_CANCEL_TAG: Final = 0xE007F

# Extended_Pictographic=Yes (emoji-data.txt), as inclusive ranges in code point order.
_PICTOGRAPHIC: Final = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
    (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
    (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734),
    (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755),
    (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
    (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
    (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D), (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip
_STARTS: Final = tuple(start for start, _end in _PICTOGRAPHIC)


def _pictographic(cp: int) -> bool:
    i = bisect_right(_STARTS, cp) - 1
    return i >= 0 and cp <= _PICTOGRAPHIC[i][1]


def _element(cps: list[int], i: int) -> int | None:
    """The end of the emoji element that starts at ``cps[i]``; None: no element starts there."""
    n = len(cps)
    cp = cps[i]
    if cp in _REGIONAL:
        return i + 2 if i + 1 < n and cps[i + 1] in _REGIONAL else None
    if cp in _KEYCAP_BASES:
        j = i + 1
        if j < n and cps[j] == _VS16:
            j += 1
        return j + 1 if j < n and cps[j] == _KEYCAP else None
    if cp == _BLACK_FLAG and i + 1 < n and cps[i + 1] in _TAGS:
        j = i + 1
        while j < n and cps[j] in _TAGS:
            j += 1
        return j + 1 if j < n and cps[j] == _CANCEL_TAG else None
    if not _pictographic(cp):
        return None
    j = i + 1
    if j < n and (cps[j] == _VS16 or cps[j] in _MODIFIERS):
        j += 1
    return j


def is_emoji(text: str) -> bool:
    """Whether ``text`` is exactly one emoji (see the module), at most ``MAX_EMOJI_BYTES`` long."""
    if not text or len(text.encode("utf-8", "surrogatepass")) > MAX_EMOJI_BYTES:
        return False
    cps = [ord(c) for c in text]
    i = 0
    while True:
        end = _element(cps, i)
        if end is None:
            return False
        if end == len(cps):
            return True
        if cps[end] != _ZWJ or end + 1 == len(cps):
            return False
        i = end + 1
