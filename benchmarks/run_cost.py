"""What a run's steps cost, as recorded in its step cache, beside what its calibration estimated for them.

A run that spans sessions or restarts has no meaningful wall-clock time; the sum of the compute times its steps
recorded is what a fresh-cache run on a quiet machine would take (plus model loading and the final report).
A ratio above 1 for a class means those steps ran slower than calibrated (e.g. another job shared the CPU).

Usage: python benchmarks/run_cost.py OUTPUT [--source-lang en]   (OUTPUT holds cache/ and calibration.json)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adamergex.pipeline.estimate import format_measured, measured_steps, read_calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--source-lang", default="en")
    args = parser.parse_args()
    calibration = read_calibration(args.output)
    if calibration is None:
        raise SystemExit(f"error: {args.output} has no calibration.json; run the config with --dry-run --calibrate")
    steps = measured_steps(args.output / "cache", calibration, args.source_lang)
    print(f"{args.output}: {len(steps)} sealed steps; calibration of {calibration.created}")
    print("\n".join(format_measured(steps)))


if __name__ == "__main__":
    main()
