"""Milestone probes, metrics and the report card (later issues)."""
