"""Accuracy of the demo's segmentation models on held-out simulated frames (AP@0.5 >= 0.9).

Uses the demo config (config/config.yaml) as it stands: a population whose
``model`` is ``train`` is trained here with the demo recipe (slow: minutes per
population on 2 cores); a population whose ``model`` is a weights file (the
committed demo weights) is only evaluated. Held-out frames come from the
simulator's ``validation`` seeds (never used for training, never a screen site).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from livescreen.segment import eval_params, resolve_model, segment_settings
from livescreen.segment.cellpose3 import configure_torch, load_model
from livescreen.segment.training import evaluate, simulate_training_set, train_model

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("population", ["target", "effector"])
def test_demo_model_ap50(population, tmp_path, monkeypatch, record_property):
    monkeypatch.chdir(REPO)  # model paths in the demo config are relative to the repository
    configure_torch(2)
    seg = segment_settings(DEMO)
    source = resolve_model(seg["populations"][population]["model"], population,
                           seg["models_dir"])
    sim = seg["training"]["simulate"]
    if source.kind == "train":
        images, masks = simulate_training_set(DEMO["simulate"], DEMO["imaging"], population,
                                              "train", sim["train_sites"],
                                              sim["train_frames_per_site"])
        path = tmp_path / f"{population}.pth"
        params = eval_params(DEMO, population)
        record = train_model(images, masks, path, seg["training"],
                             normalize=params.normalize_kwargs)
        record_property("train_seconds", record["seconds"])
    else:
        path = Path(source.path)
    val_images, val_masks = simulate_training_set(DEMO["simulate"], DEMO["imaging"],
                                                  population, "validation", 4, 2)
    result = evaluate(load_model(path), val_images, val_masks, eval_params(DEMO, population))
    record_property("ap50", result["ap_mean"])
    logging.getLogger(__name__).warning("%s: AP@0.5 %.3f (TP %d, FP %d, FN %d)", population,
                                        result["ap_mean"], result["tp"], result["fp"],
                                        result["fn"])
    assert result["ap_mean"] >= 0.9, result


# --- the committed demo weights (models/demo/, fp16) on held-out frames: fast, always run ---

# the goal for both (measured 2026-12-01: effectors 0.938; targets 0.909 with the
# 'hires' weights, recover_unassigned, join_split_rings and min_edge_area_um2;
# docs/segmentation.md)
COMMITTED_AP_FLOOR = {"target": 0.9, "effector": 0.9}


@pytest.mark.parametrize("population", ["target", "effector"])
def test_committed_demo_weights_ap50(population, record_property):
    configure_torch(2)
    val_images, val_masks = simulate_training_set(DEMO["simulate"], DEMO["imaging"],
                                                  population, "validation", 4, 2)
    model = load_model(REPO / "models" / "demo" / f"{population}.pth")
    result = evaluate(model, val_images, val_masks, eval_params(DEMO, population))
    record_property("ap50", result["ap_mean"])
    assert result["ap_mean"] >= COMMITTED_AP_FLOOR[population], result
