#!/usr/bin/env python3
"""An out-of-process Lethe connector for the newsletter system, written against the documented
protocol only (schemas/ in the Lethe repository): nothing from Lethe is imported.

    python connector.py serve --brokers 127.0.0.1:9092 --db newsletter.db
    python connector.py add-subscriber --db newsletter.db --email ada@example.com --name Ada

What it guarantees, the same way Lethe's own Go runner does:
  * a command's effect is applied at most once per idempotency key: the effect and the stored
    result commit in one SQLite transaction, and a redelivered command is answered from there;
  * a command is committed on Kafka only after its result (or its dead letter) is acknowledged
    by all in-sync replicas, so a crash at any point means redelivery, never a lost answer;
  * anything that is not a version-2 command for this connector, or whose sealed part does not
    open with one of its keys, goes to lethe.dlq with a reason;
  * no personal data in logs or error messages: they name actions, tables and codes only.

The subject and params of a command are sealed (AES-256-GCM) under this connector's key; its keys
come from the environment variable LETHE_CONNECTOR_KEYS as "id=base64key[,id=base64key...]" (every
key listed opens commands, so a rotation adds the new key and keeps the old one for a while).
"""

import argparse
import base64
import hashlib
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlparse

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata

import newsletter

RESULTS_TOPIC = "lethe.connector.results"
DLQ_TOPIC = "lethe.dlq"

# Patterns of schemas/common.schema.json: a result echoing a bad identifier would itself be
# rejected by Lethe, so such a command is dead-lettered instead.
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

ACTIONS = ("access", "erase", "restrict", "block_check")

KEYS_ENV = "LETHE_CONNECTOR_KEYS"

TASKS = """
CREATE TABLE IF NOT EXISTS lethe_tasks (
    idempotency_key TEXT PRIMARY KEY,
    action          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    output          TEXT NOT NULL,
    done_at         TEXT NOT NULL
)
"""

log = logging.getLogger("newsletter-connector")


def info(msg, **kv):
    log.info(" ".join([msg, *(f"{k}={v}" for k, v in kv.items())]))


def warn(msg, **kv):
    log.warning(" ".join([msg, *(f"{k}={v}" for k, v in kv.items())]))


def timestamp():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Invalid(Exception):
    """The message is not a command this connector can answer: it goes to lethe.dlq."""


class Permanent(Exception):
    """Retrying the command cannot help (bad parameters, unsupported action)."""

    def __init__(self, message, code="permanent", output=None):
        super().__init__(message)
        self.code, self.output = code, output


def blocked(blocks):
    """Erasure refused: the failed result names the codes and carries the readable reasons."""
    codes = ", ".join(b["code"] for b in blocks)
    return Permanent(f"subject is blocked from erasure: {codes}", "blocked", {"blocks": blocks})


def parse_keys(text):
    """Reads "id=base64key,..." into {id: AESGCM}; exits naming the problem, never the key."""
    keys = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        kid, sep, encoded = item.partition("=")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except ValueError:
            secret = b""
        if not sep or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", kid) or len(secret) != 32:
            sys.exit(f"{KEYS_ENV}: each entry must be id=<32 bytes in base64> (openssl rand -base64 32)")
        keys[kid] = AESGCM(secret)
    if not keys:
        sys.exit(f"{KEYS_ENV} is not set: the connector needs its key to open commands")
    return keys


def open_sealed(cmd, keys):
    """Decrypts the command's sealed part (see connectors/envelope in Lethe) and returns its
    subject and params. The additional data binds it to this command's identity."""
    sealed = cmd.get("sealed")
    if not isinstance(sealed, dict) or sealed.get("alg") != "A256GCM":
        raise Invalid("/sealed: missing or not A256GCM")
    aead = keys.get(sealed.get("key_id"))
    if aead is None:
        raise Invalid("/sealed/key_id: sealed with a key this connector does not hold")
    aad = "\n".join(["lethe.connector.command", cmd["connector"], cmd["request_id"],
                     cmd["idempotency_key"], cmd["action"]]).encode()
    try:
        nonce = base64.b64decode(sealed.get("nonce", ""), validate=True)
        plain = aead.decrypt(nonce, base64.b64decode(sealed.get("ciphertext", ""), validate=True), aad)
        private = json.loads(plain)
    except (ValueError, InvalidTag):
        raise Invalid("/sealed: does not open: altered, or sealed for another command") from None
    if not isinstance(private, dict) or private.get("schema") != "lethe.connector.sealed" \
            or private.get("version") != 1 or private.get("action") != cmd["action"]:
        raise Invalid("/sealed: not a lethe.connector.sealed version 1 for this action")
    return private.get("subject"), private.get("params")


