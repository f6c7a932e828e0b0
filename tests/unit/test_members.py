"""broker/members.py: per-key member sets that keep a lone member as itself."""

from __future__ import annotations

from broker.members import add_member, count_members, has_member, members_of, remove_member


def test_members_come_and_go_as_with_sets_of_them() -> None:
    # Given an empty index
    index: dict[str, int | set[int]] = {}
    # When members come: the first is new for its key, the same one again counts once
    assert add_member(index, "ann", 1) is True
    assert add_member(index, "ann", 1) is False
    assert (count_members(index, "ann"), members_of(index, "ann")) == (1, {1})
    assert add_member(index, "ann", 2) is False
    assert add_member(index, "ann", 3) is False
    assert (count_members(index, "ann"), members_of(index, "ann")) == (3, {1, 2, 3})
    assert has_member(index, "ann", 2)
    assert not has_member(index, "ann", 4)
    assert not has_member(index, "bob", 1)
    # Then they leave in any order, a stranger's leave changes nothing, and the key goes with the last
    assert remove_member(index, "ann", 4) is False
    assert remove_member(index, "bob", 1) is False
    assert remove_member(index, "ann", 2) is True
    assert members_of(index, "ann") == {1, 3}
    assert remove_member(index, "ann", 1) is True
    assert remove_member(index, "ann", 1) is False
    assert (count_members(index, "ann"), has_member(index, "ann", 3)) == (1, True)
    assert remove_member(index, "ann", 3) is True
    assert "ann" not in index
    assert (count_members(index, "ann"), members_of(index, "ann")) == (0, set())


def test_a_lone_member_is_kept_as_itself() -> None:
    index: dict[str, str | set[str]] = {}
    add_member(index, "ann", "phone")
    assert index == {"ann": "phone"}  # not a set of one: what saves the memory
    add_member(index, "ann", "laptop")
    remove_member(index, "ann", "phone")
    assert index == {"ann": "laptop"}
