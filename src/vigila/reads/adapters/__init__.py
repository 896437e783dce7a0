"""Vendor adapters: a plate reader's wire format in, `RawRead`s out.

Each adapter only translates and refuses what it cannot read; the device identity it
returns is the vendor's own (name, address, serial), which ingest maps to the registry.
"""

from vigila.reads.adapters.hikvision import parse_hikvision
from vigila.reads.adapters.tattile import parse_tattile

__all__ = ["parse_hikvision", "parse_tattile"]
