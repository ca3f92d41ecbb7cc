"""The database handle: engine, commit-or-rollback sessions, and migrations to the latest schema."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open per engine. Beyond them the pool opens more on demand and never makes a
# caller wait (``max_overflow=-1``): the API's threadpool (40 threads) bounds how many are in use.
# A bounded pool deadlocks the API under load: a sync route's session dependency holds its
# connection until FastAPI has validated the response, which is one more threadpool hop, while
# every threadpool thread can be a request waiting for a connection (see docs/architecture.md).
POOL_SIZE = 10


# Optuna's RDB storage shares the database and uses Alembic's default version table itself.
VERSION_TABLE = "nas_alembic_version"
# Execution option marking the connections of read-only sessions (see ``Database.read``).
READ_ONLY_OPTION = "nas_read_only"
# Execution option of the SQLite polling connections (``Database.read_connection``): no BEGIN, so
# each SELECT is its own implicit read transaction (see ``_on_begin``).
NO_BEGIN_OPTION = "nas_no_begin"
T = TypeVar("T")
# PostgreSQL advisory lock held while migrating, so two API processes starting at once do not race.
MIGRATION_LOCK_KEY = zlib.crc32(b"nas-migrations")


class StoreError(RuntimeError):
    """A database operation failed; the transaction was rolled back."""


class ConstraintError(StoreError):
    """A write broke a unique or foreign-key constraint (a duplicate, or a row that does not exist)."""


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys and a busy timeout, because the API and Ray workers write at once."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that later writes can
        # fail at once with SQLITE_BUSY under WAL, whatever the busy timeout. Read-only sessions
        # begin deferred, so under WAL a reader never waits for a writer (nor blocks one). The
        # polling connections begin nothing: the driver is in autocommit mode (isolation_level None
        # above), so each of their SELECTs reads its own snapshot, as PostgreSQL's autocommit
        # polling pool does; that saves a BEGIN and a ROLLBACK per poll.
        options = conn.get_execution_options()
        if options.get(NO_BEGIN_OPTION):
            return
        if options.get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _refuse_writes(_session: Session, _ctx: Any, _instances: Any) -> None:
    raise StoreError("a read-only session tried to write; use Database.session() for writes")


class Database:
    """One database URL (SQLite file or PostgreSQL); hands out sessions that commit or roll back."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        if not url:
            raise ValueError("database url is empty: set NAS_DATABASE_URL, e.g. sqlite:///./var/nas.db")
        try:
            parsed = make_url(url)
        except Exception as exc:  # sqlalchemy raises ArgumentError with little context
            raise ValueError(f"not a database URL: {url!r} (e.g. sqlite:///./var/nas.db)") from exc
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if parsed.database not in (None, "", ":memory:"):  # in-memory SQLite keeps its own pool
            kwargs.update(pool_size=POOL_SIZE, max_overflow=-1)
        if not self.is_sqlite:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        # The polling GETs (``poll``) read through a pool of their own without pre-ping: the ping is
        # one more round trip per request (``nas bench api-load`` on PostgreSQL: p99 591-621 ms with
        # it, 524 ms without). A read that a restart cut is retried once on a fresh connection
        # instead (reads are idempotent). On PostgreSQL the pool is also in autocommit: no BEGIN
        # and no ROLLBACK round trips around a poll's SELECTs. That loses no consistency: at READ
        # COMMITTED (PostgreSQL's default) each statement takes its own snapshot inside a
        # transaction too.
        self._poll_engine: Engine = (
            self.engine.execution_options(**{READ_ONLY_OPTION: True, NO_BEGIN_OPTION: True})
            if self.is_sqlite
            else create_engine(
                url, **{**kwargs, "pool_pre_ping": False, "isolation_level": "AUTOCOMMIT"}
            ).execution_options(**{READ_ONLY_OPTION: True})
        )
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        event.listen(self._read_sessions, "before_flush", _refuse_writes)
        self._fence: Callable[[Session], None] | None = None

    def fenced(self, fence: Callable[[Session], None]) -> Database:
        """This database (same engine) whose write sessions run ``fence`` just before each commit.

        The fence runs inside the transaction, so a fence that raises (e.g. a lost job lease) rolls
        the whole block back: nothing it wrote is kept.
        """
        other = copy.copy(self)
        other._fence = fence
        return other

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends, or rolls back and raises ``StoreError``."""
        s = self._sessions()
        try:
            yield s
            if self._fence is not None:
                self._fence(s)
            s.commit()
        except IntegrityError as exc:
            s.rollback()
            raise ConstraintError(f"database constraint violated: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            s.rollback()
            raise StoreError(f"database error: {exc}") from exc
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: never takes SQLite's write lock, so readers never queue behind writers.

        Anything the block adds or changes is discarded, and trying to flush it raises ``StoreError``.
        """
        s = self._read_sessions()
        try:
            yield s
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc
        finally:
            # close() ends the transaction (the pool rolls it back) and detaches the objects
            # without expiring them, so what the block loaded stays readable afterwards.
            s.close()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only Core connection of the polling pool (no pre-ping; no ORM session), in
        autocommit: each statement reads its own committed snapshot (so a read of several SELECTs
        is not one snapshot). Driver errors become :class:`StoreError`.

        The polling GETs read through it (``nas.store.polls``, by way of :meth:`poll`): rows, not
        objects, so no identity map, no attribute instrumentation and no unit of work for reads that
        never write. Like ``read()``, it never takes SQLite's write lock.
        """
        try:
            with self._poll_engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc

    def poll(self, read: Callable[[Connection], T]) -> T:
        """``read(connection)`` on :meth:`read_connection`; when the connection turns out to have
        been cut (a database restart), ``read`` runs once more on a new one."""
        try:
            with self.read_connection() as conn:
                return read(conn)
        except StoreError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, DBAPIError) and cause.connection_invalidated):
                raise
        # SQLAlchemy has invalidated the pool's older connections too: this one is new.
        with self.read_connection() as conn:
            return read(conn)

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision`` (the latest by default); safe to call on every start."""
        cfg = self.alembic_config()
        try:
            with self.engine.begin() as conn:
                # SQLite: the transaction began with BEGIN IMMEDIATE (the write lock) at its first
                # statement; PostgreSQL: an advisory lock released with the transaction.
                if self.is_sqlite:
                    conn.execute(text("SELECT 1"))
                else:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"migrating {self.engine.url!r} failed: {exc}") from exc

    def current_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        with self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()
        if not self.is_sqlite:
            self._poll_engine.dispose()
