"""Every store over one database, opened and migrated together."""

from __future__ import annotations

from typing import Any

from storage.account_data import AccountDataStore
from storage.accounts import AccountStore
from storage.database import Database, make_engine
from storage.directory import DirectoryStore
from storage.e2ee import E2eeStore
from storage.events import EventStore
from storage.federation_queue import FederationQueueStore
from storage.media import MediaStore
from storage.migrations import apply_migrations
from storage.openid import OpenIdStore
from storage.persister import EventPersister
from storage.presence import PresenceStore
from storage.push_actions import PushActionStore
from storage.push_rules import PushRuleStore
from storage.pushers import PusherStore
from storage.receipts import ReceiptStore
from storage.relations import RelationStore
from storage.reports import ReportStore
from storage.rooms import RoomStore
from storage.search import SearchStore
from storage.server_keys import ServerKeyStore
from storage.state import StateStore
from storage.threepids import ThreepidStore


class Storage:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.events = EventStore(db)
        self.state = StateStore(db)
        self.persister = EventPersister(db, self.events, self.state)
        self.relations = RelationStore(db)
        # Observed before anything server.py adds (the notifier), so a woken /sync bundles news.
        self.persister.add_observer(self.relations.on_new_events)
        self.search = SearchStore(db)
        self.accounts = AccountStore(db)
        self.account_data = AccountDataStore(db)
        self.rooms = RoomStore(db)
        self.directory = DirectoryStore(db)
        self.media = MediaStore(db)
        self.reports = ReportStore(db)
        self.openid = OpenIdStore(db)
        self.threepids = ThreepidStore(db)
        self.e2ee = E2eeStore(db)
        self.receipts = ReceiptStore(db)
        self.presence = PresenceStore(db)
        self.server_keys = ServerKeyStore(db)
        self.federation_queue = FederationQueueStore(db)
        self.push_rules = PushRuleStore(db)
        self.push_actions = PushActionStore(db)
        self.pushers = PusherStore(db)

    async def start(self) -> None:
        """Reads the stream positions the in-memory counters continue from."""
        await self.state.start()
        await self.persister.start()
        await self.account_data.start()
        await self.e2ee.start()
        await self.receipts.start()
        await self.presence.start()


def open_database(
    reactor: Any,
    engine: str,
    *,
    sqlite_path: str | None = None,
    postgres_conninfo: str | None = None,
    cp_min: int = 2,
    cp_max: int = 10,
) -> Database:
    """Opens the database and brings its schema up to date (blocking: call before serving)."""
    db = Database(
        make_engine(
            engine,
            sqlite_path=sqlite_path,
            postgres_conninfo=postgres_conninfo,
            cp_min=cp_min,
            cp_max=cp_max,
        ),
        reactor,
    )
    db.start()
    apply_migrations(db)
    return db
