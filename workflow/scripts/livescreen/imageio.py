"""Reading raw time-lapses read-only, frame by frame, and writing images.

Raw movies are (T, C, Y, X) TIFF/OME-TIFF files. :class:`Movie` opens one
read-only and reads one frame at a time, so memory stays bounded by a frame
whatever the movie's length. Writers go through a temporary file and
``os.replace`` so that an interrupted job never leaves a truncated output
under the final name.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import tempfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class MovieError(ValueError):
    """A raw movie cannot be read as declared."""


def tcyx_shape(series) -> tuple[int, int, int, int] | None:
    """(T, C, Y, X) shape of a tifffile series, or None if its axes are not TCYX.

    tifffile drops axes of length 1 (a single-frame OME-TIFF reads as ``CYX``);
    the unsqueezed axes are used so that such a movie is still accepted.

    Parameters
    ----------
    series : tifffile.TiffPageSeries
        The image series.

    Returns
    -------
    tuple of int or None
    """
    if series.axes == "TCYX":
        return tuple(int(n) for n in series.shape)
    axes, shape = series.get_axes(False), series.get_shape(False)
    kept = [(a, n) for a, n in zip(axes, shape, strict=True) if a in "TCYX"]
    others_single = all(n == 1 for a, n in zip(axes, shape, strict=True) if a not in "TCYX")
    if "".join(a for a, _ in kept) == "TCYX" and others_single:
        return tuple(int(n) for _, n in kept)
    return None


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def open_tiff(path: str | PathLike):
    """Open a TIFF read-only and parse its first series; reject damaged files.

    tifffile recovers from a truncated or damaged file by logging an error and
    returning fewer pages (which then look like a different axis order). Here
    such a file is an error that says so: tifffile errors while parsing, image
    data that extend past the end of the file, or an empty image.

    Parameters
    ----------
    path : str or path-like
        The image.

    Returns
    -------
    tuple
        ``(tif, series)``: the open ``tifffile.TiffFile`` (close it) and its
        first series.

    Raises
    ------
    MovieError
        Naming the file and what is wrong with it.
    """
    import tifffile

    path = Path(path)
    tif_log = logging.getLogger("tifffile")
    collect = _Collect()
    tif_log.addHandler(collect)
    try:
        try:
            tif = tifffile.TiffFile(path, mode="rb")
        except (tifffile.TiffFileError, OSError, ValueError) as err:
            raise MovieError(f"{path}: not a readable TIFF image ({err})") from err
        try:
            series = tif.series[0] if tif.series else None
        except Exception as err:  # tifffile raises many kinds on damaged files
            tif.close()
            raise MovieError(f"{path}: not a readable TIFF image ({err})") from err
    finally:
        tif_log.removeHandler(collect)
    size = path.stat().st_size
    problem = None
    if collect.messages:
        problem = f"damaged or truncated TIFF ({collect.messages[0]})"
    elif series is None or any(n == 0 for n in series.shape):
        problem = f"empty image (shape {None if series is None else series.shape})"
    else:
        ends = [o + n for page in series.pages if page is not None
                for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)]
        if ends and max(ends) > size:
            problem = (f"truncated TIFF: image data end at byte {max(ends)} but the file has "
                       f"{size} bytes")
    if problem:
        tif.close()
        raise MovieError(f"{path}: {problem}")
    return tif, series


class Movie:
    """A (T, C, Y, X) movie on disk, opened read-only.

    Parameters
    ----------
    path : str or path-like
        TIFF or OME-TIFF file whose first series has axes ``TCYX``.

    Attributes
    ----------
    path : pathlib.Path
    shape : tuple of int
        (T, C, Y, X).
    dtype : numpy.dtype

    Examples
    --------
    >>> with Movie("image.ome.tif") as movie:            # doctest: +SKIP
    ...     for t in range(movie.n_frames):
    ...         frame = movie.frame(t)                     # (C, Y, X)
    """

    def __init__(self, path: str | PathLike):
        self.path = Path(path)
        self._tif, series = open_tiff(self.path)
        shape = tcyx_shape(series)
        if shape is None:
            self._tif.close()
            raise MovieError(
                f"{self.path}: image axes are '{series.axes}' (shape {series.shape}); "
                "expected 'TCYX'"
            )
        self.shape = shape
        self.dtype = np.dtype(series.dtype)
        self._pages = series.pages
        if len(self._pages) != self.shape[0] * self.shape[1]:
            self._tif.close()
            raise MovieError(
                f"{self.path}: {len(self._pages)} image planes stored, expected "
                f"T*C = {self.shape[0]}*{self.shape[1]}"
            )

    @property
    def n_frames(self) -> int:
        """Number of time points T."""
        return self.shape[0]

    @property
    def n_channels(self) -> int:
        """Number of channels C."""
        return self.shape[1]

    def plane(self, t: int, c: int) -> np.ndarray:
        """Read one (Y, X) plane.

        Parameters
        ----------
        t : int
            Frame index, ``0 <= t < T``.
        c : int
            Channel index, ``0 <= c < C``.

        Returns
        -------
        numpy.ndarray
            A new (Y, X) array of the movie's dtype.

        Raises
        ------
        MovieError
            If the indices are out of range or the plane's data are corrupt.
        """
        if not (0 <= t < self.shape[0] and 0 <= c < self.shape[1]):
            raise MovieError(f"{self.path}: frame {t}, channel {c} out of range {self.shape[:2]}")
        try:
            return self._pages[t * self.shape[1] + c].asarray()
        except Exception as err:  # tifffile/imagecodecs raise many kinds on corrupt data
            raise MovieError(f"{self.path}: frame {t}, channel {c} cannot be decoded ({err})"
                             ) from err

    def frame(self, t: int) -> np.ndarray:
        """Read all channels of frame ``t`` as a (C, Y, X) array."""
        return np.stack([self.plane(t, c) for c in range(self.shape[1])])

    def frames(self, channel: int | None = None) -> Iterator[np.ndarray]:
        """Iterate over frames: (C, Y, X) arrays, or (Y, X) planes of ``channel``."""
        for t in range(self.shape[0]):
            yield self.frame(t) if channel is None else self.plane(t, channel)

    def close(self) -> None:
        """Close the file."""
        self._tif.close()

    def __enter__(self) -> Movie:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def atomic_path(path: str | PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched. A
    process killed outright (``kill -9``) leaves its temporary behind under a
    hidden name (``.<name>.<random>.tmp<suffixes>``), never a partial ``path``;
    the next write of ``path`` removes it.

    Parameters
    ----------
    path : str or path-like
        Final destination.

    Yields
    ------
    pathlib.Path
        Where to write; same directory and suffixes as ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + "".join(path.suffixes)
    # A temporary of this path left by a killed writer (kill -9 skips the cleanup
    # below) is removed now that the output is being written again.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates the file 0600; give it the permissions of an ordinary new file.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_labels(path: str | PathLike, labels: np.ndarray) -> None:
    """Write a (T, Y, X) label stack as a zlib-compressed TIFF, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination ``.tif``.
    labels : numpy.ndarray
        Integer array (T, Y, X); written as uint32.
    """
    import tifffile

    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer (T, Y, X) array, got {labels.dtype} "
                         f"{labels.shape}")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.uint32, copy=False), compression="zlib",
                         photometric="minisblack", metadata={"axes": "TYX"})


def content_uuid(array: np.ndarray, *extra: object) -> str:
    """A UUID derived from an array's bytes, shape and dtype (and ``extra``).

    OME-XML requires a UUID per file; tifffile draws a random one, which makes
    two writes of the same movie differ in their bytes. A UUID derived from the
    content is as unique as the content and keeps outputs byte-identical.

    Parameters
    ----------
    array : numpy.ndarray
        The pixels.
    *extra : object
        Further values that identify the file (e.g. metadata); their ``repr``
        is hashed.

    Returns
    -------
    str
        ``"urn:uuid:..."`` (a version-4-formatted UUID).
    """
    import hashlib
    import uuid

    h = hashlib.sha256()
    h.update(repr((array.shape, str(array.dtype), *extra)).encode())
    h.update(np.ascontiguousarray(array).data)
    return uuid.UUID(bytes=h.digest()[:16], version=4).urn


def write_movie(path: str | PathLike, movie: np.ndarray, pixel_size_um: float,
                frame_interval_min: float, channel_names: list[str] | None = None,
                uuid: str | None = None) -> None:
    """Write a (T, C, Y, X) movie as a zlib-compressed OME-TIFF, atomically.

    The file carries no timestamp and its OME UUID derives from the content
    (:func:`content_uuid`) unless given, so the same movie gives the same bytes.

    Parameters
    ----------
    path : str or path-like
        Destination, ``*.ome.tif``.
    movie : numpy.ndarray
        (T, C, Y, X) array, typically uint16.
    pixel_size_um : float
        Pixel size in micrometres (written as PhysicalSizeX/Y).
    frame_interval_min : float
        Frame interval in minutes (written as TimeIncrement).
    channel_names : list of str, optional
        One name per channel.
    uuid : str, optional
        OME UUID (``"urn:uuid:..."``); default: derived from pixels and metadata.
    """
    import tifffile

    movie = np.asarray(movie)
    if movie.ndim != 4:
        raise ValueError(f"movie must be (T, C, Y, X), got shape {movie.shape}")
    metadata = {"axes": "TCYX", "PhysicalSizeX": pixel_size_um, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": pixel_size_um, "PhysicalSizeYUnit": "µm",
                "TimeIncrement": frame_interval_min, "TimeIncrementUnit": "min"}
    if channel_names:
        metadata["Channel"] = {"Name": list(channel_names)}
    metadata["UUID"] = uuid or content_uuid(movie, sorted(metadata.items(), key=str))
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, movie, ome=True, compression="zlib", photometric="minisblack",
                         metadata=metadata)


def inspect_movie(movie: Movie, channels: dict[str, int | None]) -> dict:
    """Check a raw movie's pixels frame by frame and summarise each channel.

    Parameters
    ----------
    movie : Movie
        The open movie.
    channels : dict
        ``imaging.channels`` (role -> index or None).

    Returns
    -------
    dict
        ``shape``, ``dtype`` and, per role, the per-frame mean, 99.9th
        percentile and saturated fraction, plus ``warnings`` (all-black
        channels or frames, saturation, strong bleaching).

    Raises
    ------
    MovieError
        If a channel index is out of range, a plane cannot be decoded, or a
        plane holds NaN/inf values (frame and channel named).
    """
    n_c = movie.n_channels
    roles = {r: i for r, i in channels.items() if i is not None}
    for role, i in roles.items():
        if i >= n_c:
            raise MovieError(f"{movie.path}: channel role '{role}' is index {i} but the movie "
                             f"has {n_c} channel(s)")
    sat = np.iinfo(movie.dtype).max if np.issubdtype(movie.dtype, np.integer) else None
    stats = {r: {"mean": [], "p999": [], "saturated_fraction": []} for r in roles}
    warnings = []
    for t in range(movie.n_frames):
        for role, c in roles.items():
            plane = movie.plane(t, c)
            if np.issubdtype(plane.dtype, np.floating):
                bad = int(np.count_nonzero(~np.isfinite(plane)))
                if bad:
                    raise MovieError(f"{movie.path}: frame {t}, channel {c} ({role}) has {bad} "
                                     "NaN/inf pixel(s)")
            stats[role]["mean"].append(float(plane.mean()))
            stats[role]["p999"].append(float(np.percentile(plane, 99.9)))
            stats[role]["saturated_fraction"].append(
                float(np.count_nonzero(plane >= sat) / plane.size) if sat is not None else 0.0)
    for role, s in stats.items():
        p = np.asarray(s["p999"])
        black = np.flatnonzero(p <= 0)
        if len(black) == movie.n_frames:
            warnings.append(f"channel {roles[role]} ({role}) is black in every frame")
        elif len(black):
            warnings.append(f"channel {roles[role]} ({role}) is black in frame(s) "
                            f"{black.tolist()}")
        if max(s["saturated_fraction"]) > 0.01:
            warnings.append(f"channel {roles[role]} ({role}) has > 1% saturated pixels")
        m = np.asarray(s["mean"])
        if len(m) > 1 and m[0] > 0 and m[-1] < 0.5 * m[0]:
            warnings.append(f"channel {roles[role]} ({role}) mean falls by "
                            f"{100 * (1 - m[-1] / m[0]):.0f}% over the movie (bleaching?)")
    return {"image": str(movie.path), "shape": list(movie.shape), "dtype": str(movie.dtype),
            "channels": stats, "warnings": warnings}
