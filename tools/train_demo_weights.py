"""Train (and score) the demo's committed Cellpose weights, ``models/demo/<population>.pth``.

The code path is the workflow's own (rule ``train_cellpose`` and
``tests/test_segment_accuracy.py``): annotated frames from
``livescreen.segment.training.simulate_training_set`` (simulator seeds that no
screen site uses), ``train_model`` (Cellpose's ``cellpose.train.train_seg``) with
the demo config's ``segment.training`` settings, then AP@0.5 on the held-out
frames of the test (``simulate_training_set(..., "validation", 4, 2)``, scored
by ``evaluate`` with ``eval_params(demo config, population)``). A recipe only
overrides numbers of the recipe (epochs, images per epoch, batch, crop, training
diameter, learning rate, simulated training fields and frames per field).

The weights are saved as the committed files are: the state dict with every
floating-point tensor cast to float16 (13 MB instead of 26 MB; ``load_model``
reads them back into a float32 network). The score is that of the saved file.

Usage::

    # what the demo config trains (400 steps; ~3.5 min on 2 idle CPU cores)
    .venv/bin/python tools/train_demo_weights.py effector --recipe config
    # compare recipes, on a GPU, the saved weights also scored on the CPU
    python tools/train_demo_weights.py target --recipe long wide --gpu --cpu-eval \\
        --outdir /tmp/demo_weights --parallel
    # an ad-hoc recipe
    .venv/bin/python tools/train_demo_weights.py target --set n_epochs=3000 crop_px=96
    # regenerate a committed file: the best recipe's weights are copied there
    .venv/bin/python tools/train_demo_weights.py effector --recipe config --install

Outputs (``--outdir``, default ``resources/models/demo_training/``, ignored by
git): ``<population>_<recipe>.pth`` and ``<population>_<recipe>.json`` (the
training record of ``train_model`` plus ``validation``: AP@0.5, TP, FP, FN,
seconds; ``validation_cpu`` with ``--cpu-eval``), and ``<population>_summary.json``.
A summary table is printed. ``--install`` copies the recipe with the best
AP@0.5 (the CPU score when there is one) to ``models/demo/<population>.pth``.

See docs/segmentation.md, "Demo training", for the recipes measured so far.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
CONFIG_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
if str(SCRIPTS) not in sys.path:  # livescreen without the editable install (e.g. a GPU node)
    sys.path.insert(0, str(SCRIPTS))

log = logging.getLogger("train_demo_weights")

#: Settings a recipe may override: ``segment.training`` numbers and the simulated set's size.
RECIPE_KEYS = ("n_epochs", "nimg_per_epoch", "batch_size", "crop_px", "diam_mean_px",
               "learning_rate", "weight_decay", "sgd", "seed", "train_sites",
               "train_frames_per_site", "normalize_percentiles", "initial_model", "simulate")

#: Recipe keys that are not ``segment.training`` settings.
DATA_KEYS = ("train_sites", "train_frames_per_site", "normalize_percentiles", "simulate")

#: Named recipes (overrides of the demo config's ``segment.training``).
RECIPES: dict[str, dict[str, Any]] = {
    # the demo config as it stands (400 steps of 8 crops of 64 px at 17 px objects)
    "config": {},
    # same data, 7.5x the steps
    "long": {"n_epochs": 3000},
    # 4x the simulated fields (more ring-shaped hosts and dying cells), objects at
    # 30 px in 128-px crops (more context per crop, finer flows), 3000 steps
    "wide": {"train_sites": 48, "diam_mean_px": 30.0, "crop_px": 128, "n_epochs": 3000},
    # "wide" with 10000 steps
    "wide-long": {"train_sites": 48, "diam_mean_px": 30.0, "crop_px": 128, "n_epochs": 10000},
    # fine-tune the 2,400-step 17-px weights at objects of 30 px (thin host rings stay
    # > 1 px wide), 96-px crops, twice the simulated fields; the initial weights are
    # models/demo/target.pth of commit 7e0b758 (docs/segmentation.md, "Demo training")
    "hires": {"initial_model": "resources/models/demo_training/target_17px.pth",
              "diam_mean_px": 30.0, "crop_px": 96, "n_epochs": 600, "train_sites": 24},
    # fine-tune the committed 'hires' weights (models/demo/target.pth) at a fifth of
    # the learning rate on 12 of the demo's own fields and 12 fields rich
    # in cell-in-cell hosts (70 % of contacted targets engulfed, 20x the spontaneous
    # rate), six frames per field: thin host rings are rare in the screen's fields
    # (docs/segmentation.md, "Ring-rich fine-tuning": more hosts found, fewer
    # cell-in-cell events on the demo's own masks; not installed)
    "rings": {"initial_model": "models/demo/target.pth",
              "diam_mean_px": 30.0, "crop_px": 96, "n_epochs": 600, "learning_rate": 0.02,
              "train_sites": 24, "train_frames_per_site": 6,
              "simulate": [{}, {"outcomes": {"baseline": {"kill": 0.15, "cell_in_cell": 0.7,
                                                          "trogocytosis_only": 0.05,
                                                          "evasion": 0.1}},
                                "cell_in_cell": {"spontaneous_per_h": 0.08}}]},
}

#: Held-out frames of tests/test_segment_accuracy.py: 4 validation fields x 2 frames.
VALIDATION = (4, 2)


def demo_config() -> dict:
    """The demo study's config (config/config.yaml)."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def training_fields(sim_cfg: dict, overrides: dict | list | None, sites: int
                    ) -> list[tuple[dict, int]]:
    """Simulation settings and number of fields of each part of a recipe's training set.

    Parameters
    ----------
    sim_cfg : dict
        The demo config's ``simulate`` section.
    overrides : dict, list of dict or None
        A recipe's ``simulate`` overrides, merged into ``sim_cfg`` and checked
        against the workflow's config schema; they change the training fields
        only, never the held-out frames. A list splits the ``sites`` training
        fields evenly among its entries (``{}``: the demo's own settings); the
        k-th part's seed is shifted by ``k * 100003``, so no two parts share a
        field (and none is a held-out field: those are 1,000,026 seeds further on).
    sites : int
        Training fields in all.
    """
    import jsonschema

    from livescreen.simulate.params import deep_merge

    # the whole schema (its references are from the root), with no top-level key required
    schema = {**yaml.safe_load(CONFIG_SCHEMA.read_text()), "required": []}
    validator = jsonschema.Draft202012Validator(schema)
    parts = overrides if isinstance(overrides, list) else [overrides or {}]
    if not parts or sites < len(parts):
        raise SystemExit(f"{sites} training fields cannot be split into {len(parts)} parts")
    out = []
    for k, part in enumerate(parts):
        cfg = deep_merge(sim_cfg, part)
        error = jsonschema.exceptions.best_match(validator.iter_errors({"simulate": cfg}))
        if error is not None:  # the workflow's own schema: unknown keys, bad values
            where = ".".join(map(str, error.absolute_path))
            raise SystemExit(f"recipe 'simulate' part {k}: {where}: {error.message}")
        cfg["seed"] = int(cfg.get("seed", 0)) + 100_003 * k
        out.append((cfg, sites // len(parts) + (k < sites % len(parts))))
    return out


def recipe_settings(config: dict, overrides: dict[str, Any]) -> tuple[dict, int, int]:
    """``segment.training`` of ``config`` with ``overrides``; training fields, frames per field.

    Parameters
    ----------
    config : dict
        The whole workflow config.
    overrides : dict
        Keys of :data:`RECIPE_KEYS`.

    Returns
    -------
    settings : dict
        What ``train_model`` takes (``initial_model``: the recipe's, relative to the
        repository, else None: from scratch).
    sites, frames_per_site : int
    """
    from livescreen.segment import segment_settings

    unknown = sorted(set(overrides) - set(RECIPE_KEYS))
    if unknown:
        raise SystemExit(f"unknown recipe keys {unknown}; allowed: {', '.join(RECIPE_KEYS)}")
    training = segment_settings(config)["training"]
    sim = training["simulate"]
    settings = {k: v for k, v in training.items() if k not in ("simulate", "annotations")}
    settings.update({k: v for k, v in overrides.items() if k not in DATA_KEYS})
    init = overrides.get("initial_model")
    settings["initial_model"] = str(REPO / init) if init else None
    if init and not Path(settings["initial_model"]).is_file():
        raise SystemExit(f"initial_model {settings['initial_model']} does not exist "
                         "(docs/segmentation.md, 'Demo training', says how to get it)")
    sites = int(overrides.get("train_sites", sim["train_sites"]))
    training_fields(config["simulate"], overrides.get("simulate"), sites)  # bad keys fail now
    return settings, sites, int(overrides.get("train_frames_per_site",
                                              sim["train_frames_per_site"]))


def save_fp16(src: Path, dst: Path) -> None:
    """Write the state dict in ``src`` to ``dst`` with floating tensors cast to float16."""
    import torch

    from livescreen.imageio import atomic_path

    state = torch.load(src, map_location="cpu", weights_only=True)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    with atomic_path(dst) as tmp:
        torch.save(half, tmp)


def score(path: Path, config: dict, population: str, use_gpu: bool,
          validation: tuple[int, int] = VALIDATION) -> dict:
    """AP@0.5 of the weights in ``path`` on the held-out frames, as the test computes it."""
    from livescreen.segment import eval_params
    from livescreen.segment.cellpose3 import load_model
    from livescreen.segment.training import evaluate, simulate_training_set

    val_images, val_masks = simulate_training_set(config["simulate"], config["imaging"],
                                                  population, "validation", *validation)
    t0 = time.perf_counter()
    backend = load_model(path, use_gpu=use_gpu)
    result = evaluate(backend, val_images, val_masks, eval_params(config, population))
    result.update(seconds=round(time.perf_counter() - t0, 1), device=backend.device,
                  frames=len(val_images), n_true=result["tp"] + result["fn"])
    return result


def train_recipe(population: str, name: str, overrides: dict[str, Any], outdir: Path, *,
                 use_gpu: bool = False, cpu_eval: bool = False,
                 validation: tuple[int, int] = VALIDATION) -> dict:
    """Train one recipe, save fp16 weights, score them; write and return the record."""
    import torch

    from livescreen.segment import eval_params
    from livescreen.segment.training import simulate_training_set, train_model, write_record

    config = demo_config()
    if "normalize_percentiles" in overrides:  # used for training and scoring alike
        pop_cfg = config["segment"]["populations"][population]
        pop_cfg["normalize_percentiles"] = list(overrides["normalize_percentiles"])
    settings, sites, frames = recipe_settings(config, overrides)
    params = eval_params(config, population)
    t0 = time.perf_counter()
    images, masks = [], []
    for sim_cfg, n in training_fields(config["simulate"], overrides.get("simulate"), sites):
        more = simulate_training_set(sim_cfg, config["imaging"], population, "train", n, frames)
        images += more[0]
        masks += more[1]
    sim_s = time.perf_counter() - t0
    log.info("%s/%s: %d training frames (%d fields x %d) simulated in %.0f s; settings %s",
             population, name, len(images), sites, frames, sim_s, overrides or "(config)")
    weights = outdir / f"{population}_{name}.pth"
    full = outdir / f".{population}_{name}.fp32.pth"
    record = train_model(images, masks, full, settings, use_gpu=use_gpu,
                         normalize=params.normalize_kwargs)
    save_fp16(full, weights)
    full.unlink()
    record.update(population=population, recipe=name, overrides=overrides,
                  train_sites=sites, train_frames_per_site=frames,
                  simulate_seconds=round(sim_s, 1), weights=str(weights),
                  weights_mib=round(weights.stat().st_size / 2**20, 2),
                  torch=torch.__version__,
                  gpu=torch.cuda.get_device_name(0) if record["device"].startswith("cuda")
                  else None)
    record["validation"] = score(weights, config, population, use_gpu, validation)
    if cpu_eval and record["device"] != "cpu":
        record["validation_cpu"] = score(weights, config, population, False, validation)
    write_record(outdir / f"{population}_{name}.json", record)
    v = record["validation"]
    log.info("%s/%s: AP@0.5 %.3f (TP %d, FP %d, FN %d) after %.0f s of training on %s",
             population, name, v["ap_mean"], v["tp"], v["fp"], v["fn"], record["seconds"],
             record["device"])
    return record


def summary_rows(records: list[dict]) -> list[dict]:
    """One row per recipe: AP/TP/FP/FN on the training device (and the CPU), seconds."""
    rows = []
    for r in records:
        row = {"recipe": r["recipe"], "overrides": r["overrides"], "device": r["device"],
               "gpu": r.get("gpu"), "train_seconds": r["seconds"],
               "n_frames": r["n_frames"], "weights": r["weights"]}
        for key in ("validation", "validation_cpu"):
            if key in r:
                v = r[key]
                row[key] = {k: v[k] for k in ("ap_mean", "ap_pooled", "tp", "fp", "fn",
                                              "seconds", "device")}
        rows.append(row)
    return rows


def best_ap(row: dict) -> float:
    """The score that counts: the CPU evaluation when there is one."""
    return (row.get("validation_cpu") or row["validation"])["ap_mean"]


def format_rows(rows: list[dict]) -> str:
    out = [f"{'recipe':<12}{'device':<8}{'train s':>9}{'AP@0.5':>8}{'TP':>5}{'FP':>5}{'FN':>5}"
           f"{'CPU AP':>8}"]
    for r in rows:
        v, c = r["validation"], r.get("validation_cpu")
        out.append(f"{r['recipe']:<12}{r['device']:<8}{r['train_seconds']:>9.0f}"
                   f"{v['ap_mean']:>8.3f}{v['tp']:>5}{v['fp']:>5}{v['fn']:>5}"
                   + (f"{c['ap_mean']:>8.3f}" if c else f"{'-':>8}"))
    return "\n".join(out)


def parse_set(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, got '{item}'")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("population", choices=["target", "effector"])
    ap.add_argument("--recipe", nargs="+", default=None, choices=sorted(RECIPES),
                    help="named recipes (default: 'config', none with --set)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help=f"an ad-hoc recipe, named by --name (keys: {', '.join(RECIPE_KEYS)})")
    ap.add_argument("--name", default="custom", help="name of the --set recipe")
    ap.add_argument("--outdir", type=Path, default=REPO / "resources" / "models" /
                    "demo_training")
    ap.add_argument("--gpu", action="store_true",
                    help="train and score on the GPU (fails if torch sees no CUDA device)")
    ap.add_argument("--cpu-eval", action="store_true",
                    help="also score the saved weights on the CPU (the number the tests check)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--parallel", action="store_true",
                    help="one child process per recipe, all at once (for a GPU)")
    ap.add_argument("--validation", type=int, nargs=2, default=list(VALIDATION),
                    metavar=("FIELDS", "FRAMES"),
                    help="held-out fields x frames (default 4 2, the test's; smaller: smoke only)")
    ap.add_argument("--install", action="store_true",
                    help="copy the best recipe's weights to models/demo/<population>.pth")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    from livescreen.segment.cellpose3 import configure_torch

    if args.install and tuple(args.validation) != VALIDATION:
        raise SystemExit(f"--install needs the test's held-out frames (--validation "
                         f"{VALIDATION[0]} {VALIDATION[1]})")
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: torch sees no CUDA device")
    configure_torch(args.threads)
    recipes = {n: RECIPES[n] for n in (args.recipe or ([] if args.set else ["config"]))}
    if args.set:
        recipes[args.name] = parse_set(args.set)
    for overrides in recipes.values():
        recipe_settings(demo_config(), overrides)  # unknown keys fail before any training
    args.outdir.mkdir(parents=True, exist_ok=True)
    validation = tuple(args.validation)
    t0 = time.perf_counter()
    if args.parallel and len(recipes) > 1:
        procs = {}
        for name, overrides in recipes.items():
            cmd = [sys.executable, __file__, args.population, "--outdir", str(args.outdir),
                   "--threads", str(args.threads), "--validation", *map(str, validation)]
            cmd += ["--gpu"] * args.gpu + ["--cpu-eval"] * args.cpu_eval
            cmd += (["--set", *(f"{k}={json.dumps(v)}" for k, v in overrides.items()),
                     "--name", name] if overrides else ["--recipe", name])
            log_file = (args.outdir / f"{args.population}_{name}.log").open("w")
            procs[name] = (subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT),
                           log_file)
        for name, (proc, log_file) in procs.items():
            if proc.wait():
                log.error("recipe %s failed (exit %d), see %s", name, proc.returncode,
                          log_file.name)
            log_file.close()
        records = [json.loads(p.read_text()) for name in recipes
                   if (p := args.outdir / f"{args.population}_{name}.json").is_file()]
    else:
        records = [train_recipe(args.population, name, overrides, args.outdir,
                                use_gpu=args.gpu, cpu_eval=args.cpu_eval,
                                validation=validation)
                   for name, overrides in recipes.items()]
    rows = summary_rows(records)
    summary = {"population": args.population, "validation": list(validation),
               "wall_seconds": round(time.perf_counter() - t0, 1), "recipes": rows}
    (args.outdir / f"{args.population}_summary.json").write_text(
        json.dumps(summary, indent=2) + "\n")
    sys.stdout.write(format_rows(rows) + "\n")
    if not rows:
        return 1
    if args.install:
        best = max(rows, key=best_ap)
        dst = REPO / "models" / "demo" / f"{args.population}.pth"
        shutil.copyfile(best["weights"], dst)
        sys.stdout.write(f"installed {best['recipe']} (AP@0.5 {best_ap(best):.3f}) as {dst}\n")
    return 0 if len(rows) == len(recipes) else 1


if __name__ == "__main__":
    sys.exit(main())