def parse_command(value, name, keys):
    """Decodes, checks and opens a command; raises Invalid with a reason that quotes no values.
    Returns the command and its opened (subject, params)."""
    try:
        cmd = json.loads(value)
    except (TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Invalid(f"decoding command: not JSON ({type(e).__name__})") from None
    if not isinstance(cmd, dict):
        raise Invalid("decoding command: not a JSON object")
    if cmd.get("schema") != "lethe.connector.command" or cmd.get("version") != 2:
        raise Invalid("/schema: expected lethe.connector.command version 2")
    if "subject" in cmd or "params" in cmd:
        raise Invalid("/subject: personal data must travel sealed, never in clear")
    if cmd.get("connector") != name:
        raise Invalid(f"/connector: command for another connector arrived on the topic of {name!r}")
    for field, pattern in (("id", KEY), ("idempotency_key", KEY), ("request_id", ID), ("tenant_id", ID)):
        if not isinstance(cmd.get(field), str) or not pattern.match(cmd[field]):
            raise Invalid(f"/{field}: missing or not a valid identifier")
    for field in ("action", "task_token", "issued_at"):
        if not isinstance(cmd.get(field), str) or not cmd[field]:
            raise Invalid(f"/{field}: missing")
    return cmd, open_sealed(cmd, keys)


def export_directory(cmd, name):
    """Maps the command's file:// export location to this connector's directory below it."""
    location = (cmd.get("export") or {}).get("location")
    if not isinstance(location, str):
        raise Permanent("access command has no export location")
    u = urlparse(location)
    if u.scheme != "file" or u.netloc not in ("", "localhost"):
        raise Permanent("export location is not a file:// URI; this example writes local files only")
    path = os.path.normpath(unquote(u.path))
    if not os.path.isabs(path):
        raise Permanent("export location is not an absolute path")
    return os.path.join(path, name)


class TableFile:
    """Writes one exported table as JSON Lines: a header line {"table", "columns"}, then one JSON
    array per row. The file appears under its name only when complete (temp file + rename)."""

    def __init__(self, directory, table, columns):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.target = os.path.join(directory, table + ".jsonl")
        fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=".partial-")
        self.f = os.fdopen(fd, "wb")
        self.sha, self.bytes, self.rows, self.table = hashlib.sha256(), 0, 0, table
        self._line({"table": table, "columns": [{"name": c, "category": k} for c, k in columns]})

    def _line(self, obj):
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.f.write(data)
        self.sha.update(data)
        self.bytes += len(data)

    def row(self, values):
        self._line(list(values))
        self.rows += 1

    def commit(self):
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.target)
        return {"uri": "file://" + quote(self.target), "sha256": self.sha.hexdigest(),
                "bytes": self.bytes, "rows": self.rows, "table": self.table}

    def abort(self):
        self.f.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class Connector:
    def __init__(self, name, db, producer, progress_every, keys):
        self.name, self.db, self.producer, self.progress_every = name, db, producer, progress_every
        self.keys = keys
        db.execute(TASKS)

    # --- Kafka side -------------------------------------------------------------------------

    def handle(self, record):
        """Answers one command record. Raises only when nothing could be published, so the
        caller leaves the record uncommitted and retries it."""
        try:
            cmd, (subject, params) = parse_command(record.value, self.name, self.keys)
        except Invalid as e:
            self.dead_letter(record, str(e))
            warn("message dead-lettered", partition=record.partition, offset=record.offset)
            return
        fields = dict(action=cmd["action"], request_id=cmd["request_id"])
        start = time.monotonic()
        try:
            output, again = self.perform(cmd, subject, params)
        except Permanent as e:
            return self.failed(cmd, str(e), True, e.code, e.output, **fields)
        except sqlite3.OperationalError as e:
            busy = "locked" in str(e) or "busy" in str(e)
            return self.failed(cmd, f"sqlite: {e}", False, "busy" if busy else "sqlite", **fields)
        except sqlite3.Error as e:
            return self.failed(cmd, f"sqlite: {type(e).__name__}", False, "sqlite", **fields)
        except OSError as e:
            return self.failed(cmd, f"writing export: {e.strerror or type(e).__name__}", False, "export", **fields)
        except Exception as e:  # anything unforeseen is retried; its text may hold values, so not shown
            log.exception("unexpected error")
            return self.failed(cmd, f"internal error ({type(e).__name__})", False, "internal", **fields)
        self.publish_result(cmd, "succeeded", output=output)
        if again:
            info("command already done; republished its result", **fields)
        else:
            info("command done", duration_ms=round((time.monotonic() - start) * 1000), **fields)

    def failed(self, cmd, message, permanent, code, output=None, **fields):
        self.publish_result(cmd, "failed", output=output,
                            error={"message": message[:2000], "permanent": permanent, "code": code})
        warn("command failed", permanent=permanent, code=code, **fields)

    def publish_result(self, cmd, status, output=None, error=None):
        res = {"schema": "lethe.connector.result", "version": 1}
        for k in ("idempotency_key", "request_id", "tenant_id", "connector", "action", "task_token"):
            res[k] = cmd[k]
        res["status"] = status
        if output is not None:
            res["output"] = output
        if error is not None:
            res["error"] = error
        res["completed_at"] = timestamp()
        self.send(RESULTS_TOPIC, cmd["request_id"], res)

    def dead_letter(self, record, reason):
        dl = {"schema": "lethe.dlq", "version": 1, "reason": reason[:1000],
              "source_topic": record.topic, "partition": record.partition, "offset": record.offset,
              "failed_at": timestamp()}
        if record.key is not None:
            dl["key"] = record.key.decode("utf-8", "replace")
        try:
            dl["value"] = (record.value or b"").decode("utf-8")
        except UnicodeDecodeError:
            dl["value_base64"] = base64.b64encode(record.value).decode()
        self.send(DLQ_TOPIC, f"{record.topic}/{record.partition}", dl)

    def send(self, topic, key, msg):
        # .get() waits for the acknowledgement of all in-sync replicas (acks="all").
        self.producer.send(topic, key=key.encode(), value=json.dumps(msg).encode()).get(timeout=30)

    # --- the action, exactly once -----------------------------------------------------------

    def perform(self, cmd, subject, params):
        """Runs the action in one transaction together with the record of its key. Returns the
        output and whether it had already been done."""
        action = cmd["action"]
        if action not in ACTIONS:
            raise Permanent(f"{action} on connector {self.name}: action not supported by this connector", "unsupported")
        if not isinstance(subject, dict) or not any(subject.get(k) for k in ("email", "phone", "customer_id")):
            raise Permanent("subject has no identifier (email, phone or customer id)")
        params = params or {}
        if not isinstance(params, dict):
            raise Permanent("params must be an object")
        allowed = {"restrict": {"lift"}}.get(action, set())
        if set(params) - allowed:
            raise Permanent(f"{action} takes no params other than {sorted(allowed)}")
        if "lift" in params and not isinstance(params["lift"], bool):
            raise Permanent('param "lift" must be true or false')

        if action == "block_check":
            # No effect, and the answer must be current when Lethe re-checks: never stored.
            return self.block_check(subject), False

        db, key = self.db, cmd["idempotency_key"]
        db.execute("BEGIN IMMEDIATE")  # waits at most --busy-timeout for another writer
        try:
            row = db.execute("SELECT output FROM lethe_tasks WHERE idempotency_key = ?", (key,)).fetchone()
            if row:
                db.execute("COMMIT")
                output = json.loads(row[0])
                if "already_applied" in output.get("result", {}):
                    output["result"]["already_applied"] = True
                return output, True
            output = getattr(self, action)(cmd, subject, params)
            db.execute("INSERT INTO lethe_tasks VALUES (?, ?, ?, ?, ?)",
                       (key, action, cmd["request_id"], json.dumps(output), timestamp()))
            db.execute("COMMIT")
            return output, False
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def access(self, cmd, subject, params):
        directory = export_directory(cmd, self.name)
        ids = newsletter.find(self.db, subject)
        exports, counts, beat = [], {}, time.monotonic()
        for table, columns in (newsletter.TABLES.items() if ids else ()):
            f = TableFile(directory, table, columns)
            try:
                for values in newsletter.rows(self.db, table, ids):
                    f.row(values)
                    if time.monotonic() - beat > self.progress_every:
                        self.publish_result(cmd, "progress")  # a heartbeat for Lethe's activity
                        beat = time.monotonic()
                ref = f.commit()
            except BaseException:
                f.abort()
                raise
            exports.append(ref)
            counts[table] = ref["rows"]
        return {"exports": exports, "counts": counts,
                "result": {"tables": len(exports), "rows": sum(counts.values())}}

    def erase(self, cmd, subject, params):
        ids = newsletter.find(self.db, subject)
        blocks = newsletter.block_check(self.db, ids)
        if blocks:
            raise blocked(blocks)
        changed = newsletter.erase(self.db, ids)
        return {"counts": changed, "result": {
            "already_applied": False, "subjects": len(ids),
            "anonymised": {"sends": changed["sends"]}, "deleted": {"subscribers": changed["subscribers"]},
            "kept": ["sends"]}}

    def restrict(self, cmd, subject, params):
        lift = params.get("lift", False)
        n = newsletter.restrict(self.db, newsletter.find(self.db, subject), lift)
        return {"counts": {"subscribers": n},
                "result": {"already_applied": False, "restricted": not lift, "rows": n}}

    def block_check(self, subject):
        blocks = newsletter.block_check(self.db, newsletter.find(self.db, subject))
        return {"blocks": blocks, "result": {"blocks": blocks}}


