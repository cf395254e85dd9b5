"""Kubernetes backend and controller."""
