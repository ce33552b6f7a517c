"""Reports of events, rooms and users that users send to the server's admins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True)
class Report:
    reporter: str
    received_ts: int
    room_id: str | None = None
    event_id: str | None = None
    target_user_id: str | None = None
    reason: str | None = None
    score: int | None = None


class ReportStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, report: Report) -> str:
        """Stores the report; returns its ID."""
        report_id = secrets.token_urlsafe(16)
        await self.db.run(
            "add_report",
            lambda txn: txn.execute(
                "INSERT INTO content_reports (report_id, received_ts, reporter, room_id,"
                " event_id, target_user_id, reason, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    report.received_ts,
                    report.reporter,
                    report.room_id,
                    report.event_id,
                    report.target_user_id,
                    report.reason,
                    report.score,
                ),
            ),
        )
        return report_id

    async def list_reports(self, limit: int = 100) -> list[Report]:
        """The newest reports first (for admin tooling)."""
        rows = await self.db.run(
            "list_reports",
            lambda txn: txn.query(
                "SELECT reporter, received_ts, room_id, event_id, target_user_id, reason, score"
                " FROM content_reports ORDER BY received_ts DESC, report_id LIMIT ?",
                (limit,),
            ),
        )
        return [Report(*row) for row in rows]
