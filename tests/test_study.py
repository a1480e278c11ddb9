"""Study-design validation: every check feeds bad input and asserts the message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import load_yaml, run_snakemake, save_yaml
from livescreen import study

IMAGING = {"axes": "TCYX", "channels": {"target": 0, "effector": 1, "death": 2}}


def write_sheet(path, rows):
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def good_rows(image="img.tif"):
    base = dict(compound="none", dose="0", dose_unit="uM", role="negative_control", image=image)
    return [dict(plate="P1", well="A01", field="1", condition="control", **base),
            dict(plate="P1", well="A02", field="1", condition="control", **base),
            dict(plate="P1", well="A03", field="1", condition="drug", compound="X", dose="1",
                 dose_unit="uM", role="sample", image=image, donor="D1")]


def test_good_sheet_reads_with_numeric_dose(tmp_path):
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows()))
    assert sheet["dose"].dtype == float
    assert sheet["dose"].tolist() == [0.0, 0.0, 1.0]
    study.check_sites(sheet, "s.tsv", "control")  # no error


def test_non_numeric_dose_names_file_row_column(tmp_path):
    rows = good_rows()
    rows[2]["dose"] = "1 uM"
    path = write_sheet(tmp_path / "s.tsv", rows)
    with pytest.raises(study.StudyDesignError) as err:
        study.read_sample_sheet(path)
    msg = str(err.value)
    assert str(path) in msg and "row 3 (line 4)" in msg and "column 'dose'" in msg
    assert "'1 uM' is not a number" in msg


def test_missing_column_is_named(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "role"} for r in good_rows()]
    with pytest.raises(study.StudyDesignError, match="missing column.*role"):
        study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", rows))


def test_empty_required_cell_is_named(tmp_path):
    rows = good_rows()
    rows[1]["condition"] = " "
    with pytest.raises(study.StudyDesignError, match=r"row 2 \(line 3\), column 'condition'"):
        study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", rows))


def test_duplicate_site_names_both_rows(tmp_path):
    rows = good_rows()
    rows[2]["well"] = "A01"
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", rows))
    with pytest.raises(study.StudyDesignError) as err:
        study.check_sites(sheet, "s.tsv", "control")
    msg = str(err.value)
    assert "row 3 (line 4)" in msg and "P1/A01/1" in msg and "row 1 (line 2)" in msg


def test_control_condition_absent(tmp_path):
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows()))
    with pytest.raises(study.StudyDesignError) as err:
        study.check_sites(sheet, "s.tsv", "DMSO")
    assert "column 'condition'" in str(err.value) and "'DMSO'" in str(err.value)
    assert "control, drug" in str(err.value)


def test_condition_with_two_doses_is_rejected(tmp_path):
    rows = good_rows()
    rows.append(dict(rows[2], well="A04", dose="10"))
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", rows))
    with pytest.raises(study.StudyDesignError, match=r"row 4 .*column 'dose'.*'drug'"):
        study.check_sites(sheet, "s.tsv", "control")


def test_free_column_clashing_with_table_column(tmp_path):
    rows = [dict(r, frame="x") for r in good_rows()]
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", rows))
    with pytest.raises(study.StudyDesignError, match="frame"):
        study.check_sites(sheet, "s.tsv", "control")


def test_channels_must_be_distinct():
    with pytest.raises(study.StudyDesignError, match="death.*target|target.*death"):
        study.check_channels({"target": 0, "effector": 1, "death": 0})
    study.check_channels({"target": 0, "effector": 1, "death": None})


def test_missing_image_names_row_and_path(tmp_path):
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv",
                                                good_rows(str(tmp_path / "nope.tif"))))
    with pytest.raises(study.StudyDesignError) as err:
        study.check_images(sheet, "s.tsv", IMAGING, simulate=False)
    assert "row 1 (line 2), column 'image'" in str(err.value)
    assert "nope.tif" in str(err.value) and "does not exist" in str(err.value)


@pytest.mark.parametrize(("shape", "axes", "expect"), [
    ((4, 3, 16, 16), "CTYX", "axes are 'CTYX'"),
    ((3, 16, 16), "TYX", "axes are 'TYX'"),
    ((4, 2, 16, 16), "TCYX", "2 channel(s) but config imaging.channels needs index death=2"),
])
def test_image_axes_and_channel_count(tmp_path, shape, axes, expect):
    img = tmp_path / "movie.tif"
    tifffile.imwrite(img, np.zeros(shape, np.uint16), photometric="minisblack",
                     metadata={"axes": axes})
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows(str(img))))
    with pytest.raises(study.StudyDesignError) as err:
        study.check_images(sheet, "s.tsv", IMAGING, simulate=False)
    assert expect in str(err.value) and "row 1 (line 2)" in str(err.value)


def test_corrupt_image_is_reported(tmp_path):
    img = tmp_path / "movie.tif"
    img.write_bytes(b"this is not a tiff")
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows(str(img))))
    with pytest.raises(study.StudyDesignError, match="not a readable TIFF"):
        study.check_images(sheet, "s.tsv", IMAGING, simulate=False)


def test_good_image_passes_and_is_opened_read_only(tmp_path):
    img = tmp_path / "movie.ome.tif"
    tifffile.imwrite(img, np.zeros((2, 3, 8, 8), np.uint16), ome=True, metadata={"axes": "TCYX"})
    img.chmod(0o444)
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows(str(img))))
    headers = study.check_images(sheet, "s.tsv", IMAGING, simulate=False)
    assert headers[str(img)].shape == (2, 3, 8, 8)


def test_simulated_images_must_use_the_simulator_path(tmp_path):
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows("x.tif")))
    with pytest.raises(study.StudyDesignError, match="resources/simulated/P1/A01/1/image.ome.tif"):
        study.check_images(sheet, "s.tsv", IMAGING, simulate=True)


def test_wildcard_pattern_matches_exactly():
    import re

    pat = study.wildcard_pattern(["A1", "A10", "B.2"])
    assert re.fullmatch(pat, "A10") and re.fullmatch(pat, "B.2")
    assert not re.fullmatch(pat, "BX2") and not re.fullmatch(pat, "A1/x")


# --- the same checks wired into the workflow (Snakemake's validate + load-time checks) ----

def dry_run(workdir):
    res = run_snakemake(workdir, "-n", "--configfile", "config.yaml")
    return res.returncode, res.stdout + res.stderr


def test_workflow_rejects_misspelt_config_key_with_hint(study_dir):
    cfg = load_yaml(study_dir / "config.yaml")
    cfg["imaging"]["axis"] = cfg["imaging"].pop("axes")
    save_yaml(study_dir / "config.yaml", cfg)
    rc, out = dry_run(study_dir)
    assert rc != 0
    assert "config.yaml, key 'imaging': unknown key 'axis' (did you mean 'axes'?)" in out


def test_workflow_rejects_unknown_channel_role(study_dir):
    cfg = load_yaml(study_dir / "config.yaml")
    cfg["imaging"]["channels"]["nucleus"] = 3
    save_yaml(study_dir / "config.yaml", cfg)
    rc, out = dry_run(study_dir)
    assert rc != 0 and "unknown key 'nucleus'" in out


def test_workflow_rejects_bad_role_naming_row_and_column(study_dir):
    sheet = (study_dir / "samples.tsv").read_text().replace("positive_control", "pos_ctrl")
    (study_dir / "samples.tsv").write_text(sheet)
    rc, out = dry_run(study_dir)
    assert rc != 0
    assert "samples.tsv, row 5 (line 6), column 'role': 'pos_ctrl' is not one of" in out


def test_workflow_rejects_duplicate_site(study_dir):
    lines = (study_dir / "samples.tsv").read_text().splitlines()
    lines.append(lines[1])
    (study_dir / "samples.tsv").write_text("\n".join(lines) + "\n")
    rc, out = dry_run(study_dir)
    assert rc != 0 and "row 6 (line 7), columns plate/well/field" in out


def test_workflow_rejects_missing_image_when_not_simulating(study_dir):
    cfg = load_yaml(study_dir / "config.yaml")
    cfg["simulate"]["enabled"] = False
    save_yaml(study_dir / "config.yaml", cfg)
    rc, out = dry_run(study_dir)
    assert rc != 0
    assert ("row 1 (line 2), column 'image': image file "
            "'resources/simulated/T1/B02/1/image.ome.tif' does not exist") in out


def test_single_frame_movie_is_accepted(tmp_path):
    from livescreen.imageio import Movie, write_movie

    img = tmp_path / "one.ome.tif"
    write_movie(img, np.ones((1, 3, 8, 8), np.uint16), 0.65, 4.0)
    sheet = study.read_sample_sheet(write_sheet(tmp_path / "s.tsv", good_rows(str(img))))
    assert study.check_images(sheet, "s.tsv", IMAGING, simulate=False)[str(img)].shape == (
        1, 3, 8, 8)
    with Movie(img) as movie:
        assert movie.shape == (1, 3, 8, 8) and movie.frame(0).shape == (3, 8, 8)


def test_three_frame_label_stack_is_not_written_as_rgb(tmp_path):
    from livescreen.imageio import write_labels

    labels = np.arange(3 * 4 * 4, dtype=np.uint32).reshape(3, 4, 4)
    write_labels(tmp_path / "l.tif", labels)
    back = tifffile.imread(tmp_path / "l.tif")
    assert back.shape == (3, 4, 4) and np.array_equal(back, labels)
