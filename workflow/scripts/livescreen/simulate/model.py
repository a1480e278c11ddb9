"""Agent-based co-culture model: motion, encounters, outcomes and per-frame labels.

One :func:`run_model` call simulates one site. Cells are agents with a
continuous position (um, (y, x) relative to the field's top-left pixel
centre) in a domain that extends ``margin_um`` beyond the field, so cells
enter and leave. Targets are star-convex shapes (radial harmonics 2-5),
effectors small near-round shapes. Every frame the model

1. applies the discrete events due at that frame (divisions, outcomes of
   encounters that end, deaths, internalisations),
2. renders the ground-truth labels and the noise-free intensity maps of that
   frame (targets, effectors, death reporter), and
3. advances the motion in sub-steps of about 1 min, binding free effectors
   that touch a bindable target (that starts an encounter).

Every target is bound at most once: its (single, decisive) encounter's outcome
is drawn from the site's outcome probabilities when it binds and takes effect
when the contact ends. Free effectors keep a clearance from all targets, so
every visible effector-target contact is an encounter of the ground truth.
See docs/simulator.md.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from livescreen.simulate.params import OUTCOMES, SimulationParams

log = logging.getLogger(__name__)

#: Radial harmonics used for star-convex shapes.
HARMONICS = np.arange(2, 6, dtype=float)
ALIVE, DIVIDING, DYING, DEAD, INTERNALIZING, INTERNALIZED, GONE = range(7)
#: ``tracks.state`` vocabulary (index = state code; ``gone`` never appears in tables).
STATE_NAMES = ("alive", "dividing", "dying", "dead", "internalizing", "internalized", "gone")
CAUSES = ("none", "kill", "spontaneous", "inner")
END_REASONS = ("movie_end", "left_field", "divided", "faded", "hidden")
FATE_OF_OUTCOME = {"kill": "killed", "cell_in_cell": "cell_in_cell", "evasion": "evaded",
                   "trogocytosis_only": "nibbled"}
N_BLEBS_MAX, N_FRAGS = 6, 5


def _harm(a: np.ndarray, phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Sum of radial harmonics ``sum_k a_k cos(k theta + phi_k)`` (last axis of a, phi = k)."""
    return np.sum(a * np.cos(HARMONICS * theta[..., None] + phi), axis=-1)


def _random_shape(rng: np.random.Generator, n: int, irregularity: float):
    """Harmonic amplitudes (n, 4) with sum |a| <= 0.45, and phases (n, 4)."""
    a = rng.normal(0.0, 1.0, (n, HARMONICS.size)) * irregularity / np.sqrt(HARMONICS - 1.0)
    tot = np.abs(a).sum(axis=1, keepdims=True)
    a = np.where(tot > 0.45, a * 0.45 / np.maximum(tot, 1e-12), a)
    phi = rng.uniform(0.0, 2 * np.pi, (n, HARMONICS.size))
    return a, phi


def _harm_box(a: np.ndarray, phi: np.ndarray, dy: np.ndarray, dx: np.ndarray,
              dist: np.ndarray) -> np.ndarray:
    """:func:`_harm` on a pixel box via powers of the unit complex number (no trig per pixel)."""
    z = (dx + 1j * dy).astype(np.complex64) / np.maximum(dist, np.float32(1e-6))
    zk = z * z
    out = np.zeros(dist.shape, np.float32)
    for k in range(HARMONICS.size):
        if a[k] != 0:
            c = complex(a[k] * math.cos(phi[k]), a[k] * math.sin(phi[k]))
            out += (zk.real * np.float32(c.real) - zk.imag * np.float32(c.imag))
        zk = zk * z
    return out


def carry_label(carried: float, carried_brightness: float, added: float,
                brightness: float) -> tuple[float, float]:
    """Target label held by an effector after it picks up more.

    Nibbled membrane adds to what the effector still carries from earlier
    nibbles (of this or another target): the amounts add in intensity units.

    Parameters
    ----------
    carried : float
        Label held, in units of ``carried_brightness``.
    carried_brightness : float
        Brightness of the target it came from last (> 0).
    added : float
        Label picked up now, in units of ``brightness``.
    brightness : float
        Brightness of the target nibbled now (> 0).

    Returns
    -------
    tuple of float
        The label held, in units of ``brightness``, and ``brightness``.
    """
    return carried * carried_brightness / brightness + added, brightness


