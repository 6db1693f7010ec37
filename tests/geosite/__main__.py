"""`python -m tests.geosite --port N`: serve the site for manual use until Ctrl-C."""

import argparse
import time

from .server import GeoSite


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.geosite", description=__doc__)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hash", help="one class-name suffix for all classes (default: a random one per class)")
    ap.add_argument("--images", nargs="*", help="round images with sidecar JSON (default: tests/fixtures/images)")
    ap.add_argument("--hang", action="store_true", help="the panorama never renders")
    ap.add_argument("--black", action="store_true", help="the panorama renders all black")
    ap.add_argument("--ratelimit", type=int, default=0, help="the first N game starts answer HTTP 429")
    ap.add_argument("--collide", action="store_true", help="hand out every game-id twice")
    args = ap.parse_args()
    site = GeoSite(images=args.images, port=args.port, seed=args.seed, hash=args.hash, hang=args.hang,
                   black=args.black, ratelimit=args.ratelimit, collide=args.collide).start()
    hashes = site.hash or "a random one per class"
    print(f"GeoSite on {site.url} (sign in: {site.email} / {site.password}, class hash: {hashes})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
