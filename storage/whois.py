"""What /admin/whois shows about a user: their devices and where each was last used from."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True)
class DeviceConnection:
    device_id: str
    last_seen_ts: int | None
    last_seen_ip: str | None
    last_seen_user_agent: str | None


async def get_device_connections(db: Database, user_id: str) -> list[DeviceConnection]:
    rows = await db.run(
        "whois_devices",
        lambda txn: txn.query(
            "SELECT device_id, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices"
            " WHERE user_id = ? ORDER BY device_id",
            (user_id,),
        ),
    )
    return [DeviceConnection(*row) for row in rows]
