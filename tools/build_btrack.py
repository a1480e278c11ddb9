"""Rebuild btrack's C++ core (libtracker.so) so that it loads on this machine.

btrack 0.7.0's wheel bundles a ``libtracker.so`` linked against a recent
libstdc++ (it needs ``GLIBCXX_3.4.32``) and fails to load on Debian 12 and on
many HPC nodes.  This script compiles the library from the btrack sdist (which
carries the C++ sources), linking the C++ runtime statically
(``-static-libstdc++ -static-libgcc``), so the result needs only the C library
of the machine it was built on.  Eigen headers are taken from
``$EIGEN_INCLUDE_DIR`` or, by default, from the ``eigency`` wheel on PyPI
(headers only; nothing is installed).  Needs a C++ compiler (``$CXX``, default
``g++``) and the package index; no root.

Usage::

    python tools/build_btrack.py [--force]

Without ``--force`` nothing happens when the installed library already loads.
The bundled library is kept beside it as ``libtracker.so.bundled``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

EIGENCY_VERSION = "5.0.1.1"
log = logging.getLogger("build_btrack")


def installed_library() -> Path:
    """Path of the ``libtracker.so`` inside the installed btrack package."""
    spec = importlib.util.find_spec("btrack")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build_btrack: btrack is not installed in this environment")
    return Path(spec.submodule_search_locations[0]) / "libs" / "libtracker.so"


def loads(path: Path) -> tuple[bool, str]:
    """Try to dlopen ``path`` in a fresh interpreter; return (ok, message)."""
    code = f"import ctypes; ctypes.CDLL({str(path)!r})"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return res.returncode == 0, res.stderr.strip().splitlines()[-1] if res.stderr else ""


def pip_download(requirement: str, dest: Path, sdist: bool) -> Path:
    """Download one distribution (no dependencies) with pip and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run(cmd + [requirement], check=True)
    return next(p for p in dest.iterdir() if p.is_file())


def eigen_root(work: Path) -> Path:
    """Directory that contains ``Eigen/Dense``."""
    env = os.environ.get("EIGEN_INCLUDE_DIR")
    if env:
        root = Path(env)
        if not (root / "Eigen" / "Dense").is_file():
            sys.exit(f"build_btrack: EIGEN_INCLUDE_DIR={env} has no Eigen/Dense")
        return root
    wheel = pip_download(f"eigency=={EIGENCY_VERSION}", work / "eigency", sdist=False)
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.startswith("eigency/eigen/")]
        zf.extractall(work / "eigency", members)
    return work / "eigency" / "eigency" / "eigen"


def compile_library(src: Path, eigen: Path, out: Path) -> None:
    """Compile btrack's C++ sources in ``src`` into the shared library ``out``."""
    cxx = os.environ.get("CXX", "g++")
    inc = src / "btrack" / "include"
    shim = src / "eigen_shim"  # sources include "eigen/Eigen/Dense"
    shim.mkdir(exist_ok=True)
    (shim / "eigen").symlink_to(eigen.resolve(), target_is_directory=True)
    sources = sorted((src / "btrack" / "src").glob("*.cc"))
    flags = ["-std=c++17", "-m64", "-fPIC", "-O3", "-DDEBUG=false", "-DBUILD_SHARED_LIB",
             f"-I{inc}", f"-I{shim}"]

    def one(cc: Path) -> Path:
        obj = cc.with_suffix(".o")
        subprocess.run([cxx, "-c", *flags, str(cc), "-o", str(obj)], check=True)
        log.info("compiled %s", cc.name)
        return obj

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        objects = list(pool.map(one, sources))
    subprocess.run([cxx, "-shared", "-static-libstdc++", "-static-libgcc",
                    "-Wl,--no-undefined", "-o", str(out), *map(str, objects)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if it loads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[build_btrack] %(message)s")

    target = installed_library()
    ok, why = loads(target)
    if ok and not args.force:
        log.info("%s loads; nothing to do", target)
        return 0
    log.info("installed libtracker does not load (%s); building from source", why or "forced")
    version = importlib.metadata.version("btrack")
    with tempfile.TemporaryDirectory(prefix="btrack-build-") as tmp:
        work = Path(tmp)
        sdist = pip_download(f"btrack=={version}", work / "sdist", sdist=True)
        with tarfile.open(sdist) as tf:
            tf.extractall(work / "src", filter="data")
        src = next((work / "src").iterdir())
        built = work / "libtracker.so"
        compile_library(src, eigen_root(work), built)
        ok, why = loads(built)
        if not ok:
            sys.exit(f"build_btrack: the rebuilt library does not load either: {why}")
        backup = target.with_name("libtracker.so.bundled")
        if target.exists() and not backup.exists():
            shutil.copy2(target, backup)
        staged = target.with_name("libtracker.so.new")
        shutil.copy2(built, staged)
        os.replace(staged, target)
    log.info("installed rebuilt btrack %s core at %s", version, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
