"""`manage.py devtools bench`: deterministic synthetic data and measurements of the whole
pipeline, each beside a baseline measured in the same run (docs/performance.md). It lives in
devtools, above the domain apps, because it drives every app."""
