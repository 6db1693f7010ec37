"""The local GeoGuessr-like site (see server.py and GEOSITE.md)."""

from .server import GeoSite, Place, load_places

__all__ = ["GeoSite", "Place", "load_places"]
