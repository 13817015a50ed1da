"""Chaining core generators: pass a step's progress on, keep its result.

The long-running core generators yield progress items and then their result as the last item.
`relay` lets a generator that runs such a step write `result = yield from relay(step, ResultType)`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

R = TypeVar("R")


def relay(items: Iterable[Any], result_type: type[R],
          wrap: Callable[[Any], Any] | None = None) -> Generator[Any, None, R | None]:
    """Yield every item that is not a `result_type` (through `wrap` if given) and return the last one
    that is (None if the step yielded none, e.g. when it was cancelled)."""
    result: R | None = None
    for item in items:
        if isinstance(item, result_type):
            result = item
        else:
            yield item if wrap is None else wrap(item)
    return result
