"""`all`: every stage in order, from raw sources to the dataset folder.

Order: ingest → resize → enrich → filter → split → balance → cells → prior → datalist → cache → report.
`split` runs before `cells` because cells are built from the train split only (test points must
not shape the classes they are scored on), and `balance` sits between them because it resamples
the train split that cells are then counted on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from dataprep import balance, boundaries, cache, cells, datalist, enrich, filters, ingest, prior, report, resize, split
from dataprep.config import DataprepConfig
from dataprep.drops import Drop, write_drops
from runtime.records import Sample, write_manifest


def summary(samples: list[Sample]) -> dict:
    return {
        "records": len(samples),
        "countries": len({s.country for s in samples if s.country}),
        "locations": len({s.location for s in samples}),
    }


class Run:
    """Bookkeeping shared by the stages of one `all` run: stage manifests, drops, stats."""

    def __init__(self, cfg: DataprepConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.stats: dict = {"stages": {}}
        self.drops: list[Drop] = []

    def stage_file(self, stage: str) -> Path:
        # beside manifest.jsonl, so relative image paths resolve the same from every stage's manifest
        return self.out / f"{len(self.stats['stages']) + 1:02d}-{stage}.jsonl"

    def record(self, stage: str, before: list[Sample] | None, after: list[Sample], drops: list[Drop], t0: float, **extra):
        seconds = time.time() - t0
        self.drops += drops
        path = self.stage_file(stage)
        write_manifest(path, after)
        write_drops(path.with_name(path.stem + ".drops.jsonl"), drops)
        entry = {"in": summary(before) if before is not None else None, "out": summary(after),
                 "dropped": len(drops), "seconds": round(seconds, 1)}
        entry.update(extra)
        self.stats["stages"][stage] = entry
        print(f"{stage:>8}: {entry['out']['records']} records, {entry['out']['countries']} countries, "
              f"{entry['out']['locations']} locations ({len(drops)} dropped, {seconds:.1f} s)", flush=True)


def run_all(cfg: DataprepConfig, update_datalist: bool = False) -> dict:
    run = Run(cfg)
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataprep.json").write_text(cfg.to_json(), encoding="utf-8")
    gdf = boundaries.load(cfg.boundaries)  # first: a missing boundaries file fails before any work

    t = time.time()
    samples, drops = ingest.ingest(cfg.sources)
    run.record("ingest", None, samples, drops, t, sources=cfg.sources)

    t, before = time.time(), samples
    images = out / f"images-{cfg.resize.max_side}-q{cfg.resize.quality}"
    samples, drops = resize.resize(samples, out / "manifest.jsonl", images, out / "manifest.jsonl", cfg.resize)
    run.record("resize", before, samples, drops, t, images=str(images))

    t, before = time.time(), samples
    samples, drops = enrich.enrich(samples, gdf, cfg.enrich)
    run.record("enrich", before, samples, drops, t, boundaries=str(boundaries.resolve(cfg.boundaries)))

    t, before = time.time(), samples
    metrics = filters.measure(samples, out / "manifest.jsonl", cfg.resize.workers)
    samples, drops = filters.filter_samples(samples, metrics, cfg.filter)
    filters.write_metrics(filters.metrics_path(run.stage_file("filter")), before, metrics)
    run.record("filter", before, samples, drops, t, thresholds=cfg.filter.model_dump())

    t, before = time.time(), samples
    samples = split.split(samples, cfg.split)
    run.record("split", before, samples, [], t, splits=_per_split(samples))

    t, before = time.time(), samples
    bc = cfg.balance
    samples, drops, info = balance.balance(samples, balance.load_weights(bc.weights), bc.slack, bc.min_share, tuple(bc.splits))
    run.record("balance", before, samples, drops, t, countries=info, splits=_per_split(samples))

    t, before = time.time(), samples
    train = [s for s in samples if s.split == "train"]
    cc = cfg.cells
    cellset = cells.build(train, gdf, cc)
    samples, how = cells.assign_all(samples, cellset)
    cells_meta = {"cells": len(cellset.features), "min_samples": cc.min_samples, "max_samples": cc.max_samples,
                  "train_records": len(train), "assigned_by": dict(sorted(how.items()))}
    run.record("cells", before, samples, [], t, **cells_meta)

    pc = cfg.prior
    if pc.locations:
        t = time.time()
        points = prior.read_locations(pc.locations)
        cell_prior, country_prior = prior.build(points, cellset, gdf, cfg.enrich, pc)
        prior.write(out / "prior.json", pc.locations, cell_prior, country_prior, len(points), pc.smoothing, pc.name)
        run.stats["prior"] = {"name": pc.name, "points": len(points), "countries": len(country_prior),
                              "seconds": round(time.time() - t, 1)}
        print(f"   prior: {len(points)} game locations, {len(country_prior)} countries", flush=True)
    else:
        (out / "prior.json").unlink(missing_ok=True)

    art = Path(cfg.artefacts) if cfg.artefacts else out
    text = datalist.write_or_check(samples, art / "datalist.txt", check=cfg.datalist_check and not update_datalist)
    run.stats["datalist"] = {"path": str(art / "datalist.txt"), "sha256": datalist.digest(text), "records": len(samples)}

    cells.write_geojson(out / "cells.geojson", cellset, cells_meta)
    write_manifest(out / "manifest.jsonl", samples)
    write_drops(out / "drops.jsonl", run.drops)
    run.stats["final"] = summary(samples) | {"splits": _per_split(samples)}

    if cfg.cache.enabled:
        t = time.time()
        folder = cache.build_published(out / "manifest.jsonl", out / "cache", cfg.cache.size, cfg.resize.workers)
        run.stats["cache"] = {"folder": str(folder), "size": cfg.cache.size, "seconds": round(time.time() - t, 1)}
        print(f"   cache: {folder}", flush=True)
    (out / "stats.json").write_text(json.dumps(run.stats, indent=2) + "\n", encoding="utf-8")

    if cfg.report.enabled:
        report.write_report(out, out / "report", cfg.report.thumbnails)
    if cfg.artefacts:
        art.mkdir(parents=True, exist_ok=True)
        for name in ("cells.geojson", "stats.json", "dataprep.json", "prior.json"):
            if (out / name).exists() and (name != "dataprep.json" or not (art / name).exists()):
                shutil.copyfile(out / name, art / name)
        if cfg.report.enabled:
            # the dropped images' thumbnails are pixels of the source images: they stay in the local report
            shutil.copytree(out / "report", art / "report", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("dropped.png"))
    return run.stats


def _per_split(samples: list[Sample]) -> dict:
    return {k: summary([s for s in samples if s.split == k]) for k in ("train", "val", "test")}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="dataprep.json (a DataprepConfig)")
    p.add_argument("--out", default=None, help="override the config's output folder")
    p.add_argument("--update-datalist", action="store_true", help="rewrite the committed data-list instead of checking it")
    p.add_argument("--no-cache", action="store_true", help="skip the packed tile cache")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")


def main(args: argparse.Namespace) -> int:
    cfg = DataprepConfig.load(args.config)
    if args.out:
        cfg.out = args.out
    if args.no_cache:
        cfg.cache.enabled = False
    if args.no_report:
        cfg.report.enabled = False
    run_all(cfg, update_datalist=args.update_datalist)
    return 0
