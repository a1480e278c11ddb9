"""tools/train_demo_weights.py: how a recipe's simulated training fields are made."""

from __future__ import annotations

import copy
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
from train_demo_weights import (  # noqa: E402
    RECIPES,
    demo_config,
    recipe_settings,
    training_fields,
)


def test_rings_recipe_splits_fields_between_demo_and_ring_rich_settings():
    sim = demo_config()["simulate"]
    before = copy.deepcopy(sim)
    parts = training_fields(sim, RECIPES["rings"]["simulate"], 25)
    assert [n for _, n in parts] == [13, 12]
    (demo, n_demo), (rich, _) = parts
    assert demo == sim                              # the first part is the demo's own
    assert rich["seed"] == sim["seed"] + 100_003    # no field shared between parts
    assert rich["outcomes"]["baseline"]["cell_in_cell"] == 0.7
    assert sum(rich["outcomes"]["baseline"].values()) == pytest.approx(1.0)
    assert rich["cell_in_cell"]["spontaneous_per_h"] == 0.08
    assert rich["cell_in_cell"]["margin_um"] == sim["cell_in_cell"]["margin_um"]  # merged, kept
    assert sim == before                            # the config is not mutated


def test_a_single_override_or_none_keeps_one_part():
    sim = demo_config()["simulate"]
    assert training_fields(sim, None, 24) == [(sim, 24)]
    (cfg, n), = training_fields(sim, {"cell_in_cell": {"spontaneous_per_h": 0.1}}, 24)
    assert n == 24 and cfg["seed"] == sim["seed"]
    assert cfg["cell_in_cell"]["spontaneous_per_h"] == 0.1


def test_unknown_simulate_keys_bad_values_and_too_few_fields_are_refused():
    sim = demo_config()["simulate"]
    with pytest.raises(SystemExit, match="'cell_in_cel' was unexpected"):
        training_fields(sim, {"cell_in_cel": {"spontaneous_per_h": 0.1}}, 24)
    with pytest.raises(SystemExit, match=r"part 1: simulate\.cell_in_cell\.inner_death_prob"):
        training_fields(sim, [{}, {"cell_in_cell": {"inner_death_prob": 2}}], 24)
    with pytest.raises(SystemExit, match="cannot be split into 2 parts"):
        training_fields(sim, [{}, {}], 1)


def test_recipe_settings_check_the_simulate_overrides_before_training():
    config = demo_config()
    settings, sites, frames = recipe_settings(config, RECIPES["rings"])
    assert (sites, frames) == (24, 6)
    assert settings["learning_rate"] == 0.02 and "simulate" not in settings
    with pytest.raises(SystemExit, match="'outcome' was unexpected"):
        recipe_settings(config, {"simulate": [{}, {"outcome": {}}]})
