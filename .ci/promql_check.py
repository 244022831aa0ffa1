#!/usr/bin/env python3
"""Checks every PromQL expression of the Grafana dashboard and the alert rules
against a Prometheus that has scraped a real Portcullis server.

For each expression (dashboard panel targets and annotations, templating
queries, rule expressions) it
  1. evaluates it with /api/v1/query and fails on any error;
  2. extracts the metric names it references and fails on any name that is not
     in /api/v1/label/__name__/values, except
       - series Prometheus generates itself (`up`),
       - names recorded by a rule in the rules files,
       - names exported only by an optional backend (BACKEND_ONLY below), which
         are verified against the Rust source instead when absent;
  3. matches each selector's positive label matchers against the metric's
     series: a label no series carries fails; a label value no series carries
     fails for counters (all counters are pre-registered with their label
     values at start-up) and is a warning for gauges and histograms.
It also asserts that every rule of the rules files is loaded and healthy
(/api/v1/rules, health "ok").

Standard library only, except PyYAML for the rules file.
Works with the Prometheus 2.x HTTP API (tested with Debian's 2.42).
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

# Metrics exported only when an optional backend is configured. The check runs
# against an embedded-store server, so when these are absent from Prometheus
# their names are looked up as string literals in the named source file.
BACKEND_ONLY = {
    "portcullis_redis_command_seconds": "storage/src/redis/mod.rs",
    "portcullis_redis_errors_total": "storage/src/redis/mod.rs",
    "portcullis_redis_reconnections_total": "storage/src/redis/mod.rs",
    "portcullis_redis_wait_unacknowledged_total": "storage/src/redis/mod.rs",
    # A cluster user store's nodes (ScyllaDB); the embedded store has none.
    "portcullis_store_nodes": "engine/src/metrics.rs",
}

# Series Prometheus itself generates for every target.
PROMETHEUS_GENERATED = {"up"}

# Labels the scrape adds (job, instance) or the Prometheus Operator adds from
# the ServiceMonitor in Kubernetes (absent in the local check, where a
# `=~".*"` matcher on them matches the empty value).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Values substituted for Grafana's built-in variables.
BUILTIN_VARS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1m",
    "__rate_interval_ms": "60000",
    "__interval_ms": "60000",
    "__range_ms": "60000",
    "__range_s": "60",
}

AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"} | GROUPING | AGGREGATORS


# ------------------------------------------------------------------ HTTP API

class Prometheus:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def _call(self, path, params, post=False):
        data = urllib.parse.urlencode(params, doseq=True)
        if post:
            req = urllib.request.Request(self.base + path, data=data.encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            req = urllib.request.Request(self.base + path + ("?" + data if data else ""))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            # 400/422/503 carry a JSON error body.
            body = e.read()
        try:
            doc = json.loads(body)
        except ValueError:
            return {"status": "error", "error": "not JSON: %r" % body[:200]}
        return doc

    def query(self, expr):
        return self._call("/api/v1/query", {"query": expr, "time": "%.3f" % time.time()}, post=True)

    def names(self):
        doc = self._call("/api/v1/label/__name__/values", {})
        if doc.get("status") != "success":
            raise SystemExit("cannot list metric names: %s" % doc.get("error"))
        return set(doc["data"])

    def series(self, match, since_s=900):
        now = time.time()
        doc = self._call("/api/v1/series", {"match[]": match, "start": "%.3f" % (now - since_s),
                                            "end": "%.3f" % now})
        if doc.get("status") != "success":
            raise SystemExit("cannot list series of %s: %s" % (match, doc.get("error")))
        return doc["data"]

    def rules(self):
        doc = self._call("/api/v1/rules", {})
        if doc.get("status") != "success":
            raise SystemExit("cannot list rules: %s" % doc.get("error"))
        return doc["data"]["groups"]


# ------------------------------------------------------------------ PromQL scanning

def _read_string(s, i):
    """Returns (value, index after the closing quote) for a string at s[i]."""
    quote = s[i]
    j = i + 1
    out = []
    while j < len(s):
        c = s[j]
        if c == "\\" and quote != "`" and j + 1 < len(s):
            out.append(s[j + 1])
            j += 2
            continue
        if c == quote:
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise ValueError("unterminated string")


def _read_until(s, i, close):
    """Returns (content, index after `close`) for a bracket opened at s[i]."""
    j = i + 1
    while j < len(s):
        c = s[j]
        if c in "\"'`":
            _, j = _read_string(s, j)
            continue
        if c == close:
            return s[i + 1:j], j + 1
        j += 1
    raise ValueError("unclosed %r" % s[i])


def tokenize(expr):
    toks = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and expr[i] != "\n":
                i += 1
        elif c in "\"'`":
            val, i = _read_string(expr, i)
            toks.append(("str", val))
        elif c == "{":
            body, i = _read_until(expr, i, "}")
            toks.append(("braces", body))
        elif c == "[":
            body, i = _read_until(expr, i, "]")
            toks.append(("range", body))
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            toks.append(("ident", expr[i:j]))
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "._"):
                j += 1
            toks.append(("num", expr[i:j]))
            i = j
        else:
            toks.append(("op", c))
            i += 1
    return toks


MATCHER_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*')


def parse_matchers(body):
    """`a="x", b=~"y"` -> [("a", "=", "x"), ("b", "=~", "y")]."""
    out = []
    i = 0
    while i < len(body):
        if body[i] in " \t\n,":
            i += 1
            continue
        m = MATCHER_RE.match(body, i)
        if not m or m.end() >= len(body) or body[m.end()] not in "\"'`":
            raise ValueError("cannot parse label matchers {%s}" % body)
        value, i = _read_string(body, m.end())
        out.append((m.group(1), m.group(2), value))
    return out


def selectors(expr):
    """Returns [(metric name, matchers)] for every vector selector in expr."""
    toks = tokenize(expr)
    out = []
    i = 0
    while i < len(toks):
        kind, val = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident":
            low = val.lower()
            if low in GROUPING and nxt == ("op", "("):
                # Label list of by/without/on/ignoring/group_left/group_right.
                depth, i = 0, i + 1
                while i < len(toks):
                    if toks[i] == ("op", "("):
                        depth += 1
                    elif toks[i] == ("op", ")"):
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
            elif low in KEYWORDS or nxt == ("op", "("):
                pass  # keyword, aggregation operator or function call
            else:
                matchers = parse_matchers(nxt[1]) if nxt[0] == "braces" else []
                out.append((val, matchers))
                if nxt[0] == "braces":
                    i += 1
        elif kind == "braces":
            # Selector without a leading name: {__name__="..."}.
            matchers = parse_matchers(val)
            names = [v for (k, op, v) in matchers if k == "__name__" and op == "="]
            rest = [m for m in matchers if m[0] != "__name__"]
            if names:
                out.append((names[0], rest))
            else:
                raise ValueError("selector without an exact metric name: {%s}" % val)
        i += 1
    return out


# ------------------------------------------------------------------ Grafana

VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def grafana_vars(dash):
    values = dict(BUILTIN_VARS)
    for v in dash.get("templating", {}).get("list", []):
        name, typ = v.get("name"), v.get("type")
        cur = v.get("current") or {}
        val = cur.get("value")
        if isinstance(val, list):
            val = val[0] if len(val) == 1 else None
        if typ in ("interval", "custom", "constant", "textbox") and val and val != "$__all":
            values[name] = str(val)
        elif typ == "interval":
            opts = [o.strip() for o in str(v.get("query", "")).split(",") if o.strip()]
            values[name] = opts[0] if opts else "1m"
        else:
            # query, datasource, adhoc, "All": a regex matching everything.
            values[name] = ".*"
    return values


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise ValueError("undefined Grafana variable $%s" % name)
        return values[name]
    return VAR_RE.sub(repl, expr)


def split_top_level_comma(s):
    depth, i = 0, 0
    last = None
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            _, i = _read_string(s, i)
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            last = i
        i += 1
    return (s, None) if last is None else (s[:last].strip(), s[last + 1:].strip())


def templating_expr(query):
    """Maps a Prometheus variable query to (PromQL or None, label name or None)."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*)\)", q, re.S)
    if m:
        sel, label = split_top_level_comma(m.group(1))
        if label is None:
            return None, sel  # label_values(label): no metric to check
        return sel, label
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return m.group(1), None
    if re.fullmatch(r"(metrics|label_names)\(.*\)", q, re.S):
        return None, None
    return q, None


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_exprs(dash):
    """Yields (where, raw expr, label name of label_values or None)."""
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield ("panel %r target %s" % (p.get("title"), t.get("refId")), t["expr"], None)
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if not q:
            continue
        expr, label = templating_expr(q)
        if expr:
            yield ("variable $%s" % v.get("name"), expr, label)
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            yield ("annotation %r" % a.get("name"), a["expr"], None)


