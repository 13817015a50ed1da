"""The map's per-point columns (app/core/audit/growing.py): a Grown reads and compares like a list,
grows in place from its newest view, and never changes what an older view holds."""

from __future__ import annotations

import gc

import pytest

from app.core.audit.growing import Grown, starts_with


def test_a_column_reads_and_compares_like_the_list_it_holds() -> None:
    column = Grown(["a", "b", "c"])
    assert len(column) == 3 and list(column) == ["a", "b", "c"] and column == ["a", "b", "c"]
    assert column[0] == "a" and column[-1] == "c" and column[1:] == ["b", "c"] and column[::-1] == ["c", "b", "a"]
    assert column != ["a", "b"] and column != ["a", "b", "x"] and ["a", "b", "c"] == column
    assert "b" in column and column.index("c") == 2 and column + ["d"] == ["a", "b", "c", "d"]
    with pytest.raises(IndexError):
        column[3]
    with pytest.raises(IndexError):
        column[-4]
    with pytest.raises(TypeError):
        column[0] = "z"  # type: ignore[index]
    assert Grown() == [] and not Grown()


def test_the_newest_view_grows_in_place_and_older_views_keep_what_they_saw() -> None:
    first = Grown([1, 2, 3])
    second = first.extended([4])
    third = second.extended(range(5, 10))
    assert first == [1, 2, 3] and second == [1, 2, 3, 4] and third == list(range(1, 10))
    assert second.shares(third) and third.continues(first) and third.continues([1, 2, 3, 4])
    assert not first.continues(second) and not third.continues([1, 2, 4])
    # an older view extended again is copied: the two histories do not see each other
    branch = second.extended(["other"])
    assert not branch.shares(third) and branch == [1, 2, 3, 4, "other"] and third == list(range(1, 10))
    assert third.extended([10]) == list(range(1, 11)) and branch.extended([0])[-2:] == ["other", 0]


def test_growing_one_item_at_a_time_is_amortised() -> None:
    column, buffers = Grown(["x"] * 1000), set()
    for i in range(20_000):
        column = column.extended([i])
        buffers.add(id(column._buffer))
    assert len(column) == 21_000 and column[-1] == 19_999 and column[999] == "x"
    assert len(buffers) <= 6  # the array doubles when full: a few copies for 20,000 appends


def test_a_column_in_ascending_order_finds_positions() -> None:
    column = Grown([2, 3, 5, 8, 13])
    assert [column.position(v) for v in (2, 5, 13, 1, 4, 99)] == [0, 2, 4, None, None, None]
    assert column.extended([21]).position(21) == 5 and column.position(21) is None


def test_the_items_are_not_traversed_by_the_garbage_collector() -> None:
    column = Grown(f"point {i}" for i in range(10))
    assert not gc.is_tracked(column._buffer.array)


def test_starts_with_takes_plain_lists_too() -> None:
    assert starts_with(["a", "b", "c"], ["a", "b"]) and not starts_with(["a", "b"], ["b"])
    assert starts_with(Grown(["a", "b"]), ["a"])


def test_replaced_changes_a_copy_and_positions_of_finds_items() -> None:
    column = Grown(["low", "high", "low", "none"]).extended(["low"])
    changed = column.replaced({0: "medium", 4: "high"})
    assert changed == ["medium", "high", "low", "none", "high"] and column == ["low", "high", "low", "none", "low"]
    assert not changed.shares(column) and changed.extended(["x"])[-1] == "x" and len(column) == 5
    with pytest.raises(IndexError):
        column.replaced({5: "x"})
    assert column.positions_of({"low"}).tolist() == [0, 2, 4] and column.positions_of(["none", "high"]).tolist() == [1, 3]
    assert column.positions_of([]).tolist() == [] and Grown().positions_of(["low"]).tolist() == []
