"""Full-text search of a user's own messages, in every backend: what a search string means, and
who may search where.

A search string is never handed to an engine as it is: :func:`search_words` keeps only its words
(runs of letters and digits, lowercased), and each backend builds its own query from them, every
word a literal prefix (SQLite FTS5 ``"word"*``, PostgreSQL ``'word':*``, MongoDB a range of the
message's ``terms``). So quotes, ``NEAR``, ``AND``/``OR``/``NOT``, ``*``, ``:``, ``^``, ``-``,
parentheses, backslashes, NUL, ``$where`` or ``{"$gt": ""}`` are separators or plain words, never
syntax, and a string with no word in it finds nothing.

Who finds what: a message is searched for a user who sent it or got a copy of it (a ``receipts``
row: for a group, a member when it was sent), that is not deleted for everyone and that the user
did not delete for themselves; an edited message by its latest text only. Hits come newest first
(message ids grow with time), a page at a time: the cursor of the next page is the id of the last
hit, opaque to clients.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from client_sdk.contract import ErrorCode, is_group_id
from workers.errors import CommandError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_QUERY",
    "SearchPage",
    "check_cursor",
    "clamp_search_limit",
    "forbidden_conversation",
    "fts5_query",
    "index_terms",
    "search_words",
    "term_of",
    "text_has_words",
    "ts_query",
]

MAX_QUERY = 200
"""Characters of a search string (the schema refuses longer ones)."""
MAX_WORDS = 8
"""Words of a search string that count: more narrow nothing in practice and cost a term each."""
MAX_WORD = 64
"""Characters of a word that count (a longer word is searched as its prefix of this length)."""
MAX_TERMS = 4096
"""Entries of one message's MongoDB ``terms`` (its text can be 64 KiB)."""
TERM_PREFIX = 16
"""MongoDB's ``terms`` hold each word's prefixes up to this length (a longer query word is found
by its prefix of this length, then checked against the text)."""
DEFAULT_LIMIT = 20
MAX_LIMIT = 50

_WORD = re.compile(r"[^\W_]+")
"""Letters and digits (any script): what SQLite's unicode61 tokenizer also calls a token."""
_CURSOR = re.compile(r"[0-9a-f]{32}")
"""A message id (see rules.messages.new_message_id): the cursor of the next page."""


@dataclass(frozen=True)
class SearchPage:
    """One page of hits: ``hits`` are messages as the user sees them now, newest first; ``next``
    the cursor of the following page when ``more``."""

    hits: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False
    next: str | None = None


def search_words(query: str) -> list[str]:
    """The words of ``query`` that are searched: lowercased, each once, in order, at most
    ``MAX_WORDS``, each cut to ``MAX_WORD`` characters."""
    words: list[str] = []
    for found in _WORD.findall(query.lower()):
        word = found[:MAX_WORD]
        if word not in words:
            words.append(word)
        if len(words) == MAX_WORDS:
            break
    return words


def fts5_query(words: Sequence[str], *, column: str = "body") -> str:
    """An FTS5 query that finds rows whose ``column`` has every word as a prefix of a token: each
    word a quoted string (a literal, whatever it holds) followed by ``*``."""
    return " AND ".join(f'{column} : "' + word.replace('"', '""') + '"*' for word in words)


def ts_query(words: Sequence[str]) -> str:
    """A PostgreSQL ``to_tsquery`` text: each word a quoted prefix lexeme, all of them required."""
    quoted = ("'" + word.replace("\\", "\\\\").replace("'", "''") + "':*" for word in words)
    return " & ".join(quoted)


def index_terms(text: str) -> list[str]:
    """What MongoDB indexes for a message's text (its ``terms``): every prefix of each word, up to
    ``TERM_PREFIX`` characters, each once. A prefix search is then an equality on a multikey
    index, which the test server (SecantusDB) answers from the index; a range or an anchored
    regex it answers by reading every message."""
    terms: dict[str, None] = {}
    for found in _WORD.findall(text.lower()):
        for length in range(1, min(len(found), TERM_PREFIX) + 1):
            terms[found[:length]] = None
        if len(terms) >= MAX_TERMS:
            break
    return list(terms)


def term_of(word: str) -> str:
    """The ``terms`` entry a query word is looked up by (its prefix when it is longer)."""
    return word[:TERM_PREFIX]


def text_has_words(text: str, words: Sequence[str]) -> bool:
    """Whether every one of ``words`` starts a word of ``text`` (the check of a long query word)."""
    found = [w[:MAX_WORD] for w in _WORD.findall(text.lower())]
    return all(any(t.startswith(word) for t in found) for word in words)


def clamp_search_limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else max(1, min(int(limit), MAX_LIMIT))


def check_cursor(before: str | None) -> str | None:
    """The cursor a client sent back (the id of the last hit it has), ``bad_request`` if it is not one."""
    if before is not None and _CURSOR.fullmatch(before) is None:
        raise CommandError(ErrorCode.BAD_REQUEST, "before: not a search cursor")
    return before


def forbidden_conversation() -> CommandError:
    """The one answer for a conversation the user may not search, whether or not it exists."""
    return CommandError(ErrorCode.FORBIDDEN, "you may not search that conversation")


def dm_member(conversation: str, user: str) -> bool | None:
    """For a 1-on-1 conversation id (``dm:<a>:<b>``), whether ``user`` is one of its two; None for
    a group id (the store decides: a member now, or one with messages from it)."""
    if is_group_id(conversation):
        return None
    parts = conversation.split(":")
    return len(parts) == 3 and parts[0] == "dm" and user in parts[1:]
