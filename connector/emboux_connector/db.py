"""The mail DB: a connection pool and one transaction per unit of work."""

import contextlib
import logging
import select
import threading

import psycopg2
import psycopg2.extras
import psycopg2.pool

from .errors import ApiError

log = logging.getLogger(__name__)


_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE


class TransactionCursor(psycopg2.extras.RealDictCursor):
    """A dict cursor that opens its transaction with its first statement.

    psycopg2 sends BEGIN as a message of its own before a transaction's first
    statement: one more round trip to PostgreSQL per request, which on a
    loaded machine costs each side a wake-up (issue 15). The pool's
    connections are in autocommit mode instead, and whenever the server says
    no transaction is open (libpq's transaction status, no round trip) this
    cursor sends "BEGIN; <statement>" as one message: PostgreSQL runs the two
    in order and answers the statement's result. Database.transaction() ends
    the transaction with COMMIT or ROLLBACK."""

    def execute(self, query, vars=None):
        if self.connection.get_transaction_status() == _IDLE:
            if isinstance(query, str):
                query = "BEGIN; " + query
            elif isinstance(query, bytes):
                query = b"BEGIN; " + query
            else:  # a psycopg2.sql object: BEGIN in a message of its own
                super().execute("BEGIN")
        return super().execute(query, vars)

    def execute_alone(self, query, vars=None):
        """A unit of work that is ONE statement: sent without BEGIN when no
        transaction is open, PostgreSQL runs it as an implicit transaction
        and commits it (durably) before it answers -- one round trip for
        the whole request, no COMMIT after. The caller sends nothing else
        in that unit of work (a later statement would be another
        transaction). In an open transaction, one more statement of it."""
        return super().execute(query, vars)

    def executemany(self, query, vars_list):
        if self.connection.get_transaction_status() == _IDLE:
            super().execute("BEGIN")
        return super().executemany(query, vars_list)

    def end(self, command):
        """COMMIT or ROLLBACK the open transaction (nothing when none is open)."""
        if self.connection.get_transaction_status() != _IDLE:
            super().execute(command)
            return self.statusmessage
        return None


class Database:
    """A lazily created, thread-safe pool (created after gunicorn forks)."""

    def __init__(self, dsn, maxconn=8):
        self.dsn = dsn
        self.maxconn = maxconn
        self._pool = None
        self._lock = threading.Lock()

    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                # minconn = maxconn: psycopg2's pool *closes* a returned
                # connection when more than minconn are idle, which would mean
                # a new connection (and SCRAM handshake) per request.
                self._pool = psycopg2.pool.ThreadedConnectionPool(
                    self.maxconn, self.maxconn, self.dsn, connect_timeout=5,
                    application_name="emboux-connector")
            return self._pool

    @contextlib.contextmanager
    def transaction(self):
        """Yield a dict cursor; commit on success, roll back on any error.

        A request's changes are therefore all-or-nothing. A broken connection
        is thrown away rather than returned to the pool.
        """
        try:
            pool = self._get_pool()
            conn = self._live_connection(pool)
        except psycopg2.Error as exc:
            log.error("mail DB unreachable: %s", exc)
            raise ApiError(503, "Mail DB unavailable") from exc
        broken = False
        # BEGIN travels with the first statement (TransactionCursor)
        conn.autocommit = True
        cur = conn.cursor(cursor_factory=TransactionCursor)
        try:
            yield cur
            if cur.end("COMMIT") not in (None, "COMMIT"):
                # PostgreSQL answers ROLLBACK to the COMMIT of a failed
                # transaction: never take that for a success
                raise psycopg2.InternalError("the transaction was rolled back, not committed")
        except BaseException as exc:
            broken = conn.closed or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
            if not conn.closed:
                try:
                    cur.end("ROLLBACK")
                except psycopg2.Error:
                    broken = True
            if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                log.error("mail DB error: %s", exc)
                raise ApiError(503, "Mail DB unavailable") from exc
            raise
        finally:
            cur.close()
            pool.putconn(conn, close=broken)

    def _live_connection(self, pool):
        """A pooled connection the server has not closed meanwhile.

        After PostgreSQL restarts (an upgrade, a failover, a container
        restart) every pooled connection is dead, and each would fail one
        request with a 503. An idle connection has nothing to read unless the
        server said goodbye (its FATAL message, or end of file): a readable
        socket, found without a round trip, means a dead connection. It is
        dropped and replaced by a fresh one."""
        for _ in range(self.maxconn + 1):
            conn = pool.getconn()
            try:
                readable, _, _ = select.select([conn.fileno()], [], [], 0)
            except (OSError, ValueError, psycopg2.Error):
                readable = True
            if not readable and not conn.closed:
                return conn
            pool.putconn(conn, close=True)
        return pool.getconn()

    def close(self):
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None
