"""Campaign writes, split by subject. The dispatch pipeline is dispatch.py (launch, deliver
to one contact, claim and send, pause/resume/cancel, progress), built from audience.py,
assignment.py, checks.py, caps.py, scheduling.py, throttle.py and sweeps.py. Import from the
module itself; this package imports nothing, so modules stay independent."""
