"""Alerting: the pure planner and message rendering (no I/O) used by the timer function."""
