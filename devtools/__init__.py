"""Developer tools above the domain apps: the demo (`manage.py devtools demo`,
`devtools load-demo-data`), the benchmarks (`manage.py devtools bench`, `devtools latency-probe`),
process helpers and the fake provider server that tests and benchmarks send to."""