def _smooth(x):
    """Smoothstep on [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Site:
    """Mutable state of one simulation (private; use :func:`run_model`)."""

    def __init__(self, p: SimulationParams, rng: np.random.Generator):
        self.p, self.rng, c = p, rng, p.cfg
        self.c = c
        self.ps, self.dt = p.pixel_size_um, p.frame_interval_min
        self.T, self.H, self.W = p.n_frames, p.height_px, p.width_px
        self.h_um, self.w_um = (self.H - 1) * self.ps, (self.W - 1) * self.ps
        self.m = float(c["margin_um"])
        self.lo = np.array([-self.m, -self.m])
        self.hi = np.array([self.h_um + self.m, self.w_um + self.m])
        self.n_sub = max(1, math.ceil(self.dt / 1.0))
        self.hstep = self.dt / self.n_sub
        self.n_dying = max(1, round(c["death"]["dying_duration_min"] / self.dt))
        self.n_engulf = max(1, round(c["cell_in_cell"]["engulf_duration_min"] / self.dt))
        self.probs = np.array([p.outcome_probs[o] for o in OUTCOMES])
        self.enc: list[dict] = []
        self.events_extra: list[tuple] = []
        self.qc = {"cell_in_cell_waits": 0, "encounters_dropped": 0}
        self.pending_cic: list[int] = []
        self.rows_t: list[tuple] = []
        self.rows_e: list[tuple] = []
        self.n_track_t = 0
        self.n_track_e = 0
        self.eff_segments: list[dict] = []
        shape = (self.T, self.H, self.W)
        self.lab = {"target": np.zeros(shape, np.uint32), "effector": np.zeros(shape, np.uint32)}
        self.val = {k: np.zeros(shape, np.float32) for k in ("target", "effector", "death")}
        self._init_cells()

    # ------------------------------------------------------------------ set-up
    def _target_arrays(self, pos, radius, bright, parent, born):
        """Arrays of new targets (dict of per-cell arrays)."""
        n, rng, c = len(pos), self.rng, self.c["targets"]
        a, phi = _random_shape(rng, n, float(c["irregularity"]))
        ang = rng.uniform(0, 2 * np.pi, (n, N_BLEBS_MAX))
        return {
            "pos": np.asarray(pos, float).reshape(n, 2), "vel": np.zeros((n, 2)),
            "r0": np.asarray(radius, float), "a": a, "phi": phi,
            "shape": np.ones(n), "shape0": np.ones(n), "rscale": np.ones(n),
            "rscale0": np.ones(n), "bright": np.asarray(bright, float),
            "nuc": rng.uniform(-0.2, 0.2, (n, 2)), "state": np.full(n, ALIVE),
            "bound": np.full(n, -1), "contacted": np.zeros(n, bool),
            "host_of": np.full(n, -1), "inner_of": np.full(n, -1),
            "parent": np.asarray(parent, int).reshape(n), "born": np.full(n, born),
            "onset": np.full(n, -1), "death_frame": np.full(n, -1), "cause": np.zeros(n, int),
            "fragment": np.zeros(n, bool), "fragmented": np.zeros(n, bool),
            "bleb_ang": ang, "bleb_size": np.zeros((n, N_BLEBS_MAX)),
            "frag_off": rng.uniform(-0.55, 0.55, (n, N_FRAGS, 2)),
            "frag_r": rng.uniform(0.22, 0.38, (n, N_FRAGS)),
            "reporter": np.zeros(n), "fade": np.ones(n), "condense": np.zeros(n),
            "kick": np.zeros((n, 2)), "kick_until": np.full(n, -np.inf),
            "cic_start": np.full(n, -1), "cic_off0": np.zeros((n, 2)),
            "cic_off1": np.zeros((n, 2)), "cic_rs1": np.ones(n), "host_r0": np.zeros(n),
            "host_r1": np.zeros(n), "internal_frame": np.full(n, -1),
            "inner_death_at": np.full(n, -1), "track": np.zeros(n, int),
            "first_vis": np.full(n, -1), "last_vis": np.full(n, -1),
            "end_reason": np.zeros(n, int), "div_frame": np.full(n, -1),
            "enc": np.full(n, -1), "rng_r": np.zeros(n),
        }

    def _append_targets(self, new):
        if not hasattr(self, "tg"):
            self.tg = new
            return
        for k, v in new.items():
            self.tg[k] = np.concatenate([self.tg[k], v])

    def _init_cells(self):
        rng, ct, ce = self.rng, self.c["targets"], self.c["effectors"]
        area_mm2 = (self.hi - self.lo).prod() * 1e-6
        n_t = int(rng.poisson(float(ct["density_per_mm2"]) * area_mm2))
        d_lo, d_hi = ct["diameter_um"]
        pos, rad = [], []
        frac = float(ct["min_distance_fraction"])
        for _ in range(n_t):
            r = rng.uniform(d_lo, d_hi) / 2
            for _try in range(60):
                if pos and rng.random() < float(ct["cluster_fraction"]):
                    j = rng.integers(len(pos))
                    ang = rng.uniform(0, 2 * np.pi)
                    q = np.asarray(pos[j]) + (rad[j] + r) * 0.97 * np.array(
                        [np.sin(ang), np.cos(ang)])
                else:
                    q = rng.uniform(self.lo, self.hi)
                if np.any(q < self.lo) or np.any(q > self.hi):
                    continue
                if not pos:
                    break
                d = np.hypot(*(np.asarray(pos) - q).T)
                if np.all(d >= frac * (np.asarray(rad) + r)):
                    break
            else:
                continue
            pos.append(q)
            rad.append(r)
        n = len(pos)
        bright = rng.lognormal(0.0, float(ct["brightness_cv"]), n)
        self._append_targets(self._target_arrays(np.asarray(pos).reshape(n, 2), rad, bright,
                                                 np.full(n, -1), 0))
        sp = float(ct["speed_um_per_min"]) / np.sqrt(2)
        self.tg["vel"] = rng.normal(0, sp, (n, 2))
        # effectors
        n_e = int(rng.poisson(float(ce["density_per_mm2"]) * area_mm2))
        e_lo, e_hi = ce["diameter_um"]
        epos, erad = [], []
        for _ in range(n_e):
            r = rng.uniform(e_lo, e_hi) / 2
            for _try in range(60):
                q = rng.uniform(self.lo, self.hi)
                if n:
                    d = np.hypot(*(self.tg["pos"] - q).T) - self.tg["r0"] * 1.5 - r
                    if d.min() < float(ce["clearance_um"]):
                        continue
                if epos and np.min(np.hypot(*(np.asarray(epos) - q).T)
                                   - np.asarray(erad) - r) < 0:
                    continue
                break
            else:
                continue
            epos.append(q)
            erad.append(r)
        m = len(epos)
        a, phi = _random_shape(rng, m, float(ce["irregularity"]))
        speed = float(ce["speed_um_per_min"]) * rng.lognormal(
            -0.5 * float(ce["speed_cv"]) ** 2, float(ce["speed_cv"]), m)
        self.ef = {
            "pos": np.asarray(epos, float).reshape(m, 2),
            "theta": rng.uniform(-np.pi, np.pi, m), "speed": speed,
            "r": np.asarray(erad, float), "a": a, "phi": phi,
            "bright": rng.lognormal(0.0, float(ce["brightness_cv"]), m),
            "bound": np.full(m, -1), "bang": np.zeros(m), "refr": np.full(m, -np.inf),
            "trog": np.zeros(m), "trog_b": np.ones(m), "enc": np.full(m, -1),
            "track": np.zeros(m, int), "seg": np.full(m, -1),
        }
        log.debug("initial cells: %d targets, %d effectors in the domain", n, m)

    # ---------------------------------------------------------------- geometry
    def _target_radius(self, idx, theta, envelope=False):
        """Boundary radius (um) of targets ``idx`` in directions ``theta`` (broadcast).

        With ``envelope`` the radius covers blebs of dying/dead cells too.
        """
        tg = self.tg
        r = tg["r0"][idx] * tg["rscale"][idx]
        rad = r * (1.0 + tg["shape"][idx] * _harm(tg["a"][idx], tg["phi"][idx], theta))
        if envelope:
            blebby = tg["bleb_size"][idx].max(axis=-1) * 1.1 + 0.95
            rad = np.maximum(rad, np.where(blebby > 1.0, r * blebby, 0.0))
        return rad

    def _in_field(self, pos, inset):
        return ((pos[..., 0] >= inset) & (pos[..., 0] <= self.h_um - inset)
                & (pos[..., 1] >= inset) & (pos[..., 1] <= self.w_um - inset))

    def _bindable(self):
        tg = self.tg
        return ((tg["state"] == ALIVE) & ~tg["contacted"] & (tg["bound"] < 0)
                & (tg["host_of"] < 0) & (tg["inner_of"] < 0) & self._in_field(tg["pos"], 2.0))

    def _physical(self):
        """Targets that take space (not gone, not inside a host)."""
        return (self.tg["state"] != GONE) & (self.tg["inner_of"] < 0)

    def _surface(self, e_idx, t_idx, envelope=False):
        """Centre distance, direction angle (target->effector) and surface gap, (E, N).

        With ``envelope`` the gap is between the outer envelopes (effector's largest
        radius, blebs included), as used for clearance.
        """
        d = self.ef["pos"][e_idx][:, None, :] - self.tg["pos"][t_idx][None, :, :]
        dist = np.hypot(d[..., 0], d[..., 1])
        theta = np.arctan2(d[..., 0], d[..., 1])
        r_e = self.ef["r"][e_idx]
        if not envelope:
            return dist, theta, dist - self._target_radius(t_idx, theta) - r_e[:, None]
        r_e = (r_e * (1.0 + np.abs(self.ef["a"][e_idx]).sum(axis=1)))[:, None]
        tg = self.tg
        r_max = tg["r0"][t_idx] * tg["rscale"][t_idx] * np.maximum(
            1.0 + tg["shape"][t_idx] * np.abs(tg["a"][t_idx]).sum(axis=1),
            tg["bleb_size"][t_idx].max(axis=1) * 1.1 + 0.95)
        gap = dist - r_max[None, :] - r_e          # lower bound of the true gap
        near = np.nonzero(gap < 5.0)
        if near[0].size:
            # the nearest boundary point of an irregular target need not lie on the line
            # between the centres: take the largest radius over the effector's angular width
            d_n, th_n, re_n = dist[near], theta[near], r_e[near[0], 0]
            half = np.arcsin(np.clip((re_n + 2.0) / np.maximum(d_n, 1e-6), 0.0, 1.0))
            t_n = t_idx[near[1]]
            rad = np.max([self._target_radius(t_n, th_n + k * half, True)
                          for k in (-1.0, -0.5, 0.0, 0.5, 1.0)], axis=0)
            gap[near] = d_n - rad - re_n
        return dist, theta, gap

    # ------------------------------------------------------------------ motion
    def _substep(self, t_now: float, f_next: int):
        rng, tg, ef, h = self.rng, self.tg, self.ef, self.hstep
        ct, ce = self.c["targets"], self.c["effectors"]
        n = len(tg["r0"])
        # --- targets: Ornstein-Uhlenbeck velocity, mobility by state
        st = tg["state"]
        tau = float(ct["persistence_min"])
        e = math.exp(-h / tau)
        sd = float(ct["speed_um_per_min"]) / math.sqrt(2)
        noise = rng.normal(0.0, 1.0, (n, 2))
        tg["vel"] = tg["vel"] * e + sd * math.sqrt(1 - e * e) * noise
        mob = np.select([st == ALIVE, st == DIVIDING, st == DYING], [1.0, 0.2, 0.1], 0.0)
        mob = np.where(tg["bound"] >= 0, 0.3 * mob, mob)
        mob = np.where(tg["host_of"] >= 0, 0.5 * mob, mob)
        kick = np.where((t_now < tg["kick_until"])[:, None], tg["kick"], 0.0)
        phys = self._physical()
        tg["pos"] = np.where(phys[:, None], tg["pos"] + (tg["vel"] * mob[:, None] + kick) * h,
                             tg["pos"])
        # soft repulsion between physical targets (touching allowed)
        idx = np.flatnonzero(phys)
        if idx.size > 1:
            pos = tg["pos"][idx]
            rad = tg["r0"][idx] * tg["rscale"][idx]
            d = pos[:, None, :] - pos[None, :, :]
            dist = np.hypot(d[..., 0], d[..., 1])
            need = float(ct["min_distance_fraction"]) * (rad[:, None] + rad[None, :])
            over = np.where((dist < need) & ~np.eye(idx.size, dtype=bool), need - dist, 0.0)
            u = d / np.maximum(dist, 1e-6)[..., None]
            push = 0.25 * np.sum(over[..., None] * u, axis=1)
            tg["pos"][idx] = pos + push
        # reflect at the domain edge
        for k in range(2):
            low, high = tg["pos"][:, k] < self.lo[k], tg["pos"][:, k] > self.hi[k]
            tg["pos"][low, k] = 2 * self.lo[k] - tg["pos"][low, k]
            tg["pos"][high, k] = 2 * self.hi[k] - tg["pos"][high, k]
            tg["vel"][low | high, k] *= -1
        # inner cells ride with their host
        inner = np.flatnonzero((tg["inner_of"] >= 0) & (st != GONE))
        for i in inner:
            hst = tg["inner_of"][i]
            prog = _smooth((t_now / self.dt - tg["cic_start"][i]) / self.n_engulf)
            off = (1 - prog) * tg["cic_off0"][i] + prog * tg["cic_off1"][i]
            tg["pos"][i] = tg["pos"][hst] + off
        # --- effectors
        m = len(ef["r"])
        if m == 0:
            return
        ef["theta"] = ef["theta"] + math.sqrt(2 * h / float(ce["persistence_min"])) * \
            rng.normal(0.0, 1.0, m)
        free = ef["bound"] < 0
        active = free & (t_now >= ef["refr"])
        bind_t = np.flatnonzero(self._bindable())
        e_act = np.flatnonzero(active)
        if bind_t.size and e_act.size:
            _, _, gap = self._surface(e_act, bind_t)
            j = np.argmin(gap, axis=1)
            near = gap[np.arange(e_act.size), j] < float(ce["attraction_range_um"])
            w = float(ce["attraction_weight"])
            for k_e, e_i in enumerate(e_act):
                if not near[k_e]:
                    continue
                dv = tg["pos"][bind_t[j[k_e]]] - ef["pos"][e_i]
                dv = dv / max(np.hypot(*dv), 1e-6)
                uy = (1 - w) * math.sin(ef["theta"][e_i]) + w * dv[0]
                ux = (1 - w) * math.cos(ef["theta"][e_i]) + w * dv[1]
                ef["theta"][e_i] = math.atan2(uy, ux)
        step = (ef["speed"] * h)[:, None] * np.stack([np.sin(ef["theta"]), np.cos(ef["theta"])],
                                                     axis=1)
        ef["pos"] = np.where(free[:, None], ef["pos"] + step, ef["pos"])
        for k in range(2):
            low, high = ef["pos"][:, k] < self.lo[k], ef["pos"][:, k] > self.hi[k]
            ef["pos"][low, k] = 2 * self.lo[k] - ef["pos"][low, k]
            ef["pos"][high, k] = 2 * self.hi[k] - ef["pos"][high, k]
            flip = low | high
            ef["theta"][flip] = -ef["theta"][flip] if k == 0 else np.pi - ef["theta"][flip]
        self._place_bound()
        # effector-effector repulsion (free ones move)
        fi = np.flatnonzero(free)
        if m > 1 and fi.size:
            d = ef["pos"][fi][:, None, :] - ef["pos"][None, :, :]
            dist = np.hypot(d[..., 0], d[..., 1])
            need = 0.85 * (ef["r"][fi][:, None] + ef["r"][None, :])
            over = np.where((dist < need) & (dist > 0), need - dist, 0.0)
            u = d / np.maximum(dist, 1e-6)[..., None]
            ef["pos"][fi] += 0.5 * np.sum(over[..., None] * u, axis=1)
        # binding: a free, non-refractory effector touching a bindable target
        if f_next < self.T and e_act.size:
            zone = np.array([self._in_field(ef["pos"][e_i], ef["r"][e_i] + 1.0) for e_i in e_act])
            e_zone = e_act[zone]
            cand = np.flatnonzero(self._bindable())
            if e_zone.size and cand.size:
                _, theta, gap = self._surface(e_zone, cand)
                gap = gap.copy()
                for row, e_i in enumerate(e_zone):
                    k = int(np.argmin(gap[row]))
                    if gap[row, k] <= 0.3:
                        self._bind(e_i, int(cand[k]), float(theta[row, k]), t_now, f_next)
                        gap[:, k] = np.inf
        self._settle()

    def _place_bound(self):
        ef = self.ef
        b = np.flatnonzero(ef["bound"] >= 0)
        if b.size == 0:
            return
        t_idx = ef["bound"][b]
        ang = ef["bang"][b]
        rad = self._target_radius(t_idx, ang) + 0.8 * ef["r"][b]
        ef["pos"][b] = self.tg["pos"][t_idx] + rad[:, None] * np.stack(
            [np.sin(ang), np.cos(ang)], axis=1)

    def _settle(self, iterations: int = 25):
        """Enforce the geometry rules before a frame is drawn or a sub-step ends.

        Bound effectors sit on their partner's boundary; other targets are pushed
        away from bound effectors, and free effectors away from all targets, to
        keep ``effectors.clearance_um``: the only effector-target contacts are
        encounters.
        """
        ef, tg = self.ef, self.tg
        clear = float(self.c["effectors"]["clearance_um"])
        self._place_bound()
        bi = np.flatnonzero(ef["bound"] >= 0)
        if bi.size:
            self._push_targets(bi, clear)
            self._place_bound()
        fi = np.flatnonzero(ef["bound"] < 0)
        ti = np.flatnonzero(tg["state"] != GONE)
        for _ in range(iterations):
            if fi.size == 0 or ti.size == 0:
                return
            dist, theta, gap = self._surface(fi, ti, envelope=True)
            viol = np.maximum(clear - gap, 0.0)
            rows = np.flatnonzero((viol > 0).any(axis=1))
            if rows.size == 0:
                return
            fi, viol, theta = fi[rows], viol[rows], theta[rows]
            # push out of every violated target at once (squeezed between two
            # cells the effector slides along the gap instead of oscillating)
            w = np.where(viol > 0, viol + 0.05, 0.0)
            push = np.stack([np.sum(w * np.sin(theta), axis=1),
                             np.sum(w * np.cos(theta), axis=1)], axis=1)
            ef["pos"][fi] += push
        else:
            # an effector trapped in a pocket between targets: the targets give way
            self._push_targets(fi, clear)

    def _push_targets(self, e_idx, clear):
        """Move targets (with their inner cell / host) off effectors ``e_idx``.

        A bound effector's own partner is left alone.
        """
        ef, tg = self.ef, self.tg
        ti = np.flatnonzero(tg["state"] != GONE)
        if ti.size == 0:
            return
        _, theta, gap = self._surface(e_idx, ti, envelope=True)
        partner = ef["bound"][e_idx][:, None] == ti[None, :]
        viol = np.where(partner, 0.0, clear - gap)
        for col in np.flatnonzero((viol > 0).any(axis=0)):
            row = int(np.argmax(viol[:, col]))
            th = theta[row, col]
            move = (viol[row, col] + 0.05) * np.array([math.sin(th), math.cos(th)])
            t_i = ti[col]
            hst = tg["inner_of"][t_i]
            for j in (t_i, hst, tg["host_of"][t_i]) if hst < 0 else (t_i, hst):
                if j >= 0:
                    tg["pos"][j] -= move

    def _bind(self, e_i, t_i, theta, t_now, f_next):
        rng, cc, ctr = self.rng, self.c["contact"], self.c["trogocytosis"]
        outcome = OUTCOMES[int(rng.choice(len(OUTCOMES), p=self.probs))]
        dur = rng.lognormal(math.log(float(cc["duration_median_min"])),
                            float(cc["duration_sigma_log"]))
        dur = min(max(dur, float(cc["duration_min_min"])), float(cc["duration_max_min"]))
        n_c = max(1, math.ceil(float(cc["duration_min_min"]) / self.dt), round(dur / self.dt))
        trog = outcome == "trogocytosis_only" or (
            outcome != "cell_in_cell" and rng.random() < float(ctr["with_other_outcome_prob"]))
        loss = rng.uniform(*ctr["area_loss_fraction"]) if trog else 0.0
        signal = rng.uniform(*ctr["effector_signal"]) if trog else 0.0
        k = len(self.enc)
        self.enc.append({"target": t_i, "effector": e_i, "bind_min": t_now,
                         "start": f_next, "planned_end": f_next + n_c - 1, "outcome": outcome,
                         "trog": trog, "loss": loss, "signal": signal, "host": -1,
                         "r_bind": self.tg["r0"][t_i], "released": -1})
        self.tg["bound"][t_i] = e_i
        self.tg["contacted"][t_i] = True
        self.tg["enc"][t_i] = k
        self.ef["bound"][e_i] = t_i
        self.ef["bang"][e_i] = theta
        self.ef["enc"][e_i] = k
        self._place_bound()

    def _release(self, k, f):
        en = self.enc[k]
        e_i, t_i = en["effector"], en["target"]
        if self.ef["bound"][e_i] != t_i:
            return
        self.ef["bound"][e_i] = -1
        self.ef["enc"][e_i] = -1
        self.ef["refr"][e_i] = f * self.dt + float(self.c["effectors"]["refractory_min"])
        self.ef["theta"][e_i] = self.ef["bang"][e_i]
        self.tg["bound"][t_i] = -1
        en["released"] = f

    # ------------------------------------------------------------ frame events
    def _start_death(self, i, f, cause):
        tg, rng, cd = self.tg, self.rng, self.c["death"]
        tg["state"][i] = DYING
        tg["onset"][i] = f
        tg["death_frame"][i] = f + self.n_dying
        tg["cause"][i] = CAUSES.index(cause)
        tg["shape0"][i] = tg["shape"][i]
        tg["rscale0"][i] = tg["rscale"][i]
        if cause != "inner":
            nb = int(rng.integers(cd["n_blebs"][0], cd["n_blebs"][1] + 1))
            size = np.zeros(N_BLEBS_MAX)
            size[:min(nb, N_BLEBS_MAX)] = rng.uniform(0.15, 0.28, min(nb, N_BLEBS_MAX))
            tg["bleb_size"][i] = size
            tg["fragment"][i] = rng.random() < float(cd["fragment_prob"])

    def _choose_host(self, i):
        tg = self.tg
        ok = ((tg["state"] == ALIVE) & (tg["bound"] < 0) & (tg["host_of"] < 0)
              & (tg["inner_of"] < 0))
        ok[i] = False
        ok[self.pending_cic] = False
        cand = np.flatnonzero(ok)
        if cand.size == 0:
            return -1
        d = np.hypot(*(tg["pos"][cand] - tg["pos"][i]).T)
        near = d <= float(self.c["cell_in_cell"]["host_search_um"])
        infield = self._in_field(tg["pos"][cand], 0.0)
        for mask in (near & infield, near):
            if mask.any():
                return int(cand[mask][np.argmin(d[mask])])
        return -1

    def _start_cic(self, i, hst, f):
        tg, rng, cc = self.tg, self.rng, self.c["cell_in_cell"]
        tg["inner_of"][i], tg["host_of"][hst] = hst, i
        tg["state"][i] = INTERNALIZING
        tg["cic_start"][i] = f
        r_in = tg["r0"][i] * tg["rscale"][i]
        r_in1 = 0.85 * r_in
        margin = float(cc["margin_um"])
        a_h = 0.35 * np.abs(tg["a"][hst]).sum()
        r_h = tg["r0"][hst] * tg["rscale"][hst]
        r_h1 = max(r_h * 1.05, math.sqrt(r_h ** 2 + 0.5 * r_in1 ** 2),
                   (r_in1 + margin + 1.0) / (1.0 - a_h))
        room = r_h1 * (1.0 - a_h) - r_in1 - margin
        off0 = tg["pos"][i] - tg["pos"][hst]
        u = off0 / max(np.hypot(*off0), 1e-6)
        tg["cic_off0"][i] = off0
        tg["cic_off1"][i] = u * max(room, 0.0) * rng.uniform(0.0, 0.6)
        tg["cic_rs1"][i] = r_in1 / tg["r0"][i]
        tg["rscale0"][i] = tg["rscale"][i]
        tg["shape0"][i] = tg["shape"][i]
        tg["host_r0"][hst], tg["host_r1"][hst] = tg["r0"][hst], r_h1 / tg["rscale"][hst]
        tg["shape0"][hst] = tg["shape"][hst]
        if rng.random() < float(cc["inner_death_prob"]):
            delay = rng.exponential(float(cc["inner_death_delay_min"]))
            tg["inner_death_at"][i] = f + self.n_engulf + max(1, round(delay / self.dt))

    def _frame_events(self, f):
        tg, rng, dt = self.tg, self.rng, self.dt
        # 1. divisions started last frame complete: mother leaves, two daughters
        for i in np.flatnonzero((tg["state"] == DIVIDING) & (tg["div_frame"] == f - 1)):
            tg["state"][i] = GONE
            tg["end_reason"][i] = END_REASONS.index("divided")
            ang = rng.uniform(0, 2 * np.pi)
            r_d = tg["r0"][i] * 0.8
            u = np.array([math.sin(ang), math.cos(ang)])
            pos = np.stack([tg["pos"][i] + 0.55 * r_d * u, tg["pos"][i] - 0.55 * r_d * u])
            self._append_targets(self._target_arrays(pos, [r_d, r_d], [tg["bright"][i]] * 2,
                                                     [i, i], f))
            tg = self.tg
        # 2. encounters ending now: the outcome takes effect
        for en in self.enc:
            if en["planned_end"] != f or en["released"] >= 0:
                continue
            i = en["target"]
            if en["outcome"] == "kill":
                self._start_death(i, f, "kill")
            elif en["outcome"] == "cell_in_cell":
                self.pending_cic.append(i)
            if en["outcome"] == "evasion":
                d = tg["pos"][i] - self.ef["pos"][en["effector"]]
                d = d / max(np.hypot(*d), 1e-6)
                tg["kick"][i] = d * float(self.c["evasion"]["speed_um_per_min"])
                tg["kick_until"][i] = f * dt + float(self.c["evasion"]["duration_min"])
        # cell-in-cell decided: engulfment starts as soon as a free neighbour can host
        waiting = []
        for i in self.pending_cic:
            if tg["state"][i] != ALIVE:
                continue
            hst = self._choose_host(i)
            if hst < 0:
                waiting.append(i)
                self.qc["cell_in_cell_waits"] += 1
            else:
                self._start_cic(i, hst, f)
        self.pending_cic = waiting
        # 3. internalisation completes; inner deaths due
        for i in np.flatnonzero(tg["state"] == INTERNALIZING):
            if f - tg["cic_start"][i] >= self.n_engulf:
                tg["state"][i] = INTERNALIZED
                tg["internal_frame"][i] = f
        for i in np.flatnonzero((tg["state"] == INTERNALIZED) & (tg["inner_death_at"] == f)):
            self._start_death(i, f, "inner")
        # 4. dying -> dead -> faded
        cd = self.c["death"]
        for i in np.flatnonzero((tg["state"] == DYING) | (tg["state"] == DEAD)):
            if f >= tg["death_frame"][i]:
                tg["state"][i] = DEAD
                tg["fade"][i] = 0.5 ** ((f - tg["death_frame"][i]) * dt
                                        / float(cd["dead_half_life_min"]))
                if tg["fragment"][i] and tg["fade"][i] < 0.6:
                    tg["fragmented"][i] = True
                if tg["fade"][i] < float(cd["visible_min_fraction"]):
                    tg["state"][i] = GONE
                    tg["end_reason"][i] = END_REASONS.index("faded")
        # 5. spontaneous events (hazards per frame)
        free = ((tg["state"] == ALIVE) & (tg["bound"] < 0) & (tg["host_of"] < 0)
                & (tg["inner_of"] < 0))
        free[self.pending_cic] = False
        n = len(free)
        u_div, u_death, u_cic = rng.random(n), rng.random(n), rng.random(n)
        p_div = 1 - math.exp(-float(self.c["targets"]["division_rate_per_h"]) * dt / 60)
        p_death = 1 - math.exp(-self.p.spontaneous_death_per_h * dt / 60)
        p_cic = 1 - math.exp(-float(self.c["cell_in_cell"]["spontaneous_per_h"]) * dt / 60)
        if f < self.T - 1:
            for i in np.flatnonzero(free & (u_div < p_div)):
                tg["state"][i] = DIVIDING
                tg["div_frame"][i] = f
        for i in np.flatnonzero(free & ~tg["contacted"] & (u_death < p_death)):
            if tg["state"][i] == ALIVE:
                self._start_death(i, f, "spontaneous")
        for i in np.flatnonzero(free & ~tg["contacted"] & (u_cic < p_cic)):
            if tg["state"][i] == ALIVE and tg["host_of"][i] < 0 and tg["inner_of"][i] < 0:
                hst = self._choose_host(i)
                if hst >= 0:
                    self._start_cic(i, hst, f)

    def _update_shapes(self, f):
        tg, ef, dt = self.tg, self.ef, self.dt
        n = len(tg["r0"])
        alive = tg["state"] == ALIVE
        drift = float(self.c["targets"]["shape_drift_rad_per_min"]) * math.sqrt(dt)
        tg["phi"] = tg["phi"] + np.where(alive[:, None], drift, 0.0) * self.rng.normal(
            0.0, 1.0, (n, HARMONICS.size))
        shrink = float(self.c["death"]["shrink_to"])
        for i in np.flatnonzero((tg["state"] == DYING) | (tg["state"] == DEAD)):
            prog = min(1.0, (f - tg["onset"][i] + 1) / self.n_dying)
            tg["shape"][i] = tg["shape0"][i] * (1 - prog)
            tg["rscale"][i] = tg["rscale0"][i] * (1 - (1 - shrink) * prog)
            tg["reporter"][i] = float(_smooth(prog))
            tg["condense"][i] = 0.3 * prog
        div = tg["state"] == DIVIDING
        tg["shape"][div] = 0.15
        for i in np.flatnonzero(tg["state"] == INTERNALIZING):
            prog = float(_smooth((f - tg["cic_start"][i]) / self.n_engulf))
            hst = tg["inner_of"][i]
            tg["rscale"][i] = (1 - prog) * tg["rscale0"][i] + prog * tg["cic_rs1"][i]
            tg["shape"][i] = (1 - prog) * tg["shape0"][i]
            tg["r0"][hst] = (1 - prog) * tg["host_r0"][hst] + prog * tg["host_r1"][hst]
            tg["shape"][hst] = (1 - prog) * tg["shape0"][hst] + prog * 0.35
        # trogocytosis during contacts
        hl = float(self.c["trogocytosis"]["signal_half_life_min"])
        ef["trog"] = ef["trog"] * 0.5 ** (dt / hl)
        for en in self.enc:
            if not en["trog"] or en["released"] >= 0 or f < en["start"]:
                continue
            prog = min(1.0, (f - en["start"] + 1) / (en["planned_end"] - en["start"] + 1))
            i, e_i = en["target"], en["effector"]
            if tg["state"][i] in (ALIVE, DYING):
                tg["r0"][i] = en["r_bind"] * math.sqrt(1 - en["loss"] * prog)
            ef["trog"][e_i], ef["trog_b"][e_i] = carry_label(
                ef["trog"][e_i], ef["trog_b"][e_i],
                en["signal"] * prog - en.get("signal_done", 0.0), tg["bright"][i])
            en["loss_done"] = en["loss"] * prog
            en["signal_done"] = en["signal"] * prog

    # --------------------------------------------------------------- rendering
    def _render(self, f):
        H, W, ps = self.H, self.W, self.ps
        tg, ef = self.tg, self.ef
        lab_t, lab_e = self.lab["target"][f], self.lab["effector"][f]
        v_t, v_d, v_e = self.val["target"][f], self.val["death"][f], self.val["effector"][f]
        key = np.full((H, W), np.inf, np.float32)
        for i in np.flatnonzero(tg["state"] != GONE):
            inner = tg["inner_of"][i] >= 0
            hosting = tg["host_of"][i] >= 0 and tg["state"][tg["host_of"][i]] != GONE
            tier = 0.0 if inner else (1.0 if hosting else 2.0)
            r = tg["r0"][i] * tg["rscale"][i] / ps
            shape = tg["shape"][i]
            a = tg["a"][i] * shape
            reach = r * (1 + np.abs(a).sum()) * (1.3 if tg["bleb_size"][i].any() else 1.0) + 2
            cy, cx = tg["pos"][i] / ps
            y0, y1 = max(0, int(cy - reach)), min(H, int(cy + reach) + 2)
            x0, x1 = max(0, int(cx - reach)), min(W, int(cx + reach) + 2)
            if y0 >= y1 or x0 >= x1:
                continue
            dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
            dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
            if tg["fragmented"][i]:
                rho = np.full((y1 - y0, x1 - x0), np.inf, np.float32)
                for (oy, ox), fr in zip(tg["frag_off"][i], tg["frag_r"][i], strict=True):
                    rho = np.minimum(rho, np.hypot(dy - oy * r, dx - ox * r) / (fr * r))
            else:
                dist = np.hypot(dy, dx)
                rr = r * (1 + _harm_box(a, tg["phi"][i], dy, dx, dist))
                rho = dist / np.maximum(rr, 0.5)
                if tg["state"][i] in (DYING, DEAD) and tg["cause"][i] != CAUSES.index("inner"):
                    prog = min(1.0, (f - tg["onset"][i] + 1) / self.n_dying)
                    grow = min(1.0, 2.0 * prog)
                    for ang, size in zip(tg["bleb_ang"][i], tg["bleb_size"][i], strict=True):
                        if size <= 0:
                            continue
                        rb = size * r * grow
                        if rb < 0.8:
                            continue
                        by, bx = 0.95 * r * math.sin(ang), 0.95 * r * math.cos(ang)
                        rho = np.minimum(rho, np.hypot(dy - by, dx - bx) / rb)
            k = tier + np.minimum(rho, 0.999)
            kb = key[y0:y1, x0:x1]
            sel = (rho < 1) & (k < kb)
            if not sel.any():
                continue
            kb[sel] = k[sel]
            lab_t[y0:y1, x0:x1][sel] = i + 1
            ny, nx = tg["nuc"][i] * r
            nucleus = np.hypot(dy - ny, dx - nx) < 0.42 * r
            val = tg["bright"][i] * tg["fade"][i] * (1 + tg["condense"][i]) * (
                1 - 0.25 * np.minimum(rho, 1) ** 2) * np.where(nucleus, 0.65, 1.0)
            if inner:
                val = val * np.where(rho > 0.8, 0.3, 1.15)
            v_t[y0:y1, x0:x1][sel] = val[sel]
            v_d[y0:y1, x0:x1][sel] = (tg["reporter"][i] * (1 - 0.4 * np.minimum(rho, 1) ** 2)
                                      )[sel]
        # effectors
        key_e = np.full((H, W), np.inf, np.float32)
        v_trog = np.zeros((H, W), np.float32)
        for e_i in range(len(ef["r"])):
            r = ef["r"][e_i] / ps
            reach = r * 1.5 + 2
            cy, cx = ef["pos"][e_i] / ps
            y0, y1 = max(0, int(cy - reach)), min(H, int(cy + reach) + 2)
            x0, x1 = max(0, int(cx - reach)), min(W, int(cx + reach) + 2)
            if y0 >= y1 or x0 >= x1:
                continue
            dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
            dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
            dist = np.hypot(dy, dx)
            rho = dist / (r * (1 + _harm_box(ef["a"][e_i], ef["phi"][e_i], dy, dx, dist)))
            kb = key_e[y0:y1, x0:x1]
            sel = (rho < 1) & (rho < kb)
            if not sel.any():
                continue
            kb[sel] = rho[sel]
            lab_e[y0:y1, x0:x1][sel] = e_i + 1
            prof = 1 - 0.2 * rho ** 2
            v_e[y0:y1, x0:x1][sel] = (ef["bright"][e_i] * prof)[sel]
            v_trog[y0:y1, x0:x1][sel] = (ef["trog"][e_i] * ef["trog_b"][e_i] * prof)[sel]
        v_t += v_trog

    def _record(self, f):
        """Visibility, track ids and table rows of frame ``f``; relabel with track ids."""
        tg, ef, t_min = self.tg, self.ef, f * self.dt
        yy, xx = np.mgrid[0:self.H, 0:self.W]
        stats = {}
        for pop, n in (("target", len(tg["r0"])), ("effector", len(ef["r"]))):
            flat = self.lab[pop][f].ravel().astype(np.int64)
            stats[pop] = (np.bincount(flat, minlength=n + 1),
                          np.bincount(flat, weights=yy.ravel(), minlength=n + 1),
                          np.bincount(flat, weights=xx.ravel(), minlength=n + 1))
        # track ids: targets keep one id per agent, effectors one per visible stretch
        area = stats["target"][0]
        for i in range(len(tg["r0"])):
            vis = area[i + 1] > 0
            if vis and tg["track"][i] == 0 and tg["state"][i] != GONE:
                self.n_track_t += 1
                tg["track"][i] = self.n_track_t
                tg["first_vis"][i] = f
            if vis:
                tg["last_vis"][i] = f
            elif tg["track"][i] > 0 and tg["state"][i] != GONE:
                self._lose_target(i, f)
        area = stats["effector"][0]
        for e_i in range(len(ef["r"])):
            vis = area[e_i + 1] > 0
            if vis and ef["track"][e_i] == 0:
                self.n_track_e += 1
                ef["track"][e_i] = self.n_track_e
                self.eff_segments.append({"track": self.n_track_e, "agent": e_i,
                                          "first": f, "last": f})
                ef["seg"][e_i] = len(self.eff_segments) - 1
            if vis:
                self.eff_segments[ef["seg"][e_i]]["last"] = f
            else:
                ef["track"][e_i] = 0
        # rows
        area, sy, sx = stats["target"]
        for i in np.flatnonzero(area[1:] > 0):
            hst, e_i = tg["inner_of"][i], tg["bound"][i]
            self.rows_t.append((
                int(tg["track"][i]), f, t_min, sy[i + 1] / area[i + 1],
                sx[i + 1] / area[i + 1], int(area[i + 1]),
                self._parent_track(i), STATE_NAMES[tg["state"][i]],
                int(ef["track"][e_i]) if e_i >= 0 else 0,
                int(tg["track"][hst]) if hst >= 0 else 0,
                float(tg["reporter"][i]), 0.0, int(i)))
        area, sy, sx = stats["effector"]
        for e_i in np.flatnonzero(area[1:] > 0):
            t_i = ef["bound"][e_i]
            self.rows_e.append((
                int(ef["track"][e_i]), f, t_min, sy[e_i + 1] / area[e_i + 1],
                sx[e_i + 1] / area[e_i + 1], int(area[e_i + 1]), 0, "alive",
                int(tg["track"][t_i]) if t_i >= 0 else 0, 0, 0.0, float(ef["trog"][e_i]),
                int(e_i)))
        for pop, track in (("target", tg["track"]), ("effector", ef["track"])):
            lut = np.zeros(len(track) + 1, np.uint32)
            lut[1:] = track
            if pop == "target":
                lut[1:][stats["target"][0][1:] == 0] = 0
            self.lab[pop][f] = lut[self.lab[pop][f]]

    def _parent_track(self, i) -> int:
        """Parent's track id if ``i`` was born visibly in the field (division seen), else 0."""
        par = self.tg["parent"][i]
        if par < 0 or self.tg["first_vis"][i] != self.tg["born"][i]:
            return 0
        return int(self.tg["track"][par])

    def _lose_target(self, i, f):
        """Target ``i`` is no longer visible at frame ``f``: its track has ended."""
        tg = self.tg
        tg["state"][i] = GONE
        outside = not self._in_field(tg["pos"][i], 0.0)
        tg["end_reason"][i] = END_REASONS.index("left_field" if outside else "hidden")
        k = tg["enc"][i]
        if k >= 0 and self.enc[k]["released"] < 0:
            self._release(k, f)
        inner = tg["host_of"][i]
        if inner >= 0 and tg["state"][inner] != GONE:
            tg["state"][inner] = GONE
            tg["end_reason"][inner] = END_REASONS.index("left_field")

    # --------------------------------------------------------------------- run
    def run(self):
        for f in range(self.T):
            self._frame_events(f)
            self._update_shapes(f)
            self._settle()
            self._render(f)
            self._record(f)
            for k, en in enumerate(self.enc):
                if en["planned_end"] == f and en["released"] < 0:
                    self._release(k, f)
            if f < self.T - 1:
                for s in range(self.n_sub):
                    self._substep(f * self.dt + (s + 1) * self.hstep, f + 1)
        return self


def run_model(p: SimulationParams, rng: np.random.Generator) -> _Site:
    """Simulate one site's agents, labels and intensity maps.

    Parameters
    ----------
    p : SimulationParams
        The site's parameters.
    rng : numpy.random.Generator
        Source of all randomness (consumed).

    Returns
    -------
    _Site
        The finished simulation; :mod:`livescreen.simulate.truth` turns it into tables.
    """
    return _Site(p, rng).run()
