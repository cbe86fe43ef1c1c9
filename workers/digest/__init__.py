"""The digest worker (`python -m workers digest`): closes digests and sends one notification
for each; see `closer.py` for why that is crash-safe."""

from workers.digest.service import digest_services

__all__ = ["digest_services"]