class Stop:
    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self.request)
        signal.signal(signal.SIGINT, self.request)

    def request(self, *_):
        self.requested = True


class Assigned(ConsumerRebalanceListener):
    def on_partitions_assigned(self, assigned):
        info("partitions assigned", partitions=len(assigned))

    def on_partitions_revoked(self, revoked):
        info("partitions revoked", partitions=len(revoked))


def serve(args):
    if not NAME.match(args.name):
        sys.exit(f"--name {args.name!r} is not a connector name (lower case letters, digits, '-', '_')")
    keys = parse_keys(os.environ.get(KEYS_ENV))
    stop = Stop()
    brokers = args.brokers.split(",")
    topic = f"lethe.connector.{args.name}.commands"
    db = newsletter.connect(args.db, args.busy_timeout)
    producer = KafkaProducer(bootstrap_servers=brokers, client_id=args.client_id, acks="all",
                             linger_ms=5, retries=5)
    consumer = KafkaConsumer(bootstrap_servers=brokers, client_id=args.client_id,
                             group_id=f"lethe-connector-{args.name}",
                             enable_auto_commit=False,       # commit only after the answer is out
                             auto_offset_reset="earliest",   # a new group misses no command
                             max_poll_records=50)
    connector = Connector(args.name, db, producer, args.progress_every, keys)
    consumer.subscribe([topic], listener=Assigned())
    info("serving", topic=topic)
    backoff = 0.2
    while not stop.requested:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for record in records:
                if stop.requested:
                    break  # the rest stays uncommitted and comes again on the next start
                try:
                    connector.handle(record)
                except Exception as e:
                    # Nothing was published: fetch this record again after a pause.
                    warn("could not publish; retrying", partition=tp.partition, offset=record.offset,
                         error=type(e).__name__, backoff_s=backoff)
                    consumer.seek(tp, record.offset)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30)
                    break
                backoff = 0.2
                try:
                    consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})
                except Exception as e:
                    # Lost the partition in a rebalance: the next owner redelivers and the
                    # stored result answers it.
                    warn("commit failed", partition=tp.partition, offset=record.offset, error=type(e).__name__)
    info("stopping")
    consumer.close(autocommit=False)
    producer.close(timeout=10)
    db.close()


