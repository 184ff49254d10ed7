"""Jifen: a membership points (積分) and loyalty platform."""

__version__ = "0.1.0"
