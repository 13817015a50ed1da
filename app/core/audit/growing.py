"""A per-point column that only grows: what the map's per-generation lists are.

A refresh appends a few points to a map of a million. Copying each per-point list to append to it
costs time in proportion to the whole map; worse, Python's garbage collector traverses every item
of every list it tracks, each new million-item list again at each generation, and all of them at
each full collection (about 100 ms for the map's seven columns at 1,000,000 points, on whichever
thread holds the interpreter, so the UI thread waits too). A Grown holds its items in a numpy
object array (not tracked by the collector) with room to spare, and is a view of its first n:
`extended` writes new items after them when this view is the newest, so a refresh costs time in
proportion to its new items, and an older view (the map still on screen) keeps seeing exactly what
it saw, since a slot once filled is never written again. Only one owner appends (the refresh
chain); extending an older view copies.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import numpy as np

T = TypeVar("T")
MIN_ROOM = 1024


class _Buffer:
    """An object array and how many of its slots are filled (shared by the views of one column)."""

    __slots__ = ("array", "filled")

    def __init__(self, items: list[Any], room: int) -> None:
        self.array = np.empty(max(room, len(items)), dtype=object)
        self.array[:len(items)] = np.fromiter(items, dtype=object, count=len(items))
        self.filled = len(items)


class Grown(Sequence[T], Generic[T]):
    """The first `n` items of a column that only grows; a read-only sequence that compares like a list."""

    __slots__ = ("_buffer", "_n")

    def __init__(self, items: Iterable[T] = ()) -> None:
        values = list(items)
        self._buffer = _Buffer(values, len(values) + max(MIN_ROOM, len(values) // 8))  # room for refreshes
        self._n = len(values)

    @classmethod
    def _view(cls, buffer: _Buffer, n: int) -> Grown[T]:
        view = cls.__new__(cls)
        view._buffer, view._n = buffer, n
        return view

    def extended(self, new: Iterable[T]) -> Grown[T]:
        """This column followed by `new`, in time proportional to `new` when this is the newest view
        (amortised: the array doubles when full)."""
        values, buffer, n = list(new), self._buffer, self._n
        k = len(values)
        if buffer.filled == n and n + k <= len(buffer.array):
            buffer.array[n:n + k] = np.fromiter(values, dtype=object, count=k)
            buffer.filled = n + k
            return Grown._view(buffer, n + k)
        grown = _Buffer([*self._buffer.array[:n].tolist(), *values], max(2 * (n + k), MIN_ROOM))
        return Grown._view(grown, n + k)

    def replaced(self, changes: Mapping[int, T]) -> Grown[T]:
        """A new column (with room to grow) that is this one with the items at some positions
        changed; this view keeps what it holds. One copy of the item pointers, in C."""
        n = self._n
        buffer = _Buffer([], n + max(MIN_ROOM, n // 8))
        buffer.array[:n] = self._buffer.array[:n]
        buffer.filled = n
        for position, value in changes.items():
            if not 0 <= position < n:
                raise IndexError("Grown index out of range")
            buffer.array[position] = value
        return Grown._view(buffer, n)

    def positions_of(self, values: Iterable[T]) -> np.ndarray:
        """The positions (ascending) of the items equal to one of `values`, compared in C."""
        wanted = list(values)
        if not wanted or not self._n:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self._buffer.array[:self._n], np.array(wanted, dtype=object)))

    def shares(self, other: object) -> bool:
        """Whether `other` is a view of the same column (one of them extends the other, uncopied)."""
        return isinstance(other, Grown) and other._buffer is self._buffer

    def continues(self, older: Sequence[T]) -> bool:
        """Whether `older` is this column's start: O(1) when it is an earlier view of the same column."""
        if self.shares(older):
            return len(older) <= self._n
        n = len(older)
        return n <= self._n and self[:n] == list(older)

    def position(self, value: T) -> int | None:
        """Where `value` is in a column held in ascending order (binary search), or None."""
        at = bisect_left(self._buffer.array, value, 0, self._n)  # type: ignore[call-overload]
        return at if at < self._n and self._buffer.array[at] == value else None

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return self._buffer.array[:self._n][index].tolist()
        position = index + self._n if index < 0 else index
        if not 0 <= position < self._n:
            raise IndexError("Grown index out of range")
        return self._buffer.array[position]

    def __iter__(self) -> Iterator[T]:
        return iter(self._buffer.array[:self._n])

    def __eq__(self, other: object) -> bool:
        if self.shares(other):
            return len(other) == self._n  # type: ignore[arg-type]
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == self._n and self[:] == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[Any]) -> list[Any]:
        return [*self, *other]

    def __repr__(self) -> str:
        return f"Grown({self[:]!r})"


def starts_with(column: Sequence[T], older: Sequence[T]) -> bool:
    """Whether `older` is the start of `column`: O(1) when both are views of one Grown column."""
    if isinstance(column, Grown):
        return column.continues(older)
    return list(column[:len(older)]) == list(older)
