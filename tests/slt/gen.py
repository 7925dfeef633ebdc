#!/usr/bin/env python3
"""Generate Sluice's sqllogictest files, using SQLite as the oracle.

Templates live in tests/slt/src/NAME.slt.in.  A template is an ordinary
.slt file whose `query` records have no `----` result section: each record
is a header line, then the SQL, ended by a blank line.  Supported records:

    statement ok            the SQL must succeed in SQLite
    statement error         the SQL must fail in SQLite
    query <types> <sort>    types: one of I/R/T per column;
                            sort: nosort | rowsort | valuesort

Lines starting with '#' outside records are copied through as comments.

For every template, gen.py runs all records in order against one fresh
in-memory SQLite database and writes tests/slt/NAME.slt, where each query
record is followed by `----`, its result rows (one row per line, values
separated by one space) and a blank line.  Formatting:
    NULL -> NULL, '' -> (empty), R -> '%.3f', I -> integer, T -> as is.
    rowsort sorts the rows (as lists of their printed values); valuesort
    (single-column queries only) sorts the values; nosort keeps the order.

Safety checks (the generator aborts on any of these):
  * a declared column type that does not match what SQLite returned
    (I must be an integer, or an integral float; R must be a float;
    T must be a string; BLOB results are refused);
  * a text value containing whitespace (it would make the space-separated
    row format ambiguous) or a REAL value whose third decimal sits on a
    rounding tie, or prints as -0.000;
  * a result that changes when SQLite scans tables in reverse order
    (PRAGMA reverse_unordered_selects): for nosort this means the ORDER BY
    is not a total order, for the other modes a LIMIT without a total order;
  * a result that changes under PRAGMA case_sensitive_like (SQLite's LIKE
    is case-insensitive by default; the corpus must not depend on that);
  * a query with more than MAX_ROWS rows.

Usage:
    python3 tests/slt/gen.py            # regenerate every template
    python3 tests/slt/gen.py joins dml  # only these
    python3 tests/slt/gen.py --check    # exit 1 if any output is stale
"""

import math
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
MAX_ROWS = 60


class GenError(Exception):
    pass


def parse(text, name):
    """Split a template into a list of items: ('comment', line),
    ('blank',), ('statement', kind, sql, lineno), ('query', types, sort, sql, lineno)."""
    lines = text.split("\n")
    items = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped == "":
            items.append(("blank",))
            i += 1
            continue
        if stripped.startswith("#"):
            items.append(("comment", line.rstrip()))
            i += 1
            continue
        header = stripped.split()
        start = i + 1
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "":
            if lines[i].strip() == "----":
                raise GenError(f"{name}:{i+1}: templates must not contain '----'")
            body.append(lines[i].rstrip())
            i += 1
        if not body:
            raise GenError(f"{name}:{start}: record without SQL")
        sql = "\n".join(body)
        if header[0] == "statement":
            if len(header) != 2 or header[1] not in ("ok", "error"):
                raise GenError(f"{name}:{start}: bad header {stripped!r}")
            items.append(("statement", header[1], sql, start))
        elif header[0] == "query":
            if len(header) != 3:
                raise GenError(f"{name}:{start}: query header needs types and sort mode")
            types, sort = header[1], header[2]
            if not types or any(c not in "IRT" for c in types):
                raise GenError(f"{name}:{start}: bad column types {types!r}")
            if sort not in ("nosort", "rowsort", "valuesort"):
                raise GenError(f"{name}:{start}: bad sort mode {sort!r}")
            if sort == "valuesort" and len(types) != 1:
                raise GenError(f"{name}:{start}: valuesort only for one-column queries")
            items.append(("query", types, sort, sql, start))
        else:
            raise GenError(f"{name}:{start}: unknown record {stripped!r}")
    return items


def fmt(value, t, where):
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise GenError(f"{where}: BLOB value in result; select something else")
    if t == "I":
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise GenError(f"{where}: non-integral REAL {value!r} in an I column")
            value = int(value)
        if not isinstance(value, int):
            raise GenError(f"{where}: {value!r} in an I column")
        return str(value)
    if t == "R":
        if not isinstance(value, float):
            raise GenError(f"{where}: {value!r} ({type(value).__name__}) in an R column")
        if math.isnan(value) or math.isinf(value):
            raise GenError(f"{where}: non-finite REAL {value!r}")
        scaled = abs(value) * 1000.0
        frac = scaled - math.floor(scaled)
        if abs(frac - 0.5) < 1e-6:
            raise GenError(f"{where}: REAL {value!r} is a rounding tie at 3 decimals")
        s = "%.3f" % value
        if s == "-0.000":
            raise GenError(f"{where}: REAL {value!r} prints as -0.000")
        return s
    # T
    if not isinstance(value, str):
        raise GenError(f"{where}: {value!r} ({type(value).__name__}) in a T column")
    if value == "":
        return "(empty)"
    if any(c.isspace() for c in value):
        raise GenError(f"{where}: text value {value!r} contains whitespace")
    return value


