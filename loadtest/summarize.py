#!/usr/bin/env python3
"""Prints medians per server from tickwire-load --json lines (one file)."""
import json, statistics, sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    rows.setdefault(r["server"], []).append(r)

def med(runs, f):
    vals = [v for v in (f(r) for r in runs) if v is not None]
    return statistics.median(vals) if vals else None

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

print(f"| server | runs | deliveries/s | % offered | gaps | missed | p50 ms | p99 ms | p99.9 ms | RSS MB | RSS/client KiB | CPU-s per 1M | client CPU % | events/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
base = None
for server, runs in rows.items():
    if "skipped" in runs[0]:
        print(f"| {server} | - | skipped: {runs[0]['skipped']} |" + " |" * 11)
        continue
    d = med(runs, lambda r: r["deliveries_per_s"])
    if server == "tickwire":
        base = d
    print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        server, len(runs), fmt(d, ",.0f"),
        fmt(med(runs, lambda r: r["pct_of_offered"]), ".1f"),
        sum(r["gaps"] for r in runs),
        # median messages missed inside gaps (older lines lack it)
        fmt(med(runs, lambda r: r.get("missed")), ",.0f"),
        fmt(med(runs, lambda r: r["latency_ms"]["p50"]), ".2f"),
        fmt(med(runs, lambda r: r["latency_ms"]["p99"]), ".2f"),
        fmt(med(runs, lambda r: r["latency_ms"]["p99_9"]), ".2f"),
        fmt(med(runs, lambda r: r["server_rss_max_kib"] / 1024), ".1f"),
        fmt(med(runs, lambda r: r["rss_per_client_kib"]), ".2f"),
        fmt(med(runs, lambda r: r["server_cpu_s_per_million"]), ".2f"),
        fmt(med(runs, lambda r: r.get("client_cpu_pct")), ".0f"),
        fmt(med(runs, lambda r: r["events_published_per_s"]), ",.0f"),
    ))
if base:
    for server, runs in rows.items():
        if server != "tickwire" and "skipped" not in runs[0]:
            d = med(runs, lambda r: r["deliveries_per_s"])
            if d:
                print(f"\ntickwire / {server} deliveries: {base / d:.2f}x", end="")
    print()
