"""A/B evaluation (docs/ab-testing.md): pure statistics (`stats`), per-variant metrics
aggregated in SQL (`metrics`), the report that joins them (`report`), the automatic winner at
the declared horizon (`winner`), the sample-size planner (`planner`) and inline SVG charts
(`charts`)."""
