"""Logging set-up shared by the workflow scripts.

Every Snakemake rule has a ``log:`` file; scripts call :func:`script_logging`
once, first thing, so that library loggers (``livescreen.*``), warnings and
uncaught exceptions all end up in that file with timestamps.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def script_logging(log_path: str | PathLike | None, level: int = logging.INFO) -> logging.Logger:
    """Send all logging (and uncaught exceptions) of a workflow script to a file.

    Parameters
    ----------
    log_path : str or path-like or None
        The rule's ``log:`` file. ``None`` logs to standard error only.
    level : int, optional
        Logging level of the root logger, ``logging.INFO`` by default.

    Returns
    -------
    logging.Logger
        The ``livescreen`` logger, ready to use.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)

    def _excepthook(exc_type, exc, tb):  # pragma: no cover - exercised by failing jobs
        logging.getLogger("livescreen").critical(
            "%s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
        )

    sys.excepthook = _excepthook
    return logging.getLogger("livescreen")


def progress(items: Iterable[T], total: int, what: str, logger: logging.Logger,
             every_pct: int = 10) -> Iterator[T]:
    """Yield ``items`` while logging progress about every ``every_pct`` percent.

    Parameters
    ----------
    items : iterable
        The items to pass through unchanged.
    total : int
        Number of items expected (for the percentage).
    what : str
        What is being counted, e.g. ``"frames"``.
    logger : logging.Logger
        Where progress lines go.
    every_pct : int, optional
        Log a line each time this many more percent are done (default 10).

    Yields
    ------
    object
        The items of ``items``, in order.
    """
    step = max(1, total * every_pct // 100)
    for i, item in enumerate(items, start=1):
        yield item
        if i == total or i % step == 0:
            logger.info("%d/%d %s (%d%%)", i, total, what, 100 * i // max(total, 1))
