"""Study design: the sample sheet and the checks a JSON schema cannot express.

The workflow validates ``config/config.yaml`` and the sample sheet with
Snakemake's ``validate()`` and the JSON schemas in ``workflow/schemas``; the
functions here read the sheet, turn schema errors into messages that name the
file, line and column, and check what a schema cannot: duplicate sites, the
control condition, numeric doses, distinct channel roles, and that each image
exists with the declared axes and channel count.

Every failure raises :class:`StudyDesignError` whose message starts with the
file it is about.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

#: Columns every sample sheet must have, in the documented order.
REQUIRED_COLUMNS = (
    "plate", "well", "field", "condition", "compound", "dose", "dose_unit", "role", "image",
)
#: Columns that identify one site.
SITE_KEYS = ("plate", "well", "field")
#: Allowed values of the ``role`` column.
ROLES = ("sample", "negative_control", "positive_control")
#: Column names used by the result tables; free sample-sheet columns must not reuse them.
RESERVED_COLUMNS = frozenset({
    "site_id", "population", "track_id", "parent_track_id", "label_id", "frame", "time_min",
    "y_px", "x_px", "y_um", "x_um", "area_um2", "generation", "outcome", "target_track_id",
    "effector_track_id", "host_track_id",
})
#: Optional sample-sheet column: a non-empty value excludes the site from the
#: study tables and statistics and gives the reason (recorded in
#: ``results/tables/missing_sites.parquet``).
EXCLUDE_COLUMN = "exclude"
#: Where the simulator writes each site's movie (relative to the working directory).
SIMULATED_IMAGE = "resources/simulated/{plate}/{well}/{field}/image.ome.tif"


class StudyDesignError(ValueError):
    """A problem with the study design: config, sample sheet or raw images."""


@dataclass(frozen=True)
class ImageHeader:
    """What the header of a raw image declares.

    Attributes
    ----------
    axes : str
        Axis letters as stored, e.g. ``"TCYX"``.
    shape : tuple of int
        Shape of the first image series.
    dtype : str
        NumPy dtype name of the pixels.
    """

    axes: str
    shape: tuple[int, ...]
    dtype: str


def _line(row: int) -> str:
    """Human-readable position of 0-based data row ``row`` (header is line 1)."""
    return f"row {row + 1} (line {row + 2})"


def read_sample_sheet(path: str | PathLike) -> pd.DataFrame:
    """Read a tab-separated sample sheet with every column as text.

    Parameters
    ----------
    path : str or path-like
        The sample sheet (TSV, header line first).

    Returns
    -------
    pandas.DataFrame
        One row per site; all columns are strings except ``dose`` (float).
        Leading/trailing whitespace is stripped from every cell.

    Raises
    ------
    StudyDesignError
        If the file is missing, unreadable, lacks required columns, has an
        empty required cell or a dose that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyDesignError(f"{path}: sample sheet not found")
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise StudyDesignError(f"{path}: cannot be read as a tab-separated table: {err}") from err
    sheet = sheet.apply(lambda col: col.str.strip())
    sheet.columns = [c.strip() for c in sheet.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in sheet.columns]
    if missing:
        raise StudyDesignError(
            f"{path}: missing column(s) {', '.join(missing)}; required columns are "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    if sheet.empty:
        raise StudyDesignError(f"{path}: the sample sheet has no rows")
    for col in REQUIRED_COLUMNS:
        empty = sheet.index[sheet[col] == ""]
        if len(empty):
            raise StudyDesignError(f"{path}, {_line(empty[0])}, column '{col}': empty value")
    dose = pd.to_numeric(sheet["dose"], errors="coerce")
    bad = sheet.index[dose.isna()]
    if len(bad):
        i = bad[0]
        raise StudyDesignError(
            f"{path}, {_line(i)}, column 'dose': {sheet.at[i, 'dose']!r} is not a number "
            f"(write 0 for untreated wells and give the unit in 'dose_unit')"
        )
    return sheet.assign(dose=dose.astype(float))


def explain_validation_error(err: Exception, source: str | PathLike, keys: Iterable[str] = ()
                             ) -> str:
    """Turn a Snakemake ``validate()`` error into a message naming file, row and key.

    Parameters
    ----------
    err : Exception
        The ``WorkflowError`` raised by :func:`snakemake.utils.validate` (its
        ``__context__`` is the :class:`jsonschema.ValidationError`), or the
        ``ValidationError`` itself.
    source : str or path-like
        The file that was validated (config or sample sheet).
    keys : iterable of str, optional
        Known keys at the level of an unexpected key, for a "did you mean" hint.

    Returns
    -------
    str
        A one-line message.
    """
    import jsonschema

    # Snakemake formats its arguments into text; the original error survives as
    # the exception being handled when it raised (``__context__``).
    inner = err if isinstance(err, jsonschema.ValidationError) else err.__context__
    if not isinstance(inner, jsonschema.ValidationError):
        inner = next((a for a in getattr(err, "args", ())
                      if isinstance(a, jsonschema.ValidationError)), None)
    outer = str(err.args[0]).splitlines()[0] if getattr(err, "args", None) else str(err)
    if inner is None:
        return f"{source}: {outer}"
    where = f"{source}"
    m = re.search(r"row (\d+)", outer)
    if m:
        where += f", {_line(int(m.group(1)))}"
    path = [str(p) for p in inner.absolute_path]
    if path:
        where += f", {'column' if m else 'key'} '{'.'.join(path)}'"
    msg = inner.message
    if inner.validator == "additionalProperties":
        unexpected = re.findall(r"'([^']+)'", msg.split("(")[-1])
        allowed = list(inner.schema.get("properties", {})) or list(keys)
        hints = []
        for key in unexpected:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close
                                                    else f" (allowed: {', '.join(allowed)})"))
        msg = "; ".join(hints) or msg
    return f"{where}: {msg}"


