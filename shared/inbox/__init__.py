"""The in-app inbox's realtime side shared by the worker and the API (docs/inbox.md)."""
