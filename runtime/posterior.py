"""From geocell logits to what a player sees: calibrated countries, regions, a point.

Shared by training's evaluation and the companion, so the numbers in the model card are the
numbers the player gets. The order is fixed: tiles and frames are pooled on the model's raw
log-probabilities, then `calibrate` applies the temperature and the game's prior, then countries,
regions and the point are read off the calibrated cell posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.bundle import BundleMeta
from runtime.geo import haversine_km

GEOGUESSR_SCALE_KM = 1492.7   # a guess d km away scores round(5000·exp(−d/1492.7)) on the World map
POINT_COUNTRIES = 3           # the pin lies in one of the top countries the list shows


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool_log_probs(log_probs: np.ndarray) -> np.ndarray:
    """Combine several views (tiles, frames) of one place: mean log-probability, renormalized.

    A geometric mean: a cell must be plausible in every view, which is how a player reasons when
    panning (the bollard rules out half the candidates that the road markings allowed).
    """
    return log_softmax(np.asarray(log_probs, np.float64).reshape(-1, log_probs.shape[-1]).mean(axis=0))


def calibrate(log_probs: np.ndarray, temperature: float = 1.0, log_adjust: np.ndarray | None = None,
              cell_country: np.ndarray | None = None) -> np.ndarray:
    """Calibrated cell log-probabilities [..., C]: the game's prior, then a temperature on the country marginal.

    The prior is a logit adjustment, p ∝ p_model · π_game / π_train: it moves the posterior from our data's
    mix (48% US) to the game's (4.6%). The temperature (fitted on the world validation) then tempers
    p(country) ∝ p(country)^(1/T) and keeps p(cell | country): a cell-level temperature would move mass
    to countries with many cells and reorder the countries; this one changes how sure the answer is, not
    what it is. Without `cell_country` each cell is its own group (a plain temperature).
    """
    z = np.asarray(log_probs, np.float64)
    if log_adjust is not None:
        z = z + log_adjust
    z = log_softmax(z)
    if temperature == 1.0:
        return z
    if cell_country is None:
        return log_softmax(z / temperature)
    groups = np.asarray(cell_country)
    order = np.argsort(groups, kind="stable")
    first = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    present = groups[order][first]                                                      # [K] country ids
    slot = np.searchsorted(present, groups)                                              # cell → its slot
    onehot = np.zeros((len(groups), len(present)))
    onehot[np.arange(len(groups)), slot] = 1.0
    # log-sum-exp per country with each country's own maximum, so no country underflows to −inf
    peak = np.maximum.reduceat(z[..., order], first, axis=-1)                            # [..., K]
    country = np.log(np.exp(z - peak[..., slot]) @ onehot) + peak
    within = z - country[..., slot]
    return within + log_softmax(country / temperature)[..., slot]


def score_kernel(lat1, lng1, lat2, lng2) -> np.ndarray:
    """The GeoGuessr score of guessing (lat1, lng1) when the answer is (lat2, lng2), divided by 5000."""
    return np.exp(-haversine_km(lat1, lng1, lat2, lng2) / GEOGUESSR_SCALE_KM)


@dataclass(frozen=True)
class CellIndex:
    """Dense lookup tables built once from a bundle's cells."""

    country_codes: list[str]
    cell_country: np.ndarray      # [C] index into country_codes
    region_codes: list[str]
    cell_region: np.ndarray       # [C, R] weights (sparse in practice, dense is fine at this size)
    cell_lat: np.ndarray
    cell_lng: np.ndarray
    cand_lat: np.ndarray          # [M] candidate pins: the cells' training places (on land by construction)
    cand_lng: np.ndarray
    cand_cell: np.ndarray         # [M] the cell each candidate belongs to
    kernel: np.ndarray            # [M, C] expected score/5000 at candidate m if the answer is in cell c
    cell_country_onehot: np.ndarray  # [C, K]: summing cells into countries is one matrix product

    @classmethod
    def from_meta(cls, meta: BundleMeta) -> CellIndex:
        return cls.from_cells(meta.cells, [c.code for c in meta.countries], [r.code for r in meta.regions])

    @classmethod
    def from_cells(cls, cells: list, countries: list[str], regions: list[str]) -> CellIndex:
        ci = {c: i for i, c in enumerate(countries)}
        ri = {r: i for i, r in enumerate(regions)}
        cell_region = np.zeros((len(cells), len(regions)), np.float64)
        for cell in cells:
            for cr in cell.regions:
                cell_region[cell.id, ri[cr.code]] = cr.weight
        # a cell's places (its `points`, else its centre) stand for where in the cell the answer may be
        pts = [(c.id, la, ln) for c in cells for la, ln in (c.points or [(c.lat, c.lng)])]
        cand_cell = np.array([p[0] for p in pts], int)
        cand_lat, cand_lng = np.array([p[1] for p in pts]), np.array([p[2] for p in pts])
        k = score_kernel(cand_lat[:, None], cand_lng[:, None], cand_lat[None, :], cand_lng[None, :])
        per_cell = np.bincount(cand_cell, minlength=len(cells))
        kernel = (k @ np.eye(len(cells))[cand_cell]) / per_cell   # mean over each cell's places
        return cls(
            country_codes=countries,
            cell_country=np.array([ci[c.country] for c in cells]),
            region_codes=regions,
            cell_region=cell_region,
            cell_lat=np.array([c.lat for c in cells]),
            cell_lng=np.array([c.lng for c in cells]),
            cand_lat=cand_lat, cand_lng=cand_lng, cand_cell=cand_cell, kernel=kernel,
            cell_country_onehot=np.eye(len(countries))[[ci[c.country] for c in cells]],
        )

    def country_probs(self, cell_probs: np.ndarray) -> np.ndarray:
        """[..., C] cell probabilities → [..., K] country probabilities."""
        return np.asarray(cell_probs) @ self.cell_country_onehot

    def region_probs(self, cell_probs: np.ndarray) -> np.ndarray:
        return cell_probs @ self.cell_region

    def point(self, cell_probs: np.ndarray) -> tuple[float, float]:
        """The pin that maximizes the expected GeoGuessr score under the posterior.

        E[score(x)] = Σ_c p_c · mean over cell c's places of 5000·exp(−d(x, place)/1492.7), over
        candidate pins x = every cell's training places: real street-view places, so on land, never
        the ocean between two modes; the many places per cell are the local refinement. Candidates
        are limited to the top countries of the list, so the pin never contradicts it.
        """
        return self.points(np.asarray(cell_probs)[None])[0]

    def points(self, cell_probs: np.ndarray) -> list[tuple[float, float]]:
        """`point` for each row of cell_probs [N, C]."""
        cell_probs = np.asarray(cell_probs, np.float64)
        expected = cell_probs @ self.kernel.T                                  # [N, M]
        country = self.country_probs(cell_probs)                               # [N, K]
        k = min(POINT_COUNTRIES, country.shape[1])
        top = np.argpartition(-country, k - 1, axis=1)[:, :k]
        allowed = (self.cell_country[self.cand_cell][None, :, None] == top[:, None, :]).any(axis=2)
        best = np.where(allowed, expected, -np.inf).argmax(axis=1)
        return [(float(self.cand_lat[m]), float(self.cand_lng[m])) for m in best]
