"""Hotlists: lists of wanted plates, their import, and the matcher every read goes through.

- Lists (`Hotlist`, kinds from the national stolen-vehicle list to local ones) with an
  owner agency, a default priority and a look-alike policy; entries with their own
  priority, reason and expiry.
- `import_entries` reads CSV or TXT, checks every row, and writes a million entries in
  about ten seconds on SQLite or PostgreSQL, all or nothing unless `good_rows`.
- `HotlistMatcher` holds the active lists in memory and matches a read exactly and, where
  the list's policy allows, one OCR look-alike away; `lookup` asks the database the same.
"""

from vigila.hotlists.importer import MAX_ROWS, FileFormat, parse_expiry
from vigila.hotlists.matcher import Hit, HotlistMatcher
from vigila.hotlists.models import (
    EntryIn,
    Hotlist,
    HotlistEntry,
    HotlistImportReport,
    HotlistIn,
    HotlistKind,
    HotlistPatch,
    ImportMode,
    LookalikePolicy,
)
from vigila.hotlists.service import (
    add_entry,
    create_hotlist,
    get_hotlist,
    import_entries,
    list_entries,
    list_hotlists,
    lookup,
    rejected,
    remove_entry,
    update_hotlist,
)

__all__ = [
    "MAX_ROWS",
    "EntryIn",
    "FileFormat",
    "Hit",
    "Hotlist",
    "HotlistEntry",
    "HotlistImportReport",
    "HotlistIn",
    "HotlistKind",
    "HotlistMatcher",
    "HotlistPatch",
    "ImportMode",
    "LookalikePolicy",
    "add_entry",
    "create_hotlist",
    "get_hotlist",
    "import_entries",
    "list_entries",
    "list_hotlists",
    "lookup",
    "parse_expiry",
    "rejected",
    "remove_entry",
    "update_hotlist",
]