def check_channels(channels: Mapping[str, int | None]) -> None:
    """Check that channel roles point at distinct channel indices.

    Parameters
    ----------
    channels : mapping
        ``imaging.channels`` from the config: role -> 0-based index or None.

    Raises
    ------
    StudyDesignError
        If two roles share an index.
    """
    used: dict[int, str] = {}
    for role, index in channels.items():
        if index is None:
            continue
        if index in used:
            raise StudyDesignError(
                f"config: imaging.channels.{role} and imaging.channels.{used[index]} "
                f"both point at channel {index}"
            )
        used[index] = role


def check_sites(sheet: pd.DataFrame, source: str | PathLike, control_condition: str) -> None:
    """Check the site-level design of a sample sheet.

    Parameters
    ----------
    sheet : pandas.DataFrame
        As returned by :func:`read_sample_sheet`.
    source : str or path-like
        The sample sheet's path, for messages.
    control_condition : str
        ``study.control_condition`` from the config.

    Raises
    ------
    StudyDesignError
        On a duplicated plate/well/field, a control condition absent from the
        sheet, a condition whose wells disagree on compound/dose/unit, or a free
        column that reuses a results-table column name.
    """
    dup = sheet.duplicated(list(SITE_KEYS), keep="first")
    if dup.any():
        i = int(sheet.index[dup][0])
        key = "/".join(sheet.loc[i, list(SITE_KEYS)])
        same = (sheet[list(SITE_KEYS)] == sheet.loc[i, list(SITE_KEYS)]).all(axis=1)
        first = int(sheet.index[same][0])
        raise StudyDesignError(
            f"{source}, {_line(i)}, columns plate/well/field: site {key} is listed twice "
            f"(also {_line(first)})"
        )
    if control_condition not in set(sheet["condition"]):
        raise StudyDesignError(
            f"{source}, column 'condition': the control condition '{control_condition}' "
            f"(config study.control_condition) does not occur; conditions are "
            f"{', '.join(sorted(set(sheet['condition'])))}"
        )
    for cond, grp in sheet.groupby("condition", sort=True):
        for col in ("compound", "dose", "dose_unit"):
            if grp[col].nunique() > 1:
                i = int(grp.index[(grp[col] != grp[col].iloc[0]).to_numpy()][0])
                raise StudyDesignError(
                    f"{source}, {_line(i)}, column '{col}': condition '{cond}' has more than "
                    f"one {col} ({', '.join(map(str, grp[col].unique()))}); give each "
                    f"compound/dose its own condition name"
                )
    clash = sorted(RESERVED_COLUMNS.intersection(sheet.columns))
    if clash:
        raise StudyDesignError(
            f"{source}: column(s) {', '.join(clash)} are names used by the results tables; "
            "rename them"
        )


