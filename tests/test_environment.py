"""The environment: lock, conda envs and the installed packages agree; btrack loads."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import pytest
import yaml
from packaging.utils import canonicalize_name

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import lock_envs  # noqa: E402

LOCK = lock_envs.read_lock()
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def test_lock_pins_every_package_exactly():
    lines = [ln for ln in (REPO / "requirements" / "lock.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert all("==" in ln for ln in lines)
    assert len(LOCK) == len(lines)  # no duplicates
    for core in ("torch", "cellpose", "btrack", "snakemake", "pandas", "pyarrow", "seaborn",
                 "scikit-image", "tifffile", "pandera"):
        assert core in LOCK
    assert LOCK["torch"] == "2.13.0" and LOCK["cellpose"] == "3.1.1.2"
    assert LOCK["snakemake"].startswith("9.")


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_conda_env_pins_equal_the_lock(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip, "no pinned pip packages"
    for spec in pip:
        name, version = spec.split("==")
        assert LOCK[canonicalize_name(name)] == version, f"{env_file.name}: {spec} vs lock"


def test_conda_envs_are_up_to_date_with_the_lock():
    """Regenerating the env files from the lock changes nothing (closure complete)."""
    for group, (roots, doc) in lock_envs.GROUPS.items():
        expected = lock_envs.env_yaml(group, roots, doc, LOCK)
        assert (REPO / "envs" / f"{group}.yaml").read_text() == expected, group


def test_every_rule_env_exists():
    import re

    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env}"


def test_installed_packages_match_the_lock():
    wrong = {}
    for name, version in LOCK.items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            wrong[name] = (version, None)
            continue
        if have.split("+")[0] != version.split("+")[0]:
            wrong[name] = (version, have)
    assert not wrong, f"installed versions differ from requirements/lock.txt: {wrong}"


def test_btrack_core_library_loads():
    code = "from btrack import libwrapper; print(libwrapper.get_library())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "libtracker.so" in res.stdout


def test_rebuilt_btrack_core_needs_no_recent_libstdcxx():
    """The rebuilt core links the C++ runtime statically: no GLIBCXX symbol versions."""
    import importlib.util
    from pathlib import Path

    lib = Path(importlib.util.find_spec("btrack").submodule_search_locations[0]) / "libs"
    data = (lib / "libtracker.so").read_bytes()
    assert b"GLIBCXX_3.4.32" not in data
    assert b"libstdc++.so" not in data
