"""What a player may type for a country in Play: the country's name, its ISO alpha-2 code, or a common
name from ALIASES ("usa", "uk", "south korea", ...), in any case, with or without accents,
punctuation or a leading "the".
"""

from __future__ import annotations

import re
import unicodedata

# common names → ISO alpha-2, written normalized (see normalize). Only names a player would use that
# differ from the map's own (Natural Earth's) names: those match already.
ALIASES = {
    "usa": "US", "united states": "US", "america": "US", "us of a": "US",
    "uk": "GB", "britain": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB",
    "korea": "KR", "republic of korea": "KR", "rok": "KR", "dprk": "KP",
    "russian federation": "RU",
    "czechia": "CZ",
    "holland": "NL",
    "uae": "AE", "emirates": "AE",
    "drc": "CD", "dr congo": "CD", "congo kinshasa": "CD", "congo brazzaville": "CG",
    "serbia": "RS",
    "tanzania": "TZ",
    "south sudan": "SS",
    "north macedonia": "MK",
    "eswatini": "SZ",
    "cote divoire": "CI",
    "timor leste": "TL",
    "burma": "MM",
    "turkiye": "TR",
    "vatican city": "VA", "holy see": "VA",
    "hong kong": "HK", "macao": "MO", "macau": "MO",
    "bosnia": "BA",
    "cabo verde": "CV",
    "micronesia": "FM",
    "us virgin islands": "VI",
    "aland islands": "AX",
    "viet nam": "VN",
    "trinidad": "TT",
    "png": "PG",
    "nz": "NZ",
}

_DROP = re.compile(r"[.'’]")          # "u.s.a." is "usa", "d'ivoire" is "divoire"
_SPACE = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower case, accents off, "&" as "and", "st" as "saint", punctuation as spaces, no leading "the"."""
    t = unicodedata.normalize("NFKD", text.casefold())
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).replace("&", " and ")
    words = _SPACE.sub(" ", _DROP.sub("", t)).split()
    if words[:1] == ["the"]:
        words = words[1:]
    return " ".join("saint" if w == "st" else w for w in words)


class CountryNames:
    """Resolves what a player typed to an ISO code, given the map's names {code: name}."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        # Natural Earth names some dependencies after their sovereign (Tokelau is "New Zealand"): a name
        # shared by several codes means the first of them by code, so "New Zealand" is NZ, not TK
        self._by_name: dict[str, str] = {}
        for code, name in sorted(names.items()):
            self._by_name.setdefault(normalize(name), code)
        for alias, code in ALIASES.items():
            if code in names:
                self._by_name.setdefault(alias, code)

    def code(self, text: str) -> str | None:
        t = text.strip()
        if t.upper() in self.names:
            return t.upper()
        return self._by_name.get(normalize(t))
