"""The collector: plays the site in N browsers and saves each round's panorama with its answer.

config (CollectConfig: start pages and steps, selectors, timeouts) → site (one page: sign in, start a game,
capture, guess, read the results screen) → worker (one process and browser, many games) →
supervisor (N workers, watchdog, budget, summary) → store (atomic `<game-id>_<round>` pairs).
"""

from dataprep.collect.config import CollectConfig

__all__ = ["CollectConfig"]
