"""Widgets of the dashboard (no screen logic)."""
