"""dataprep: raw image+JSON pairs → a labelled, filtered, reproducible, location-disjoint dataset.

`python -m dataprep all --config datasets/streetview/dataprep.json` runs, in order:
ingest → resize → enrich → filter → split → balance → cells → prior → datalist → cache → report
(one module each; every stage is also its own subcommand). Records are `runtime.records.Sample`
rows in JSONL manifests; every dropped record is listed with its reason (`dataprep.drops.Drop`).
"""
