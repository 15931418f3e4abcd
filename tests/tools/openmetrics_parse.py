#!/usr/bin/env python3
"""Parses an OpenMetrics exposition (stdin) with the reference parser of
Python's `prometheus_client` and prints what it found as one JSON object:

    {"families": {name: type}, "histograms": [{"name", "labels", "count",
     "sum", "buckets": [[le, cumulative_count], ...]}]}

The parser is strict (it rejects, among others, a histogram whose +Inf
bucket differs from its _count, or a missing `# EOF`); a rejection exits 1
with the parser's message on stderr. Used by tests/metrics.rs and
loadtest/tests/metrics_agree.rs.
"""
import json
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:  # the caller turns this into an install hint
    print(f"missing python package prometheus_client: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    text = sys.stdin.read()
    families = {}
    histograms = []
    try:
        for fam in text_string_to_metric_families(text):
            families[fam.name] = fam.type
            if fam.type != "histogram":
                continue
            series = {}
            for s in fam.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                h = series.setdefault(key, {"name": fam.name, "labels": dict(key),
                                            "buckets": [], "count": None, "sum": None})
                if s.name.endswith("_bucket"):
                    h["buckets"].append([float(s.labels["le"]), s.value])
                elif s.name.endswith("_count"):
                    h["count"] = s.value
                elif s.name.endswith("_sum"):
                    h["sum"] = s.value
            histograms.extend(series.values())
    except Exception as e:  # the parser's verdict
        print(f"OpenMetrics parser rejected the exposition: {e}", file=sys.stderr)
        sys.exit(1)
    # +Inf is not JSON: write it as null
    for h in histograms:
        h["buckets"] = [[None if le == float("inf") else le, c] for le, c in h["buckets"]]
    json.dump({"families": families, "histograms": histograms}, sys.stdout)


if __name__ == "__main__":
    main()