def run_query(conn, sql):
    cur = conn.execute(sql)
    rows = cur.fetchall()
    ncols = len(cur.description) if cur.description else 0
    return ncols, rows


def format_rows(rows, types, sort, where):
    out = [[fmt(v, types[j], where) for j, v in enumerate(r)] for r in rows]
    if sort == "rowsort":
        out.sort()
    elif sort == "valuesort":
        out = [[v] for v in sorted(v for r in out for v in r)]
    return out


def generate(name):
    src_path = os.path.join(SRC, name + ".slt.in")
    with open(src_path) as f:
        text = f.read()
    items = parse(text, name)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    out = [
        f"# Generated by tests/slt/gen.py from tests/slt/src/{name}.slt.in",
        f"# with SQLite {sqlite3.sqlite_version} as the oracle. Do not edit by hand:",
        "# edit the template and rerun `python3 tests/slt/gen.py`.",
        "",
    ]
    nqueries = 0
    for item in items:
        kind = item[0]
        if kind == "blank":
            if out and out[-1] != "":
                out.append("")
            continue
        if kind == "comment":
            out.append(item[1])
            continue
        if kind == "statement":
            _, expect, sql, line = item
            where = f"{name}.slt.in:{line}"
            try:
                conn.execute(sql)
                ok = True
                err = None
            except sqlite3.Error as e:
                ok = False
                err = e
            if expect == "ok" and not ok:
                raise GenError(f"{where}: statement failed in SQLite: {err}\n{sql}")
            if expect == "error" and ok:
                raise GenError(f"{where}: statement expected to fail but succeeded\n{sql}")
            out.append(f"statement {expect}")
            out.append(sql)
            out.append("")
            continue
        # query
        _, types, sort, sql, line = item
        where = f"{name}.slt.in:{line}"
        nqueries += 1
        try:
            ncols, rows = run_query(conn, sql)
        except sqlite3.Error as e:
            raise GenError(f"{where}: query failed in SQLite: {e}\n{sql}")
        if ncols != len(types):
            raise GenError(f"{where}: {len(types)} column types declared, query has {ncols}")
        if len(rows) > MAX_ROWS:
            raise GenError(f"{where}: {len(rows)} rows; keep results under {MAX_ROWS}")
        result = format_rows(rows, types, sort, where)
        # Determinism check: reverse unordered scans.
        conn.execute("PRAGMA reverse_unordered_selects = 1")
        try:
            _, rows2 = run_query(conn, sql)
        finally:
            conn.execute("PRAGMA reverse_unordered_selects = 0")
        if format_rows(rows2, types, sort, where) != result:
            raise GenError(
                f"{where}: result depends on scan order "
                f"({'ORDER BY is not total' if sort == 'nosort' else 'LIMIT without total order?'})\n{sql}")
        # LIKE must not depend on case-insensitivity.
        conn.execute("PRAGMA case_sensitive_like = 1")
        try:
            _, rows3 = run_query(conn, sql)
        finally:
            conn.execute("PRAGMA case_sensitive_like = 0")
        if format_rows(rows3, types, sort, where) != result:
            raise GenError(f"{where}: result depends on LIKE case-insensitivity\n{sql}")
        out.append(f"query {types} {sort}")
        out.append(sql)
        out.append("----")
        for r in result:
            out.append(" ".join(r))
        out.append("")
    conn.close()
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n", nqueries


def main(argv):
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")]
    if not names:
        names = sorted(f[: -len(".slt.in")] for f in os.listdir(SRC) if f.endswith(".slt.in"))
    stale = []
    total = 0
    for name in names:
        try:
            content, n = generate(name)
        except GenError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        total += n
        dst = os.path.join(HERE, name + ".slt")
        if check:
            try:
                with open(dst) as f:
                    current = f.read()
            except FileNotFoundError:
                current = None
            if current != content:
                stale.append(name)
            print(f"{name}.slt: {n} queries{' (STALE)' if current != content else ''}")
        else:
            with open(dst, "w") as f:
                f.write(content)
            print(f"{name}.slt: {n} queries")
    print(f"total: {total} queries, SQLite {sqlite3.sqlite_version}")
    if stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
