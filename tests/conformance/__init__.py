"""CSI conformance suite: judges any CSI endpoint from the outside."""
