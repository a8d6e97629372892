"""Step-cache integrity cost: sealing (sha256 of every file) and verifying (re-hashing) on realistic sizes.

Entries are the demo's (``configs/demo.yaml``) on Gemma-3-270M shapes (hidden 640, intermediate 2048, 18 layers,
1 key/value head of 256, 4 query heads of 256): 8 trained LoRA adapters of r 8 on q, k, v, o, gate, up, down,
30 merged adapters (rank 24 for concat, the largest), and 150 evaluation results of a few KB. Files hold random
float32 bytes; hashing cost does not depend on content.

Usage: python benchmarks/cache.py [--workdir DIR] [--merges N] [--evals N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from adamergex.pipeline.cache import StepCache, step_key

# module → (in_features, out_features) on Gemma-3-270M
SHAPES = {"q_proj": (640, 1024), "k_proj": (640, 256), "v_proj": (640, 256), "o_proj": (1024, 640),
          "gate_proj": (640, 2048), "up_proj": (640, 2048), "down_proj": (2048, 640)}  # fmt: skip
LAYERS = 18


def adapter_bytes(rank: int) -> int:
    """Bytes of the float32 factors of a LoRA adapter of ``rank`` on every module of every layer."""
    return 4 * LAYERS * sum(rank * (fan_in + fan_out) for fan_in, fan_out in SHAPES.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--trained", type=int, default=8)
    parser.add_argument("--merges", type=int, default=30)
    parser.add_argument("--evals", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        cache = StepCache(Path(tmp) / "cache")
        plan = ([("train", adapter_bytes(8))] * args.trained + [("merge", adapter_bytes(24))] * args.merges
                + [("eval", 4_096)] * args.evals)  # fmt: skip
        payloads = {size: os.urandom(size) for size in {size for _, size in plan}}
        keys, total, seal = [], 0, 0.0
        for index, (step, size) in enumerate(plan):
            key = step_key(step, {"i": index})
            with cache.produce(step, key, {"i": index}) as folder:
                (folder / "payload.bin").write_bytes(payloads[size])
                started = time.perf_counter()
            seal += time.perf_counter() - started  # the manifest's hashing and fsync, not the write itself
            keys.append((step, key))
            total += size
        fresh = StepCache(Path(tmp) / "cache")  # a later run: verifies every entry once
        started = time.perf_counter()
        assert all(fresh.lookup(step, key) is not None for step, key in keys)
        verify = time.perf_counter() - started
        started = time.perf_counter()
        assert all(fresh.lookup(step, key) is not None for step, key in keys)
        again = time.perf_counter() - started
    print(json.dumps({
        "entries": len(plan), "bytes": total, "adapter_r8_bytes": adapter_bytes(8),
        "merged_r24_bytes": adapter_bytes(24), "seal_s": round(seal, 3), "verify_s": round(verify, 3),
        "verify_again_same_run_s": round(again, 4), "verify_mb_per_s": round(total / verify / 1e6),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
