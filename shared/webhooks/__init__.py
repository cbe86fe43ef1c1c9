"""Outbound webhooks to tenants: Standard Webhooks signing, and the events that feed them."""