def add_subscriber(args):
    db = newsletter.connect(args.db, args.busy_timeout)
    db.execute("BEGIN IMMEDIATE")
    sid = newsletter.add_subscriber(db, args.email, args.name, args.phone, args.campaign, args.queued)
    db.execute("COMMIT")
    print(sid)


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(description="Lethe example connector for a newsletter kept in SQLite")
    p.add_argument("--db", default=os.environ.get("NEWSLETTER_DB", "newsletter.db"), help="SQLite file")
    p.add_argument("--busy-timeout", type=float, default=5.0,
                   help="seconds to wait for a locked database before failing (transiently)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="consume commands and publish results")
    s.add_argument("--brokers", default=os.environ.get("LETHE_KAFKA_BROKERS", "localhost:9092"))
    s.add_argument("--name", default="newsletter", help="connector name; commands come from lethe.connector.NAME.commands")
    s.add_argument("--client-id", default="lethe-newsletter-connector")
    s.add_argument("--progress-every", type=float, default=10.0, help="seconds between heartbeats of a long access")
    a = sub.add_parser("add-subscriber", help="add a subscriber (demo data)")
    a.add_argument("--email")
    a.add_argument("--name")
    a.add_argument("--phone")
    a.add_argument("--campaign", action="append", default=[], help="a campaign sent to them (repeatable)")
    a.add_argument("--queued", action="append", default=[], help="a campaign queued for them (repeatable; blocks erasure)")
    args = p.parse_args()
    {"serve": serve, "add-subscriber": add_subscriber}[args.command](args)


if __name__ == "__main__":
    main()
