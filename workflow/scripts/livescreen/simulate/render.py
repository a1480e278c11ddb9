"""Image formation: noise-free intensity maps -> (T, C, Y, X) uint16 movie.

Per channel: PSF blur (Gaussian), photobleaching of the specimen signal,
uneven background (tilted plane plus vignetting, drawn per site), photon
(shot) noise, camera gain, Gaussian read noise and offset, clipping to uint16.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage


def background_field(shape: tuple[int, int], level: float, unevenness: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Smooth uneven background: a random tilt plus a vignetting term.

    Parameters
    ----------
    shape : tuple of int
        (Y, X).
    level : float
        Mean background (in units of a typical cell's brightness).
    unevenness : float
        Relative peak-to-mean variation (0 = flat).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        float32 (Y, X), positive.
    """
    h, w = shape
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ang = rng.uniform(0, 2 * np.pi)
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    tilt = np.cos(ang) * yy + np.sin(ang) * xx
    vign = -((yy - cy) ** 2 + (xx - cx) ** 2) / 2
    field = 1 + unevenness * (0.6 * tilt + 0.8 * (vign + 0.35))
    return (level * np.clip(field, 0.2, None)).astype(np.float32)


def form_image(values: Mapping[str, np.ndarray], channels: tuple[str, ...],
               render_cfg: Mapping, pixel_size_um: float, frame_interval_min: float,
               rng: np.random.Generator) -> np.ndarray:
    """Turn noise-free intensity maps into a noisy uint16 movie.

    Parameters
    ----------
    values : mapping
        Role -> (T, Y, X) float32 intensity (1 = a typical cell's brightness).
        Not modified.
    channels : tuple of str
        Roles in channel order.
    render_cfg : mapping
        ``simulate.render`` section.
    pixel_size_um, frame_interval_min : float
        Pixel size and frame interval.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        (T, C, Y, X) uint16.
    """
    first = values[channels[0]]
    n_t, h, w = first.shape
    out = np.empty((n_t, len(channels), h, w), np.uint16)
    sigma = float(render_cfg["psf_sigma_um"]) / pixel_size_um
    t_min = np.arange(n_t, dtype=np.float32) * frame_interval_min
    gain = float(render_cfg["gain_adu_per_photon"])
    for c, role in enumerate(channels):
        signal = ndimage.gaussian_filter(values[role], sigma=(0, sigma, sigma), mode="nearest")
        bleach = 0.5 ** (t_min / float(render_cfg["bleach_half_life_min"][role]))
        bg = background_field((h, w), float(render_cfg["background"][role]),
                              float(render_cfg["background_unevenness"]), rng)
        photons = (signal * bleach[:, None, None] + bg) * float(
            render_cfg["photons_per_unit"][role])
        # Poisson photon noise (normal approximation N(lambda, lambda), accurate for the
        # >= 20 photons per pixel used here) and Gaussian read noise, in one draw.
        lam = np.maximum(photons, 0).astype(np.float32)
        sd = np.sqrt(lam * gain * gain + float(render_cfg["read_noise_adu"]) ** 2)
        adu = lam * gain + float(render_cfg["offset_adu"]) + sd * rng.standard_normal(
            lam.shape, dtype=np.float32)
        out[:, c] = np.clip(np.rint(adu), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return out
