"""Developer tools above the domain apps: the demo (`manage.py demo`, `load_demo_data`), the
benchmarks (`manage.py bench`, `latency_probe`), process helpers and the fake provider server
that tests and benchmarks send to."""
