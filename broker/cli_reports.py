"""``mqchat reports list``: an operator reads the reports users made of other users (the same
store reads as ``GET /admin/v1/reports``), one JSON object a line, oldest first, each with copies
of the reported messages as the reporter saw them."""

from __future__ import annotations

import json

from config.settings import Settings
from workers.stores import open_store

__all__ = ["list_reports"]


def list_reports(settings: Settings, *, after: int | None, limit: int) -> int:
    store = open_store(settings.store_url)
    try:
        store.create_schema()
        reports = store.reports_page(after=after, limit=max(1, limit))
    finally:
        store.close()
    for report in reports:
        print(json.dumps(report.wire(), ensure_ascii=False))
    return 0
