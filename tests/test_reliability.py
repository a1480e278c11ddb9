"""Reliability and reproducibility (issue 8; docs/bad-inputs.md, docs/reproducibility.md).

Bad inputs at the stage that meets them (cheap), then whole-workflow checks that
share runs: the session's finished run (tests/conftest.py) serves provenance and
the caching dry runs; one run interrupted by ``kill -9`` during segmentation and
resumed serves both the interruption and the determinism checks (it started
from scratch, so it is compared with the finished run file by file); one small
non-simulated study with a read-only raw folder (a corrupt movie, an all-black
movie, a single-frame movie, a sheet and folder named with spaces and unicode)
serves isolation, read-only raw data and the empty-site cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tifffile

from conftest import REPO, SNAKEMAKE, load_yaml, make_study, run_snakemake, save_yaml
from conftest import tests_config as _tests_config
from livescreen import study
from livescreen.imageio import Movie, MovieError, inspect_movie, write_movie

CHANNELS = {"target": 0, "effector": 1, "death": 2}
IMAGING = {"axes": "TCYX", "channels": CHANNELS}
SHEET_COLUMNS = ["plate", "well", "field", "condition", "compound", "dose", "dose_unit", "role",
                 "image"]


def _movie(path, shape=(3, 3, 32, 32), dtype=np.uint16, seed=0):
    data = np.random.default_rng(seed).integers(100, 1000, shape).astype(dtype)
    write_movie(path, data, 0.65, 4.0)
    return data


def _sheet(tmp_path, image, name="s.tsv"):
    row = dict(plate="P1", well="A01", field="1", condition="control", compound="none", dose="0",
               dose_unit="uM", role="negative_control", image=str(image))
    pd.DataFrame([row]).to_csv(tmp_path / name, sep="\t", index=False)
    return study.read_sample_sheet(tmp_path / name)


def _corrupt_plane(path, t, c, n_channels=3):
    """Overwrite the compressed data of plane (t, c) in place; the header stays valid."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[t * n_channels + c]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * count)


# --- bad inputs at the stage that meets them (docs/bad-inputs.md) ----------------------------

def test_corrupt_pixel_data_names_frame_and_channel(tmp_path):
    img = tmp_path / "movie.ome.tif"
    _movie(img)
    _corrupt_plane(img, t=2, c=1)
    # the header is intact: the load-time check passes, the per-site job names the plane
    study.check_images(_sheet(tmp_path, img), "s.tsv", IMAGING, simulate=False)
    with Movie(img) as movie, pytest.raises(MovieError) as err:
        inspect_movie(movie, CHANNELS)
    assert f"{img}: frame 2, channel 1 cannot be decoded" in str(err.value)


def test_truncated_movie_is_called_truncated(tmp_path):
    img = tmp_path / "movie.ome.tif"
    _movie(img)
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    with pytest.raises(study.StudyDesignError) as err:
        study.check_images(_sheet(tmp_path, img), "s.tsv", IMAGING, simulate=False)
    assert "row 1 (line 2), column 'image'" in str(err.value)
    assert f"{img}: damaged or truncated TIFF" in str(err.value)
    with pytest.raises(MovieError, match="damaged or truncated TIFF"):
        Movie(img)


@pytest.mark.parametrize("kind", ["zero_bytes", "zero_frames"])
def test_zero_size_image_is_rejected(tmp_path, kind):
    img = tmp_path / "movie.tif"
    if kind == "zero_bytes":
        img.write_bytes(b"")
        expect = "not a readable TIFF image"
    else:
        with pytest.warns(UserWarning):
            tifffile.imwrite(img, np.zeros((0, 3, 8, 8), np.uint16), metadata={"axes": "TCYX"})
        expect = "empty image (shape (0, 3, 8, 8))"
    with pytest.raises(study.StudyDesignError) as err:
        study.check_images(_sheet(tmp_path, img), "s.tsv", IMAGING, simulate=False)
    assert "row 1 (line 2), column 'image'" in str(err.value) and expect in str(err.value)


