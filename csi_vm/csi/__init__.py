"""Talking to CSI drivers: bindings, typed models, one client with deadlines and retries."""
