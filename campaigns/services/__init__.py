"""Campaign writes, split by subject. The dispatch pipeline is launch.py (launch, winner send,
deliver to one contact), send.py (claim and send a batch, drain in-process), state.py
(pause/resume/cancel, progress) and enqueue.py (what is due, put on the queue), built from
audience.py, assignment.py, checks.py, caps.py, scheduling.py, throttle.py and sweeps.py.
Import from the module itself; this package imports nothing, so modules stay independent."""
