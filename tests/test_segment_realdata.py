"""Real pretrained Cellpose weights, loaded by path, on real frames with manual masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from livescreen.segment import EvalParams
from livescreen.segment.cellpose3 import configure_torch, load_model
from livescreen.segment.training import average_precision

pytestmark = pytest.mark.realdata

# Frames of Fluo-N2DH-GOWT1/01 whose SEG masks annotate every nucleus (24 each); the
# other SEG frames annotate only 1-3 cells and would count every other nucleus as FP.
FULL_SEG_FRAMES = (21, 31, 33, 39)


def test_cyto_v0_on_gowt1_ap50(realdata, record_property):
    configure_torch(2)
    backend = load_model(realdata / "cellpose-cyto-v0" / "cyto_v0.pth", diam_mean=27.0)
    assert backend.model.diam_mean == 27.0
    seq = realdata / "ctc-Fluo-N2DH-GOWT1"
    images = [tifffile.imread(seq / "01" / f"t{t:03d}.tif") for t in FULL_SEG_FRAMES]
    truth = [tifffile.imread(seq / "01_GT" / "SEG" / f"man_seg{t:03d}.tif")
             for t in FULL_SEG_FRAMES]
    # nuclei are ~60 px across (mean equivalent diameter of the SEG masks: 59-60 px)
    params = EvalParams(diameter_px=60.0, batch_frames=2)
    pred = list(backend.segment(images, params))
    result = average_precision(truth, pred)  # renumbers the skipping SEG ids
    record_property("ap50", result["ap_mean"])
    logging.getLogger(__name__).warning(
        "GOWT1 01 AP@0.5 = %.3f (TP %d, FP %d, FN %d)", result["ap_mean"], result["tp"],
        result["fp"], result["fn"])
    assert result["ap_mean"] >= 0.8
    assert result["tp"] >= 0.85 * sum(len(np.unique(t)) - 1 for t in truth)
    # the stage's masks are exactly Cellpose's own (tuned) eval's
    np.testing.assert_array_equal(pred[0], backend.reference_eval(images[0], params))
