"""The one send pipeline: every producer (API routes, and workers such as fan-out, digest and
the maintenance sweep) stores records and publishes their messages through here.
"""

from shared.pipeline.publishing import publish_delivery, publish_digest_flush
from shared.pipeline.submit import PipelineHooks, SendPipeline

__all__ = ["PipelineHooks", "SendPipeline", "publish_delivery", "publish_digest_flush"]