def test_nan_pixels_name_frame_and_channel(tmp_path):
    img = tmp_path / "movie.ome.tif"
    data = np.random.default_rng(0).random((3, 3, 16, 16)).astype(np.float32)
    data[1, 0, 3, 3] = np.nan
    data[1, 0, 4, 4] = np.inf
    write_movie(img, data, 0.65, 4.0)
    with Movie(img) as movie, pytest.raises(MovieError) as err:
        inspect_movie(movie, CHANNELS)
    assert f"{img}: frame 1, channel 0 (target) has 2 NaN/inf pixel(s)" == str(err.value)


def test_all_black_movie_is_a_warning_not_an_error(tmp_path):
    img = tmp_path / "movie.ome.tif"
    write_movie(img, np.zeros((3, 3, 16, 16), np.uint16), 0.65, 4.0)
    with Movie(img) as movie:
        qc = inspect_movie(movie, CHANNELS)
    assert "channel 0 (target) is black in every frame" in qc["warnings"]
    assert len(qc["warnings"]) == 3


def test_sheet_and_image_paths_with_spaces_and_unicode(tmp_path):
    folder = tmp_path / "raw data é ü"
    folder.mkdir()
    img = folder / "movie 1 µ.ome.tif"
    _movie(img)
    sheet = _sheet(tmp_path, img, name="sheet ü 1.tsv")
    headers = study.check_images(sheet, tmp_path / "sheet ü 1.tsv", IMAGING, simulate=False)
    assert headers[str(img)].shape == (3, 3, 32, 32)


def test_movie_writes_are_byte_identical(tmp_path):
    """OME-TIFF needs a UUID; it derives from the content, not from uuid1()."""
    data = _movie(tmp_path / "a.ome.tif")
    write_movie(tmp_path / "b.ome.tif", data, 0.65, 4.0)
    write_movie(tmp_path / "c.ome.tif", data + 1, 0.65, 4.0)
    a, b, c = ((tmp_path / f"{x}.ome.tif").read_bytes() for x in "abc")
    assert a == b and a != c
    assert b'UUID="urn:uuid:' in a


def test_excluded_sites_from_the_sheet_column():
    sheet = pd.DataFrame({"plate": ["P", "P"], "well": ["A1", "A2"], "field": ["1", "1"],
                          "exclude": ["", "corrupt movie"]})
    assert study.excluded_sites(sheet) == {"P/A2/1": "corrupt movie"}
    assert list(study.included(sheet)["well"]) == ["A1"]
    assert study.excluded_sites(sheet.drop(columns="exclude")) == {}


# --- the same checks through the workflow's load-time validation (dry runs) -----------------

def _raw_study(workdir, images, sheet_name="samples.tsv", exclude=None):
    """A non-simulated copy of the tests study whose sheet points at ``images``."""
    rows = pd.read_csv(REPO / "tests" / "config" / "samples.tsv", sep="\t", dtype=str)
    rows = rows.iloc[: len(images)].copy()
    rows["image"] = [str(i) for i in images]
    if exclude:
        rows["exclude"] = [exclude.get(w, "") for w in rows["well"]]
    rows.to_csv(workdir / sheet_name, sep="\t", index=False)
    cfg = _tests_config()
    cfg["samples"] = sheet_name
    cfg["simulate"]["enabled"] = False
    save_yaml(workdir / "config.yaml", cfg)
    return rows


@pytest.mark.workflow
@pytest.mark.parametrize("problem", ["axes", "truncated"])
def test_workflow_names_bad_image_at_load(tmp_path, problem):
    raw = tmp_path / "raw"
    raw.mkdir()
    images = [raw / f"{i}.ome.tif" for i in range(2)]
    for img in images:
        _movie(img)
    if problem == "axes":
        tifffile.imwrite(images[1], np.zeros((3, 3, 16, 16), np.uint16),
                         metadata={"axes": "CTYX"})
        expect = "image axes are 'CTYX'"
    else:
        images[1].write_bytes(images[1].read_bytes()[:2000])
        expect = "damaged or truncated TIFF"
    _raw_study(tmp_path, images)
    res = run_snakemake(tmp_path, "-n", "--configfile", "config.yaml")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert f"samples.tsv, row 2 (line 3), column 'image': {images[1]}: {expect}" in out


