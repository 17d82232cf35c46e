"""Trigger writes, split by subject: rules.py (saving a rule, versioned; the compiled ruleset
each process keeps current), evaluation.py (contacts evaluated against the rules, and the queue
that events and segment changes feed), firings.py (recording firings exactly once, running
their actions) and sweep.py (the scheduled check of rules that move with the clock).
Import from the module itself; this package imports nothing, so modules stay independent."""
