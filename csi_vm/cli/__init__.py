"""Command line interface: parse, call, render."""
