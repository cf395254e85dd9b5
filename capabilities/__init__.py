"""Capability probe, reports and the one strategy ladder."""