# ------------------------------------------------------------------ checks

def family(name):
    for suf in HISTOGRAM_SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def matcher_ok(op, pattern, value):
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value, re.S) is not None
    return hit if op == "=~" else not hit


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9091")
    ap.add_argument("--dashboard", required=True, action="append", help="Grafana dashboard JSON (repeatable)")
    ap.add_argument("--rules", required=True, action="append", help="plain Prometheus rules file (repeatable)")
    ap.add_argument("--repo-root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="where BACKEND_ONLY source paths are relative to")
    ap.add_argument("--rules-timeout", type=float, default=20.0,
                    help="seconds to wait for every rule to have been evaluated once")
    args = ap.parse_args()

    prom = Prometheus(args.prometheus)
    failures = []
    warnings = []

    # Collect expressions.
    exprs = []  # (where, expr after substitution, label_values label)
    for path in args.dashboard:
        with open(path) as f:
            dash = json.load(f)
        values = grafana_vars(dash)
        for where, raw, label in dashboard_exprs(dash):
            where = "%s: %s" % (os.path.basename(path), where)
            try:
                exprs.append((where, substitute(raw, values), label))
            except ValueError as e:
                failures.append("%s: %s" % (where, e))
    rule_names = []  # (group, name)
    recorded = set()
    for path in args.rules:
        with open(path) as f:
            doc = yaml.safe_load(f)
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                name = r.get("alert") or r.get("record")
                rule_names.append((g["name"], name))
                if "record" in r:
                    recorded.add(r["record"])
                exprs.append(("%s: rule %s" % (os.path.basename(path), name), str(r["expr"]), None))

    # 1. Evaluate.
    with_data = 0
    for where, expr, _ in exprs:
        doc = prom.query(expr)
        if doc.get("status") != "success":
            failures.append("%s: query failed (%s): %s\n      %s" % (
                where, doc.get("errorType", "?"), doc.get("error"), " ".join(expr.split())))
            continue
        for w in doc.get("warnings") or []:
            warnings.append("%s: Prometheus warning: %s" % (where, w))
        if doc["data"]["result"] not in ([], None):
            with_data += 1

    # 2. Metric names.
    exported = prom.names()
    used = {}  # name -> [(where, matchers)]
    for where, expr, label in exprs:
        try:
            sels = selectors(expr)
        except ValueError as e:
            failures.append("%s: cannot scan expression: %s" % (where, e))
            continue
        if not sels:
            warnings.append("%s: references no metric: %s" % (where, " ".join(expr.split())))
        for name, matchers in sels:
            used.setdefault(name, []).append((where, matchers, label))

    checked, skipped, missing = [], [], {}
    source_cache = {}
    for name in sorted(used):
        if name in exported:
            checked.append(name)
        elif name in PROMETHEUS_GENERATED:
            skipped.append((name, "generated by Prometheus"))
        elif name in recorded:
            skipped.append((name, "recorded by a rule"))
        elif family(name) in BACKEND_ONLY:
            src = BACKEND_ONLY[family(name)]
            if src not in source_cache:
                try:
                    with open(os.path.join(args.repo_root, src)) as f:
                        source_cache[src] = f.read()
                except OSError as e:
                    source_cache[src] = ""
                    failures.append("cannot read %s: %s" % (src, e))
            if '"%s"' % family(name) in source_cache[src]:
                skipped.append((name, "backend-only, found in source %s" % src))
            else:
                missing[name] = used[name]
                failures.append("%s: listed as backend-only but \"%s\" is not in %s"
                                % (name, family(name), src))
        else:
            missing[name] = used[name]
    for name, uses in sorted(missing.items()):
        if family(name) in BACKEND_ONLY:
            continue
        wheres = sorted({u[0] for u in uses})
        failures.append("metric %s is not exported (used by %s)" % (name, "; ".join(wheres)))

    # 3. Label matchers against the metric's series.
    for name in checked:
        series = prom.series(name)
        label_names = set().union(*[set(s) for s in series]) if series else set()
        for where, matchers, tv_label in used[name]:
            if tv_label and tv_label not in label_names and tv_label not in TARGET_LABELS:
                failures.append("%s: label_values label %r is not a label of %s" % (where, tv_label, name))
            positive = [m for m in matchers if m[1] in ("=", "=~")]
            if not positive or any(all(matcher_ok(op, pat, s.get(k, "")) for k, op, pat in positive)
                                   for s in series):
                continue
            for k, op, pat in positive:
                if k in label_names or k in TARGET_LABELS or matcher_ok(op, pat, ""):
                    continue
                failures.append("%s: %s has no label %r (labels: %s)"
                                % (where, name, k, ", ".join(sorted(label_names - {"__name__"}))))
                break
            else:
                desc = ", ".join('%s%s"%s"' % m for m in positive)
                msg = "%s: {%s} matches no series of %s" % (where, desc, name)
                if family(name).endswith("_total"):
                    failures.append(msg + " (counters are pre-registered, so this is a wrong label value)")
                else:
                    warnings.append(msg)

    # 4. Rules loaded and healthy.
    deadline = time.time() + args.rules_timeout
    while True:
        loaded = {}
        for g in prom.rules():
            for r in g.get("rules", []):
                loaded[(g["name"], r["name"])] = r
        pending = [k for k in rule_names if k not in loaded or loaded[k].get("health") == "unknown"]
        if not pending or time.time() > deadline:
            break
        time.sleep(0.5)
    firing, healthy = [], 0
    for key in rule_names:
        r = loaded.get(key)
        if r is None:
            failures.append("rule %s/%s is not loaded by Prometheus" % key)
        elif r.get("health") != "ok":
            failures.append("rule %s/%s: health %r: %s" % (key[0], key[1], r.get("health"), r.get("lastError", "")))
        else:
            healthy += 1
            if r.get("type") == "alerting" and r.get("state") in ("pending", "firing"):
                firing.append("%s (%s)" % (key[1], r["state"]))

    # Summary.
    unused = sorted({family(n) for n in exported if n.startswith("portcullis_")}
                    - {family(n) for n in used})
    print("PromQL check against %s" % args.prometheus)
    print("  %d expressions evaluated (%d returned data); %d of %d rules loaded and healthy"
          % (len(exprs), with_data, healthy, len(rule_names)))
    print("  %d metric names checked, exported: %s" % (len(checked), ", ".join(checked)))
    by_reason = {}
    for name, why in skipped:
        by_reason.setdefault(why, []).append(name)
    print("  %d skipped" % len(skipped))
    for why, names in by_reason.items():
        print("    skipped (%s): %s" % (why, ", ".join(names)))
    if firing:
        print("  alerts pending/firing now: %s" % ", ".join(firing))
    if unused:
        print("  exported but used by no panel or rule: %s" % ", ".join(unused))
    for w in warnings:
        print("  warning: %s" % w)
    if failures:
        missing_names = sorted(n for n in missing if family(n) not in BACKEND_ONLY)
        print("FAILED: %d problem(s)" % len(failures))
        for f in failures:
            print("  - %s" % f)
        if missing_names:
            print("  missing metric names: %s" % " ".join(missing_names))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
