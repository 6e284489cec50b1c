"""`make bench`: every figure the issues ask for, as ratios against baselines measured in
the same run. Medians throughout: the machines are shared and noisy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    results: dict[str, dict] = {}
    print("== Analyzer (issue 2) ==")
    import bench_analyzer

    results["analyzer"] = bench_analyzer.run()
    print("\n== Hostile files: the work bound per file (issue 14) ==")
    import bench_hostile

    results["hostile"] = bench_hostile.run()
    print("\n== Scan, whole process (issue 13) ==")
    import bench_scan

    results["scan"] = bench_scan.run()
    print("\n== Pipeline (issue 3) ==")
    import bench_pipeline

    results["pipeline"] = bench_pipeline.run()
    print("\n== Cold start: tables from the deployment, not the worker (issue 23) ==")
    import bench_coldstart

    results["coldstart"] = bench_coldstart.run()
    bench_coldstart.print_summary(results["coldstart"])
    print("\n== Alerts (issue 4) ==")
    import bench_alerts

    results["alerts"] = bench_alerts.run()
    bench_alerts.print_summary(results["alerts"])
    print("\n== Live pull and the pass after it (issue 22) ==")
    import bench_pull

    results["pull"] = bench_pull.run()
    bench_pull.print_summary(results["pull"])
    print("\n== Fleet report (issue 11) ==")
    import bench_report

    results["report"] = bench_report.run()
    out = Path(__file__).resolve().parent.parent / ".bench.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nAll figures: {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