# --- interruption and determinism: one run killed during segmentation, then resumed ---------

def _tree(root, skip=("logs", "benchmarks", ".snakemake")):
    """Relative path -> file for every file under ``root`` outside ``skip``."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = path
    return out


def _readable(path):
    """Open a final output the way the next job would; raise if it is damaged."""
    suffix = path.name.split(".", 1)[-1]
    if suffix == "parquet":
        pq.read_table(path)
    elif suffix in ("tif", "ome.tif"):
        tifffile.imread(path)
    elif suffix == "json":
        json.loads(path.read_text())
    elif suffix == "png":
        from PIL import Image

        with Image.open(path) as img:
            img.load()


def _is_temporary(path):
    return path.name.startswith(".") and ".tmp" in path.name


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """The tests study killed (SIGKILL to the process group) during segmentation, then
    resumed with the documented command; returns (workdir, record of the kill)."""
    workdir = make_study(tmp_path_factory.mktemp("interrupted"))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", "config.yaml", "--cores", "2"]
    with open(workdir / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    sites = workdir / "results" / "sites"
    deadline = time.monotonic() + 1200
    killed_during = None
    while time.monotonic() < deadline and proc.poll() is None:
        done = sorted(str(p.relative_to(sites)) for p in sites.glob("*/*/*/segment/*_labels.tif"))
        started = list((workdir / "logs" / "segment").glob("*/*/*/*.log"))
        if 1 <= len(done) < len(started) < 10:   # one finished, the next one running
            time.sleep(2)
            os.killpg(proc.pid, signal.SIGKILL)
            killed_during = {"segment_done": done, "segment_started": len(started)}
            break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert killed_during is not None, (workdir / "first.log").read_text()[-4000:]
    for _ in range(300):   # nothing of the first run is left (killed children reaped)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("processes of the killed run are still alive")
    # No truncated file under a final name: everything the next run could take is whole.
    after_kill = _tree(workdir / "results") | _tree(workdir / "resources")
    leftovers = [p for p in after_kill.values() if _is_temporary(p)]
    for path in after_kill.values():
        if not _is_temporary(path):
            _readable(path)
    killed_during["leftover_temporaries"] = [str(p.relative_to(workdir)) for p in leftovers]
    # The documented command (README "Resume after a failure or interruption"): the same
    # command again, with --unlock once when Snakemake reports the directory locked.
    t0 = time.monotonic()
    res = run_snakemake(workdir, "--configfile", "config.yaml", "--cores", "2", timeout=1500)
    if res.returncode != 0 and "--unlock" in res.stderr and "locked" in res.stderr:
        killed_during["needed_unlock"] = True
        unlock = run_snakemake(workdir, "--configfile", "config.yaml", "--unlock")
        assert unlock.returncode == 0, unlock.stderr[-3000:]
        res = run_snakemake(workdir, "--configfile", "config.yaml", "--cores", "2", timeout=1500)
    assert res.returncode == 0, res.stderr[-6000:]
    killed_during["resume_s"] = time.monotonic() - t0
    killed_during["resume_log"] = res.stdout + res.stderr
    return workdir, killed_during


@pytest.mark.workflow
def test_interrupted_run_resumes_and_reruns_only_what_is_missing(resumed_run):
    workdir, record = resumed_run
    log = record["resume_log"]
    assert "Nothing to be done" not in log
    # segment jobs finished before the kill are not rerun; the killed one is
    planned = re.search(r"^segment_population\s+(\d+)\s*$", log, re.M)
    assert planned and int(planned.group(1)) == 10 - len(record["segment_done"]), record
    # a temporary left by the killed write is removed when that output is written again
    assert not [p for p in _tree(workdir / "results").values() if _is_temporary(p)]
    res = run_snakemake(workdir, "-n", "--configfile", "config.yaml")
    assert "Nothing to be done" in res.stdout + res.stderr


@pytest.mark.workflow
def test_resumed_run_equals_uninterrupted_run(resumed_run, finished_run):
    workdir, _ = resumed_run
    for path in sorted((finished_run / "results" / "tables").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(workdir / "results" / "tables" / path.name),
                                      pd.read_parquet(path), check_exact=True, obj=path.name)
    for path in sorted((finished_run / "results" / "sites").rglob("*labels.tif")):
        rel = path.relative_to(finished_run)
        assert np.array_equal(tifffile.imread(workdir / rel), tifffile.imread(path)), rel


@pytest.mark.workflow
def test_two_runs_from_scratch_are_byte_identical(resumed_run, finished_run):
    """Every output file (tables, label stacks, movies, figures, QC) has the same bytes.

    Logs, benchmarks and the report differ by nature (times); they are not compared.
    """
    workdir, _ = resumed_run
    a = {k: v for k, v in _tree(finished_run / "results").items() if not _is_temporary(v)}
    b = {k: v for k, v in _tree(workdir / "results").items() if not _is_temporary(v)}
    a.pop("report.html", None)
    assert sorted(a) == sorted(b)
    sim_a, sim_b = _tree(finished_run / "resources"), _tree(workdir / "resources")
    assert sorted(sim_a) == sorted(sim_b)
    differ = [k for k in a if a[k].read_bytes() != b[k].read_bytes()]
    differ += [f"resources/{k}" for k in sim_a if sim_a[k].read_bytes() != sim_b[k].read_bytes()]
    assert differ == []


# --- provenance (finished run) --------------------------------------------------------------

def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.workflow
def test_tables_figures_and_report_carry_provenance(finished_run, finished_report):
    from livescreen.tables import git_commit, read_figure_provenance, read_provenance

    head = git_commit(REPO).split("+")[0]
    sheet_sha = _sha(finished_run / "samples.tsv")
    tables = sorted((finished_run / "results" / "tables").glob("*.parquet"))
    assert len(tables) >= 12
    config_shas = set()
    for path in tables:
        prov = read_provenance(path)
        assert prov["samples_sha256"] == sheet_sha, path.name
        assert prov["git_commit"].split("+")[0] == head, path.name
        assert len(prov["config_sha256"]) == 64, path.name
        assert prov["packages"]["cellpose"] not in ("", "absent"), path.name
        config_shas.add(prov["config_sha256"])
    assert len(config_shas) == 1   # one config for the whole run
    figures = sorted((finished_run / "results" / "figures").glob("*.p[nd][gf]"))
    assert len(figures) == 12
    for path in figures:
        prov = read_figure_provenance(path)
        assert prov["figure"] == path.stem and prov["packages"]["numpy"]
        for name, rec in prov["tables"].items():
            table = finished_run / "results" / "tables" / f"{name}.parquet"
            assert rec["sha256"] == _sha(table), (path.name, name)
            assert rec["config_sha256"] in config_shas and rec["samples_sha256"] == sheet_sha
    record = json.loads((finished_run / "results" / "tables" / "provenance.json").read_text())
    assert record["samples_sha256"] == sheet_sha and record["config_sha256"] in config_shas
    assert record["tables_sha256"]["fates.parquet"] == _sha(
        finished_run / "results" / "tables" / "fates.parquet")
    assert "provenance.json" in finished_report.read_text(errors="replace")


# --- caching: what a parameter change plans to rerun (dry runs on the finished run) ---------

def _planned(workdir, cfg, name):
    save_yaml(workdir / name, cfg)
    res = run_snakemake(workdir, "-n", "--configfile", name, "--quiet", "rules")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (res.stdout + res.stderr).splitlines()
    return {ln.split()[0]: int(ln.split()[1]) for ln in lines
            if len(ln.split()) == 2 and ln.split()[1].isdigit() and ln.split()[0] != "total"}


@pytest.mark.workflow
def test_statistics_change_reruns_only_statistics_and_figures(finished_run):
    cfg = load_yaml(finished_run / "config.yaml")
    cfg["stats"]["confidence"] = 0.9
    jobs = _planned(finished_run, cfg, "config_stats.yaml")
    assert jobs.pop("stats_tables") == 1
    assert jobs.pop("all") == 1
    # figures drawn from statistics tables; encounter_durations and qc use aggregate tables
    assert jobs == {"figure": 4}


@pytest.mark.workflow
def test_segmentation_change_reruns_segmentation_onward_for_all_sites(finished_run):
    cfg = load_yaml(finished_run / "config.yaml")
    cfg["segment"]["populations"]["target"]["min_area_um2"] = 25.0
    jobs = _planned(finished_run, cfg, "config_segment.yaml")
    n_sites = len(pd.read_csv(finished_run / "samples.tsv", sep="\t"))
    assert jobs["segment_population"] == 2 * n_sites
    assert jobs["track_site"] == n_sites
    assert jobs["score_events"] == n_sites
    assert {"aggregate_tables", "stats_tables", "figure", "event_gallery",
            "validate_events"} <= set(jobs)
    assert not {"simulate_site", "inspect_image", "study_sheet"} & set(jobs)


# --- isolation and read-only raw data: a small non-simulated study --------------------------

AUDIT_HOOK = """
import os, sys
_RAW = os.path.realpath({raw!r})
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

