"""Delivering one notification: claim, content, dispatch, policy, settle (see handler.py)."""
