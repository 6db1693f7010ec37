"""From geocell logits to what a player sees: countries, regions, a point.

Shared by training's evaluation and the companion, so the numbers in the model card are the
numbers the player gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.bundle import BundleMeta

EARTH_RADIUS_KM = 6371.0088


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool_log_probs(log_probs: np.ndarray) -> np.ndarray:
    """Combine several views (tiles, frames) of one place: mean log-probability, renormalized.

    A geometric mean: a cell must be plausible in every view, which is how a player reasons when
    panning (the bollard rules out half the candidates that the road markings allowed).
    """
    return log_softmax(np.asarray(log_probs, np.float64).reshape(-1, log_probs.shape[-1]).mean(axis=0))


def haversine_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    lat1, lng1, lat2, lng2 = (np.radians(np.asarray(v, np.float64)) for v in (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class CellIndex:
    """Dense lookup tables built once from a bundle's cells."""

    country_codes: list[str]
    cell_country: np.ndarray      # [C] index into country_codes
    region_codes: list[str]
    cell_region: np.ndarray       # [C, R] weights (sparse in practice, dense is fine at this size)
    cell_lat: np.ndarray
    cell_lng: np.ndarray

    @classmethod
    def from_meta(cls, meta: BundleMeta) -> CellIndex:
        countries = [c.code for c in meta.countries]
        regions = [r.code for r in meta.regions]
        ci = {c: i for i, c in enumerate(countries)}
        ri = {r: i for i, r in enumerate(regions)}
        cell_region = np.zeros((len(meta.cells), len(regions)), np.float64)
        for cell in meta.cells:
            for cr in cell.regions:
                cell_region[cell.id, ri[cr.code]] = cr.weight
        return cls(
            country_codes=countries,
            cell_country=np.array([ci[c.country] for c in meta.cells]),
            region_codes=regions,
            cell_region=cell_region,
            cell_lat=np.array([c.lat for c in meta.cells]),
            cell_lng=np.array([c.lng for c in meta.cells]),
        )

    def country_probs(self, cell_probs: np.ndarray) -> np.ndarray:
        return np.bincount(self.cell_country, weights=cell_probs, minlength=len(self.country_codes))

    def region_probs(self, cell_probs: np.ndarray) -> np.ndarray:
        return cell_probs @ self.cell_region

    def point(self, cell_probs: np.ndarray, radius_km: float = 400.0) -> tuple[float, float]:
        """The probability-weighted centre of the cells near the most likely cell.

        Averaging all cells would land in the ocean between two candidate continents; averaging
        only the top cell's neighbourhood moves the guess toward the nearby mass and never far.
        """
        top = int(np.argmax(cell_probs))
        near = haversine_km(self.cell_lat[top], self.cell_lng[top], self.cell_lat, self.cell_lng) <= radius_km
        w = cell_probs * near
        lat, lng = np.radians(self.cell_lat), np.radians(self.cell_lng)
        xyz = np.stack([np.cos(lat) * np.cos(lng), np.cos(lat) * np.sin(lng), np.sin(lat)], axis=-1)
        v = (w[:, None] * xyz).sum(axis=0)
        v /= np.linalg.norm(v)
        return float(np.degrees(np.arcsin(v[2]))), float(np.degrees(np.arctan2(v[1], v[0])))
