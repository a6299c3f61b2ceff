"""The newsletter system: subscribers and the log of what was sent to them, in one SQLite file.

This is the "system that holds personal data" of the example; connector.py puts Lethe's
protocol in front of it. Each function runs inside a transaction its caller opened, so an action
and the record of its idempotency key commit together or not at all.

Matching: a subject is found by email (case-insensitive) or phone (E.164, exact). The newsletter
holds no customer ids, so a customer_id alone finds nobody, which is not an error.
"""

import sqlite3
from datetime import datetime, timezone

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (
    id          INTEGER PRIMARY KEY,
    email       TEXT UNIQUE COLLATE NOCASE,
    name        TEXT,
    phone       TEXT,
    subscribed  INTEGER NOT NULL DEFAULT 1,
    restricted  INTEGER NOT NULL DEFAULT 0,  -- Art. 18: no campaigns while set
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscribers_phone ON subscribers (phone);
-- The send log is kept for campaign statistics; erasure unlinks it from the subscriber.
CREATE TABLE IF NOT EXISTS sends (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER REFERENCES subscribers (id),
    campaign      TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'sent',  -- 'queued' until the mail provider has it
    sent_at       TEXT,
    opened        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sends_subscriber ON sends (subscriber_id);
"""

# What an access export holds, per table: (column, personal-data category). The categories are
# those of connectors.Category in Lethe ("" = context, not personal data on its own).
TABLES = {
    "subscribers": [
        ("email", "contact"),
        ("name", "identity"),
        ("phone", "contact"),
        ("subscribed", "marketing"),
        ("restricted", ""),
        ("created_at", ""),
    ],
    "sends": [
        ("campaign", "marketing"),
        ("status", ""),
        ("sent_at", ""),
        ("opened", "marketing"),
    ],
}


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(path, busy_timeout):
    """Opens the database in autocommit mode: transactions are begun explicitly."""
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(SCHEMA)
    return db


def find(db, subject):
    """Returns the ids of the subscribers matching the subject."""
    email, phone = subject.get("email"), subject.get("phone")
    rows = db.execute(
        "SELECT id FROM subscribers WHERE (? IS NOT NULL AND email = ?)"
        " OR (? IS NOT NULL AND phone = ?) ORDER BY id",
        (email, email, phone, phone),
    ).fetchall()
    return [r[0] for r in rows]


def _in(ids):
    return "(" + ",".join("?" * len(ids)) + ")"


def rows(db, table, ids):
    """Yields the rows of one exported table for the given subscribers, in TABLES order."""
    if not ids:
        return
    cols = ", ".join(c for c, _ in TABLES[table])
    key = "id" if table == "subscribers" else "subscriber_id"
    yield from db.execute(f"SELECT {cols} FROM {table} WHERE {key} IN {_in(ids)} ORDER BY id", ids)


def erase(db, ids):
    """Deletes the subscribers and unlinks their send log. Returns rows changed per table."""
    if not ids:
        return {"subscribers": 0, "sends": 0}
    sends = db.execute(f"UPDATE sends SET subscriber_id = NULL WHERE subscriber_id IN {_in(ids)}", ids).rowcount
    subs = db.execute(f"DELETE FROM subscribers WHERE id IN {_in(ids)}", ids).rowcount
    return {"subscribers": subs, "sends": sends}


def restrict(db, ids, lift):
    """Sets or lifts the restriction flag. Returns the number of subscribers changed."""
    if not ids:
        return 0
    return db.execute(f"UPDATE subscribers SET restricted = ? WHERE id IN {_in(ids)}", [0 if lift else 1, *ids]).rowcount


def block_check(db, ids):
    """A send still queued at the mail provider would reach the subject after the erasure, with
    nothing left here to explain it: erasure waits until it is out. Nothing else blocks."""
    if not ids:
        return []
    queued = db.execute(f"SELECT count(*) FROM sends WHERE status = 'queued' AND subscriber_id IN {_in(ids)}", ids).fetchone()[0]
    if not queued:
        return []
    return [{"code": "send_queued",
             "reason": "A newsletter to you is queued for delivery; your data is erased once it has been sent."}]


def add_subscriber(db, email=None, name=None, phone=None, campaigns=(), queued=()):
    """Adds a subscriber with a send-log row per campaign sent and per campaign queued."""
    cur = db.execute(
        "INSERT INTO subscribers (email, name, phone, created_at) VALUES (?, ?, ?, ?)",
        (email, name, phone, now()),
    )
    db.executemany("INSERT INTO sends (subscriber_id, campaign, sent_at) VALUES (?, ?, ?)",
                   [(cur.lastrowid, c, now()) for c in campaigns])
    db.executemany("INSERT INTO sends (subscriber_id, campaign, status) VALUES (?, ?, 'queued')",
                   [(cur.lastrowid, c) for c in queued])
    return cur.lastrowid