def _hook(event, args):
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    flags = args[2] if isinstance(args[2], int) else 0
    mode = args[1] if isinstance(args[1], str) else ""
    if flags & _WRITE or any(c in mode for c in "wax+"):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path == _RAW or path.startswith(_RAW + os.sep):
            with open({record!r}, "a") as fh:
                fh.write(f"{{os.getpid()}} {{path}} {{mode}} {{flags}}\\n")
            raise PermissionError(f"raw data opened for writing: {{path}}")

sys.addaudithook(_hook)
"""


def _snapshot(folder):
    return {p.name: (_sha(p), p.stat().st_mtime_ns, p.stat().st_mode) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def isolated_run(tmp_path_factory, finished_run):
    """Four sites from raw movies in a read-only folder named with spaces and unicode.

    Movies are 6 frames of 64 x 64 px cut from the finished run's. T1/B02/1 a good
    movie; T1/C02/1 all black (no cells); T1/B03/1 corrupt pixel data in frame 3
    (its header is fine, so only its own jobs meet it); T1/C03/1 a
    single-frame movie. First run: the corrupt site fails under --keep-going; second
    run: the sheet excludes it with a reason. Every Python process of both runs
    refuses (and records) any open of the raw folder for writing.
    """
    workdir = tmp_path_factory.mktemp("isolated")
    raw = workdir / "raw data é"
    raw.mkdir()
    sim = finished_run / "resources" / "simulated" / "T1"

    def crop(well):   # 6 frames of 64 x 64 px: the run stays short
        return tifffile.imread(sim / well / "1" / "image.ome.tif")[:6, :, :64, :64]

    write_movie(raw / "B02 good.ome.tif", crop("B02"), 0.65, 4.0)
    write_movie(raw / "C02 black.ome.tif", np.zeros_like(crop("C02")), 0.65, 4.0)
    write_movie(raw / "B03 corrupt.ome.tif", crop("B03"), 0.65, 4.0)
    _corrupt_plane(raw / "B03 corrupt.ome.tif", t=3, c=0)
    write_movie(raw / "C03 one frame.ome.tif", crop("C03")[:1], 0.65, 4.0)
    images = [f"raw data é/{n}" for n in ("B02 good.ome.tif", "C02 black.ome.tif",
                                          "B03 corrupt.ome.tif", "C03 one frame.ome.tif")]
    sheet = "samples ü 1.tsv"
    _raw_study(workdir, images, sheet_name=sheet)
    for path in [*raw.iterdir(), raw]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _snapshot(raw)
    hook = workdir / "hook"
    hook.mkdir()
    violations = workdir / "raw_writes.txt"
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK.format(raw=str(raw), record=str(violations)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", "config.yaml", "--cores", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=workdir,
                           env=env)
    state_after_first = {
        "fates": {w: (workdir / f"results/sites/T1/{w}/1/events/fates.parquet").is_file()
                  for w in ("B02", "C02", "B03", "C03")},
        "study_tables": (workdir / "results" / "tables" / "fates.parquet").exists(),
    }
    _raw_study(workdir, images, sheet_name=sheet,
               exclude={"B03": "corrupt movie: frame 3, channel 0 cannot be decoded"})
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=workdir,
                            env=env)
    return {"workdir": workdir, "raw": raw, "before": before, "first": first, "second": second,
            "after_first": state_after_first, "violations": violations}


@pytest.mark.workflow
def test_bad_site_fails_only_its_own_jobs(isolated_run):
    first = isolated_run["first"]
    out = first.stdout + first.stderr
    assert first.returncode != 0
    # Snakemake's summary names the failed jobs' logs, i.e. the site
    assert "logs/inspect_image/T1/B03/1.log" in out
    assert "frame 3, channel 0 cannot be decoded" in out
    assert isolated_run["after_first"]["fates"] == {"B02": True, "C02": True, "B03": False,
                                                    "C03": True}
    # a failing site holds the study tables back: nothing is dropped silently
    assert not isolated_run["after_first"]["study_tables"]


@pytest.mark.workflow
def test_excluded_site_is_stated_in_the_study_tables(isolated_run):
    from livescreen.tables import read_provenance

    workdir = isolated_run["workdir"]
    second = isolated_run["second"]
    tables = workdir / "results" / "tables"
    assert (tables / "wells.parquet").is_file(), second.stderr[-6000:]
    missing = pd.read_parquet(tables / "missing_sites.parquet")
    assert missing[["site_id", "reason"]].values.tolist() == [
        ["T1/B03/1", "corrupt movie: frame 3, channel 0 cannot be decoded"]]
    for name in ("fates", "encounters", "wells", "conditions", "comparisons"):
        assert read_provenance(tables / f"{name}.parquet")["excluded_sites"] == {
            "T1/B03/1": "corrupt movie: frame 3, channel 0 cannot be decoded"}, name
    fates = pd.read_parquet(tables / "fates.parquet")
    assert "B03" not in set(fates["well"])
    samples = pd.read_parquet(tables / "samples.parquet")
    assert len(samples) == 4
    assert samples.set_index("well").loc["B03", "exclude"].startswith("corrupt")
    assert (workdir / "results" / "figures" / "outcome_fractions.png").is_file()
    # the corrupt site's own jobs still fail (rule all asks for them) unless the
    # workflow leaves excluded sites out of its targets: either way the run says so
    if second.returncode != 0:
        assert "T1/B03/1" in second.stdout + second.stderr


@pytest.mark.workflow
def test_site_without_cells_gives_valid_empty_tables(isolated_run):
    workdir = isolated_run["workdir"]
    site = workdir / "results" / "sites" / "T1" / "C02" / "1"
    qc = json.loads((workdir / "results" / "qc" / "images" / "T1" / "C02" / "1.json").read_text())
    assert "channel 0 (target) is black in every frame" in qc["warnings"]
    assert tifffile.imread(site / "segment" / "target_labels.tif").max() == 0
    for name in ("encounters", "fates", "effectors"):
        table = pd.read_parquet(site / "events" / f"{name}.parquet")
        assert len(table) == 0 and len(table.columns) > 0, name
    wells = pd.read_parquet(workdir / "results" / "tables" / "wells.parquet")
    assert "C02" in set(wells["well"])


@pytest.mark.workflow
def test_single_frame_site_runs_through(isolated_run):
    workdir = isolated_run["workdir"]
    site = workdir / "results" / "sites" / "T1" / "C03" / "1"
    assert tifffile.imread(site / "segment" / "target_labels.tif").shape[-2:] == (64, 64)
    tracks = pd.read_parquet(site / "track" / "target_tracks.parquet")
    assert set(tracks["frame"]) <= {0}
    assert (site / "events" / "fates.parquet").is_file()


@pytest.mark.workflow
def test_raw_data_are_never_written(isolated_run):
    raw = isolated_run["raw"]
    assert _snapshot(raw) == isolated_run["before"]
    assert not isolated_run["violations"].exists(), isolated_run["violations"].read_text()
