"""Which weights file a population's ``model:`` setting means, and fetching built-ins.

``segment.populations.<population>.model`` is one of

* ``train`` -- a model trained by the workflow (rule ``train_cellpose``),
  ``<models_dir>/trained/<population>.pth``;
* a Cellpose built-in name (``cyto3``, ``nuclei``, ...) -- fetched once by the
  local rule ``fetch_cellpose_model`` into ``<models_dir>`` (Cellpose's
  ``CELLPOSE_LOCAL_MODELS_PATH`` layout), so compute jobs never download;
* a path to a custom Cellpose 3 weights file.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from .backend import SegmentationError

log = logging.getLogger(__name__)

#: Cellpose 3 built-in models (name -> weights file name on www.cellpose.org/models).
BUILTIN_MODELS: dict[str, str] = {
    "cyto3": "cyto3", "nuclei": "nucleitorch_0", "cyto2": "cyto2torch_0",
    "cyto": "cytotorch_0", "cyto2_cp3": "cyto2_cp3", "tissuenet_cp3": "tissuenet_cp3",
    "livecell_cp3": "livecell_cp3", "yeast_PhC_cp3": "yeast_PhC_cp3",
    "yeast_BF_cp3": "yeast_BF_cp3", "bact_phase_cp3": "bact_phase_cp3",
    "bact_fluor_cp3": "bact_fluor_cp3", "deepbacs_cp3": "deepbacs_cp3",
}
#: Mean training diameter (pixels) of the built-ins (Cellpose: 17 for nuclei, 30 otherwise).
BUILTIN_DIAM_MEAN = {"nuclei": 17.0}
MODEL_URL = "https://www.cellpose.org/models"
TRAIN = "train"


@dataclass(frozen=True)
class ModelSource:
    """Where a population's weights come from.

    Attributes
    ----------
    kind : {"train", "builtin", "path"}
    path : str
        The weights file the segment job reads.
    name : str
        The config value.
    """

    kind: str
    path: str
    name: str


def resolve_model(spec: str, population: str, models_dir: str | PathLike = "resources/models",
                  must_exist: bool = True) -> ModelSource:
    """Interpret a ``model:`` setting.

    Parameters
    ----------
    spec : str
        ``"train"``, a built-in name or a file path.
    population : str
        Population the model is for (names the trained model's file).
    models_dir : str or path-like, optional
        ``segment.models_dir``.
    must_exist : bool, optional
        Require a custom model path to exist (default True).

    Returns
    -------
    ModelSource

    Raises
    ------
    SegmentationError
        For an empty value, or a value that is neither ``train``, a built-in
        name nor an existing file.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SegmentationError(f"segment.populations.{population}.model must be a non-empty "
                                f"string, got {spec!r}")
    spec = spec.strip()
    models_dir = Path(models_dir)
    if spec == TRAIN:
        return ModelSource("train", str(models_dir / "trained" / f"{population}.pth"), spec)
    if spec in BUILTIN_MODELS:
        return ModelSource("builtin", str(models_dir / BUILTIN_MODELS[spec]), spec)
    looks_like_path = any(c in spec for c in "/\\.") or spec.endswith(".pth")
    if must_exist and not Path(spec).is_file():
        known = ", ".join(sorted(BUILTIN_MODELS))
        what = "model file" if looks_like_path else "model"
        raise SegmentationError(
            f"segment.populations.{population}.model: {what} '{spec}' not found. Use 'train' "
            f"(train on annotated frames), a Cellpose built-in name ({known}) or the path of "
            "an existing Cellpose 3 weights file")
    return ModelSource("path", spec, spec)


def builtin_diam_mean(path: str | PathLike) -> float | None:
    """Training diameter of a fetched built-in weights file, from its name (None if custom)."""
    name = Path(path).name
    for builtin, fname in BUILTIN_MODELS.items():
        if fname == name:
            return BUILTIN_DIAM_MEAN.get(builtin, 30.0)
    return None


def fetch_builtin(name: str, dest: str | PathLike, timeout_s: float = 60.0) -> Path:
    """Copy or download a Cellpose built-in model's weights to ``dest``.

    A copy already in Cellpose's own cache (``$CELLPOSE_LOCAL_MODELS_PATH`` or
    ``~/.cellpose/models``) is copied; otherwise the file is downloaded from
    www.cellpose.org. Without internet this fails with a message saying what
    to copy where.

    Parameters
    ----------
    name : str
        Built-in name, e.g. ``"cyto3"``.
    dest : str or path-like
        Destination file (``<models_dir>/<weights file name>``).
    timeout_s : float, optional
        Network timeout.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    SegmentationError
        For an unknown name or a failed download.
    """
    from livescreen.imageio import atomic_path

    if name not in BUILTIN_MODELS:
        raise SegmentationError(f"'{name}' is not a Cellpose 3 built-in model "
                                f"(known: {', '.join(sorted(BUILTIN_MODELS))})")
    fname = BUILTIN_MODELS[name]
    dest = Path(dest)
    caches = [Path(p) for p in (os.environ.get("CELLPOSE_LOCAL_MODELS_PATH"),) if p]
    caches.append(Path.home() / ".cellpose" / "models")
    for cache in caches:
        src = cache / fname
        if src.is_file() and src.resolve() != dest.resolve():
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
            log.info("copied %s from %s to %s", name, src, dest)
            return dest
    url = f"{MODEL_URL}/{fname}"
    log.info("downloading Cellpose model %s from %s", name, url)
    try:
        import urllib.request

        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            if tmp.stat().st_size < 1_000_000:
                raise OSError(f"downloaded file is only {tmp.stat().st_size} bytes")
    except OSError as err:
        raise SegmentationError(
            f"could not download Cellpose model '{name}' from {url} ({err}). Without internet, "
            f"download {url} on a machine that has it and copy the file to {dest} (the "
            f"workflow's segment.models_dir), or copy ~/.cellpose/models/{fname} from a machine "
            "where Cellpose already downloaded it; then rerun.") from err
    log.info("saved %s (%d bytes)", dest, dest.stat().st_size)
    return dest
