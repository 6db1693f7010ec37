"""The shared runtime: what every part computes the same way, defined once.

    extension ─ws─▶ companion ─┐
    dataprep ──files──▶ training ─bundle─▶ companion
         └──────────┴──────────┴──▶ runtime

runtime holds the record and bundle schemas, preprocessing, the posterior, geo helpers and file
hashing. It imports none of the parts (companion, dataprep, training) and nothing beyond the serving
dependencies (numpy, Pillow, pydantic): tests/test_import_rule.py enforces both.
"""
