"""Geography every part shares: great-circle distance."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088   # mean Earth radius (IUGG)
KM_PER_DEG = 111.195          # great-circle km per degree of latitude at that radius


def haversine_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    """Great-circle distance in km between (lat1, lng1) and (lat2, lng2), degrees, broadcasting."""
    lat1, lng1, lat2, lng2 = (np.radians(np.asarray(v, np.float64)) for v in (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