def read_image_header(path: str | PathLike) -> ImageHeader:
    """Read axes, shape and dtype of a TIFF/OME-TIFF without reading pixels.

    The file is opened read-only.

    Parameters
    ----------
    path : str or path-like
        The raw image.

    Returns
    -------
    ImageHeader

    Raises
    ------
    StudyDesignError
        If the file cannot be parsed as a TIFF, is truncated or damaged, or
        holds an empty image.
    """
    from livescreen.imageio import MovieError, open_tiff, tcyx_shape

    try:
        tif, series = open_tiff(path)
    except MovieError as err:
        raise StudyDesignError(str(err)) from err
    with tif:
        shape = tcyx_shape(series)
        if shape is not None:  # single-frame movies read as CYX: keep T
            return ImageHeader(axes="TCYX", shape=shape, dtype=str(series.dtype))
        return ImageHeader(axes=series.axes, shape=tuple(series.shape), dtype=str(series.dtype))


def check_image_header(header: ImageHeader, path: str | PathLike, axes: str,
                       channels: Mapping[str, int | None]) -> None:
    """Check a raw image's declared axes and channel count against the config.

    Parameters
    ----------
    header : ImageHeader
        From :func:`read_image_header`.
    path : str or path-like
        The image, for messages.
    axes : str
        ``imaging.axes`` from the config, e.g. ``"TCYX"``.
    channels : mapping
        ``imaging.channels`` from the config.

    Raises
    ------
    StudyDesignError
        If the axes differ or the image has fewer channels than the roles need.
    """
    if header.axes != axes:
        raise StudyDesignError(
            f"{path}: image axes are '{header.axes}' (shape {header.shape}) but config "
            f"imaging.axes is '{axes}'; re-save the movie as {axes} "
            "(e.g. tifffile.imwrite(..., metadata={'axes': '" + axes + "'}))"
        )
    n_channels = header.shape[axes.index("C")]
    needed = {role: i for role, i in channels.items() if i is not None}
    too_high = {role: i for role, i in needed.items() if i >= n_channels}
    if too_high:
        roles = ", ".join(f"{r}={i}" for r, i in too_high.items())
        raise StudyDesignError(
            f"{path}: image has {n_channels} channel(s) but config imaging.channels "
            f"needs index {roles} (0-based)"
        )


def check_images(sheet: pd.DataFrame, source: str | PathLike, imaging: Mapping,
                 simulate: bool, headers: Mapping[str, ImageHeader] | None = None
                 ) -> dict[str, ImageHeader]:
    """Check every site's image: where it is, and (if it exists) its header.

    Parameters
    ----------
    sheet : pandas.DataFrame
        As returned by :func:`read_sample_sheet`.
    source : str or path-like
        The sample sheet's path, for messages.
    imaging : mapping
        ``imaging`` section of the config (``axes``, ``channels``).
    simulate : bool
        True when the images are made by the simulator; they must then sit at
        :data:`SIMULATED_IMAGE` and need not exist yet.
    headers : mapping, optional
        Headers already read (path -> header), e.g. from a cache; not re-read.

    Returns
    -------
    dict
        Path -> :class:`ImageHeader` for every existing image checked.

    Raises
    ------
    StudyDesignError
        Naming the sheet row and the image on the first problem found.
    """
    headers = dict(headers or {})
    for i, row in sheet.iterrows():
        image = row["image"]
        where = f"{source}, {_line(int(i))}, column 'image'"
        if simulate:
            expected = SIMULATED_IMAGE.format(**{k: row[k] for k in SITE_KEYS})
            if image != expected:
                raise StudyDesignError(
                    f"{where}: simulate.enabled is true, so the image must be '{expected}' "
                    f"(made by rule simulate_site), not '{image}'"
                )
            if not Path(image).exists():
                continue
        elif not Path(image).is_file():
            raise StudyDesignError(f"{where}: image file '{image}' does not exist")
        try:
            header = headers.get(image) or read_image_header(image)
            check_image_header(header, image, imaging.get("axes", "TCYX"), imaging["channels"])
        except StudyDesignError as err:
            raise StudyDesignError(f"{where}: {err}") from err
        headers[image] = header
    return headers


