"""Entry point of the packaged app: the same `main()` as the `stillroom` console script."""

from __future__ import annotations

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.__main__ import main

    main()
