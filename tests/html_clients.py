"""The independent side of tests/html_clients.rs: what the HTML per-client view must show,
worked out from the CSV report with Python's csv module, and the page's DOM and downloaded
CSV read back with Python's html.parser and csv.

  html_clients.py expect REPORT.csv CASES.json  the clients each filter case must list,
                                                and the download's rows (JSON on stdout)
  html_clients.py dom PAGE.html                  the per-client table's rows as the DOM has them
  html_clients.py download FILE.csv              a downloaded CSV's header and rows

A client is (ip, via, direction), as the CSV report's rows name it. Its download row sums
the counts of its report rows, joins the lists, and keeps the client-wide cells, as the
README describes the view. Search: case-insensitive substring of any of the columns the
README lists, taken before formula neutralisation.
"""

import csv
import json
import re
import sys
from html.parser import HTMLParser

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Client-wide cells: the same on each of a client's rows.
CLIENT_WIDE = ["primary", "categories", "would_fail", "would_fail_reasons", "names",
               "software", "software_advice"]
SUMMED = ["connections", "plaintext", "failed", "incomplete", "weak_cipher", "negotiated_only"]
COUNTED = ["plaintext_reasons", "failure_reasons"]
# `; `-joined sets of values, in value order; cipher suites are ordered by their code,
# which the report shows as a name, so only their set is compared.
LISTS = ["sni", "alpn", "ja4", "servers", "sources"]
UNORDERED = ["cipher_suites"]
# The caps the README states for these sets ("The categories, and what to do"): a set keeps
# the cap smallest values and counts the other connections, `(+N more connections)`.
CAPS = {"sni": 32, "alpn": 16, "ja4": 32, "servers": 32}
MORE = re.compile(r" ?\(\+\d+ more connections\)$")
SEARCHED = ["ip", "via", "services", "sni", "alpn", "ja4", "servers", "names", "software",
            "software_advice"]


def unneutralise(cell):
    if cell.startswith("'") and cell[1:].startswith(FORMULA_START):
        return cell[1:]
    return cell


def neutralise(cell):
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def split(cell):
    return [v for v in cell.split("; ") if v]


def key_of(row):
    return (row["ip"], row["via"], row["direction"])


def aggregate(report_rows, header):
    """Download rows per client key, raw (not neutralised)."""
    by_client = {}
    for row in report_rows:
        by_client.setdefault(key_of(row), []).append(row)
    out = {}
    for key, rows in by_client.items():
        agg = {"ip": key[0], "via": key[1], "direction": key[2]}
        for col in CLIENT_WIDE:
            values = {r[col] for r in rows}
            assert len(values) == 1, (key, col, values)
            agg[col] = values.pop()
        agg["services"] = "; ".join(sorted(r["service"] for r in rows))
        for col in SUMMED + [c for c in header if c.startswith(("offered_", "negotiated_"))
                             and c != "negotiated_only"]:
            agg[col] = str(sum(int(r[col]) for r in rows))
        for col in COUNTED:
            total = {}
            for r in rows:
                for item in split(r[col]):
                    reason, n = item.rsplit(": ", 1)
                    total[reason] = total.get(reason, 0) + int(n)
            agg[col] = "; ".join(f"{k}: {n}" for k, n in sorted(total.items()))
        for col in UNORDERED:
            values = set()
            for r in rows:
                assert "(+" not in r[col], (key, col, "a capped cell: its union is unknown")
                values.update(split(r[col]))
            agg[col] = "; ".join(sorted(values))
        for col in LISTS:
            values, capped = set(), False
            for r in rows:
                kept, marker = MORE.subn("", r[col])
                values.update(split(kept))
                capped |= marker > 0
            values = sorted(values)
            cap = CAPS.get(col)
            capped |= cap is not None and len(values) > cap
            agg[col] = "; ".join(values[:cap])
            if capped:
                # The cap's smallest values are kept; how many connections the others had
                # is not in the report's rows, so the test compares up to the count.
                agg[col] += " (+"
        firsts = [r["first_seen"] for r in rows if r["first_seen"]]
        lasts = [r["last_seen"] for r in rows if r["last_seen"]]
        agg["first_seen"] = min(firsts) if firsts else ""
        agg["last_seen"] = max(lasts) if lasts else ""
        missing = set(header) - set(agg)
        assert not missing, missing
        out[key] = agg
    return out


def matches(agg, case):
    if case.get("category") and case["category"] not in split(agg["categories"]):
        return False
    if case.get("direction") and agg["direction"] != case["direction"]:
        return False
    if case.get("service") and case["service"] not in split(agg["services"]):
        return False
    q = case.get("q", "").strip().lower()
    if q and not any(q in agg[col].lower() for col in SEARCHED):
        return False
    return True


def expect(report, cases_file):
    with open(report, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        report_header = reader.fieldnames
        rows = [{k: unneutralise(v) for k, v in r.items()} for r in reader]
    # The download's columns: the report's, with `services` for `service` and
    # `service_categories`.
    header = []
    for col in report_header:
        if col == "service":
            header.append("services")
        elif col != "service_categories":
            header.append(col)
    clients = aggregate(rows, header)
    with open(cases_file, encoding="utf-8") as f:
        cases = json.load(f)
    result = {"header": header, "clients": len(clients), "cases": []}
    for case in cases:
        keys = sorted(k for k, agg in clients.items() if matches(agg, case))
        result["cases"].append({
            "case": case,
            "keys": [list(k) for k in keys],
            # What a spreadsheet must read from the download: neutralised cells.
            "rows": [{c: neutralise(clients[k][c]) for c in header} for k in keys],
        })
    # Values to search for, picked from the data: a name, a software hint, a JA4 prefix.
    result["samples"] = {
        col: sorted({split(a[col])[0] for a in clients.values() if split(a[col])})
        for col in ["names", "software", "ja4", "sni", "services"]
    }
    json.dump(result, sys.stdout)


class ClientTable(HTMLParser):
    """Rows of <table id="client-table">: their data-* attributes and cell texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_table = self.in_body = False
        self.rows, self.cell, self.view = [], None, {}
        self.tags_in_body = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("id") == "client-view":
            self.view = a
        if tag == "table" and a.get("id") == "client-table":
            self.in_table = True
        elif self.in_table and tag == "tbody":
            self.in_body = True
        elif self.in_body:
            self.tags_in_body.append(tag)
            if tag == "tr":
                self.rows.append({"ip": a.get("data-ip"), "via": a.get("data-via"),
                                  "direction": a.get("data-direction"), "cells": []})
            elif tag == "td":
                self.cell = []

    def handle_endtag(self, tag):
        if self.in_body and tag == "td" and self.cell is not None:
            self.rows[-1]["cells"].append("".join(self.cell))
            self.cell = None
        elif tag == "tbody" and self.in_body:
            self.in_body = False
        elif tag == "table" and self.in_table:
            self.in_table = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def dom(page):
    parser = ClientTable()
    with open(page, encoding="utf-8") as f:
        parser.feed(f.read())
    json.dump({"view": parser.view, "rows": parser.rows,
               "tags": sorted(set(parser.tags_in_body))}, sys.stdout)


def download(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    json.dump({"header": reader.fieldnames, "rows": rows}, sys.stdout)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "expect":
        expect(sys.argv[2], sys.argv[3])
    elif command == "dom":
        dom(sys.argv[2])
    elif command == "download":
        download(sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")