def site_id(plate: str, well: str, field: str) -> str:
    """Identifier of one site, ``"{plate}/{well}/{field}"``.

    Parameters
    ----------
    plate, well, field : str
        The site's keys.

    Returns
    -------
    str
    """
    return f"{plate}/{well}/{field}"


def excluded_sites(sheet: pd.DataFrame) -> dict[str, str]:
    """Sites that the sheet's ``exclude`` column takes out of the study tables.

    Parameters
    ----------
    sheet : pandas.DataFrame
        The sample sheet (as read, or ``results/tables/samples.parquet``).

    Returns
    -------
    dict
        ``site_id`` -> reason, in sheet order; empty if the column is absent.
    """
    if EXCLUDE_COLUMN not in sheet.columns:
        return {}
    reason = sheet[EXCLUDE_COLUMN].fillna("").astype(str).str.strip()
    keys = sheet[list(SITE_KEYS)].astype(str).itertuples(index=False)
    return {site_id(*k): r for k, r in zip(keys, reason, strict=True) if r}


def included(sheet: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``sheet`` not excluded by its ``exclude`` column."""
    if EXCLUDE_COLUMN not in sheet.columns:
        return sheet
    return sheet[sheet[EXCLUDE_COLUMN].fillna("").astype(str).str.strip() == ""]


def format_sites(sheet: pd.DataFrame, pattern: str,
                 populations: Iterable[str] | None = None) -> list[str]:
    """Format ``pattern`` with plate/well/field of every row (and each population).

    Parameters
    ----------
    sheet : pandas.DataFrame
        Sample-sheet rows.
    pattern : str
        A path with ``{plate}``, ``{well}``, ``{field}`` (and ``{population}``).
    populations : iterable of str, optional
        Populations, site-major order.

    Returns
    -------
    list of str
    """
    sites = sheet[list(SITE_KEYS)].astype(str).to_dict("records")
    if populations is None:
        return [pattern.format(**site) for site in sites]
    return [pattern.format(population=p, **site) for site in sites for p in populations]


def wildcard_pattern(values: Iterable[str]) -> str:
    """Regular expression matching exactly the given wildcard values.

    Parameters
    ----------
    values : iterable of str
        Allowed values, e.g. the plates of the sample sheet.

    Returns
    -------
    str
        An alternation of the escaped values, longest first.
    """
    return "|".join(re.escape(v) for v in sorted(set(values), key=lambda v: (-len(v), v)))


def sheet_table(sheet: pd.DataFrame) -> pd.DataFrame:
    """The sample sheet as a results table: ``site_id`` first, then every column.

    Parameters
    ----------
    sheet : pandas.DataFrame
        As returned by :func:`read_sample_sheet` (not modified).

    Returns
    -------
    pandas.DataFrame
        Sorted by plate, well, field.
    """
    ids = [site_id(*keys) for keys in sheet[list(SITE_KEYS)].itertuples(index=False)]
    out = sheet.assign(site_id=ids)
    cols = ["site_id", *[c for c in sheet.columns]]
    return out[cols].sort_values(list(SITE_KEYS), kind="stable").reset_index(drop=True)
