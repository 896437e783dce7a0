"""Vigila: video surveillance and licence-plate reading for a city's control room."""

__version__ = "0.1.0"
