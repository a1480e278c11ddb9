"""Table contracts and Parquet output with provenance metadata.

Every table the workflow writes has a pandera ``DataFrameModel`` that is
checked before writing; :func:`write_table` validates, attaches provenance
(livescreen and key package versions, plus whatever the caller adds, e.g. the
config hash) to the Parquet schema metadata under the key ``livescreen``, and
writes atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from os import PathLike
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq
from pandera.typing import Series

from livescreen.imageio import atomic_path

#: Packages whose versions are recorded in every table.
PROVENANCE_PACKAGES = ("livescreen", "numpy", "pandas", "pyarrow", "scikit-image", "tifffile",
                       "cellpose", "torch", "btrack", "snakemake")


class SampleSheet(pa.DataFrameModel):
    """The validated sample sheet (``results/tables/samples.parquet``).

    One row per site; free columns of the sheet (donor, effector type, ...)
    are kept as text.
    """

    site_id: Series[str] = pa.Field(unique=True, description="plate/well/field")
    plate: Series[str]
    well: Series[str]
    field: Series[str]
    condition: Series[str]
    compound: Series[str]
    dose: Series[float] = pa.Field(ge=0)
    dose_unit: Series[str]
    role: Series[str] = pa.Field(isin=["sample", "negative_control", "positive_control"])
    image: Series[str]

    class Config:
        strict = False
        coerce = True


def package_versions(names=PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"absent"`` for those not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def file_sha256(path: str | PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_sha256(config: Mapping[str, Any]) -> str:
    """SHA-256 of a config mapping, independent of key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def write_table(df: pd.DataFrame, path: str | PathLike, model: type[pa.DataFrameModel] | None,
                provenance: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Validate ``df`` against ``model`` and write it to Parquet with provenance.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; not modified.
    path : str or path-like
        Destination ``.parquet`` (written atomically).
    model : pandera.DataFrameModel subclass or None
        Contract checked before writing (``None`` skips validation).
    provenance : mapping, optional
        Extra provenance (config hash, sample-sheet hash, git commit, ...),
        stored with the package versions as JSON under the metadata key
        ``livescreen``. Keep it free of timestamps so outputs stay byte-identical.

    Returns
    -------
    pandas.DataFrame
        The validated (possibly type-coerced) table that was written.

    Raises
    ------
    pandera.errors.SchemaError
        If the table breaks its contract; nothing is written.
    """
    table = model.validate(df) if model is not None else df
    arrow = pa_arrow.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    record = {"packages": package_versions(), **dict(provenance or {})}
    meta[b"livescreen"] = json.dumps(record, sort_keys=True, default=str).encode()
    arrow = arrow.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)
    return table


def read_provenance(path: str | PathLike) -> dict[str, Any]:
    """The provenance record stored by :func:`write_table` in a Parquet file."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"livescreen", b"{}"))


def git_commit(repo: str | PathLike = ".") -> str:
    """Current git commit of ``repo`` (``"+dirty"`` appended if modified), or ``"unknown"``."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def provenance(config: Mapping[str, Any], samples_path: str | PathLike,
               repo: str | PathLike | None = None) -> dict[str, str]:
    """Provenance record of a run: config hash, sample-sheet hash, git commit.

    Parameters
    ----------
    config : mapping
        The workflow config.
    samples_path : str or path-like
        The sample sheet file.
    repo : str or path-like, optional
        The workflow's git checkout (default: this library's checkout).

    Returns
    -------
    dict
    """
    from pathlib import Path

    repo = repo or Path(__file__).resolve().parents[3]
    return {"config_sha256": config_sha256(config), "samples_sha256": file_sha256(samples_path),
            "git_commit": git_commit(repo)}


#: Where :func:`livescreen.figures.style.save` stores a figure's provenance, per format.
FIGURE_PROVENANCE_KEYS = {"png": "livescreen", "pdf": "Subject", "svg": "Description"}


def figure_provenance(tables: Mapping[str, str | PathLike]) -> dict[str, Any]:
    """Provenance of a figure drawn from study tables.

    Parameters
    ----------
    tables : mapping
        Table name -> Parquet file the figure was drawn from.

    Returns
    -------
    dict
        ``tables``: per table its SHA-256 and its own provenance (config and
        sample-sheet hashes, git commit, excluded sites); ``packages``: the
        versions recorded in the first table. Tables are traced, not the
        machine that drew the figure, so redrawing archived tables keeps the
        provenance of the run that made them.
    """
    out: dict[str, Any] = {"tables": {}}
    for name, path in tables.items():
        record = read_provenance(path)
        out.setdefault("packages", record.pop("packages", {}))
        record.pop("packages", None)
        out["tables"][name] = {"sha256": file_sha256(path), **record}
    return out


def read_figure_provenance(path: str | PathLike) -> dict[str, Any]:
    """The provenance record stored in a PNG, PDF or SVG figure (``{}`` if none).

    Parameters
    ----------
    path : str or path-like
        A figure written by :func:`livescreen.figures.style.save`.

    Returns
    -------
    dict
    """
    import re
    from pathlib import Path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt == "png":
        from PIL import Image

        with Image.open(path) as img:
            text = img.text.get(FIGURE_PROVENANCE_KEYS["png"])
    elif fmt == "pdf":
        text = _pdf_info_string(path.read_bytes(), b"/Subject")
    elif fmt == "svg":
        m = re.search(r"<dc:description>(.*?)</dc:description>", path.read_text(), re.S)
        import html

        text = html.unescape(m.group(1)) if m else None
    else:
        raise ValueError(f"{path}: no provenance for format '{fmt}'")
    return json.loads(text) if text else {}


def _pdf_info_string(data: bytes, key: bytes) -> str | None:
    """The literal string value of ``key`` in a PDF's (uncompressed) info dictionary.

    matplotlib writes the info dictionary as plain text; provenance JSON is
    ASCII (``json.dumps`` escapes the rest), so the literal-string escapes of
    backslash, ``(`` and ``)`` are all that need undoing.
    """
    start = data.rfind(key + b" (")
    if start < 0:
        return None
    i, depth, out = start + len(key) + 2, 1, bytearray()
    while i < len(data):
        c = data[i:i + 1]
        if c == b"\\":
            out += data[i + 1:i + 2]
            i += 2
            continue
        if c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth == 0:
                break
        out += c
        i += 1
    return out.decode("latin-1")
