"""The pieces of `scripts/bench`: the broker ceiling, the system, the load, the figures."""
