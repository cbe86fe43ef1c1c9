"""The fan-out worker (`python -m workers fanout`): expands topic sends into one notification
per subscriber, page by page; see `expand.py` for why that is crash-safe."""

from workers.fanout.service import fanout_services

__all__ = ["fanout_services"]
