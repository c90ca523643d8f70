#!/usr/bin/env python3
"""The DDL of `tlscensus schema clickhouse` and the rows `--events clickhouse://` sends, on a
current ClickHouse release: chdb-core (PyPI), ClickHouse's engine in process. For
tests/clickhouse.rs, which runs the same against Debian's 18.16 server; this covers the
other end of "18.16 and current releases" (the HTTP interface itself is not exercised).

Usage: clickhouse_current.py DDL.sql SPOOL_DIR
  Runs the DDL's statements, inserts every spooled batch (JSONEachRow) twice, as a retry
  would, and prints JSON: the engine's version, rows stored, rows under FINAL, the census
  view's sum of connections, the tables made, and the records read back under FINAL.
"""
import glob
import json
import sys
import tempfile

from chdb import session

ddl_path, spool = sys.argv[1], sys.argv[2]
db = session.Session(tempfile.mkdtemp())


def one(query):
    return db.query(query, "TabSeparatedRaw").data().strip()


for statement in open(ddl_path).read().split(";"):
    body = "\n".join(l for l in statement.splitlines() if not l.startswith("--")).strip()
    if body:
        db.query(body)
batches = sorted(glob.glob(spool + "/*.jsonl"))
for _ in range(2):
    for batch in batches:
        db.query("INSERT INTO tls.events FORMAT JSONEachRow " + open(batch).read())
json.dump({
    "version": one("SELECT version()"),
    "stored": int(one("SELECT count() FROM tls.events")),
    "final": int(one("SELECT count() FROM tls.events FINAL")),
    "census_connections": int(one("SELECT sum(connections) FROM tls.events_census")),
    "tables": one("SELECT name FROM system.tables WHERE database = 'tls' ORDER BY name").split("\n"),
    "records": one("SELECT record FROM tls.events FINAL").split("\n"),
}, sys.stdout)
