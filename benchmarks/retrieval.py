"""Retrieval benchmark: HNSW against exact inner-product search over item vectors (models/ann.py, faiss).

For 10k, 100k and 1M items (d=64) prints index build time, query throughput and recall@100 of HNSW
against the exact top-100 (IndexFlatIP). Vectors are clustered (items around 256 taste centres, queries
near them), closer to learnt embeddings than uniform noise, on which every index does worst.

    .venv/bin/python benchmarks/retrieval.py                    # 10k, 100k, 1M
    .venv/bin/python benchmarks/retrieval.py --sizes 10000 --queries 500 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)

from recs_assets.models.ann import VectorIndex  # noqa: E402


def clustered(n: int, d: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    x = centres[picks] + 0.5 * rng.normal(size=(n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1_000, help="queries per size (1M uses a fifth)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"machine: {describe()}")
    print(f"d={args.dim}, k={args.k}, HNSW M={args.hnsw_m} efConstruction={args.ef_construction} "
          f"efSearch={args.ef_search}, faiss threads={args.threads}\n")
    header = (f"{'items':>9} {'queries':>8} {'index':<6} {'build s':>8} {'query ms':>9} {'queries/s':>10} "
              f"{'recall@' + str(args.k):>10}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(size=(256, args.dim)).astype(np.float32)
    for n in args.sizes:
        items = clustered(n, args.dim, rng, centres)
        n_queries = args.queries if n < 1_000_000 else max(1, args.queries // 5)
        queries = clustered(n_queries, args.dim, rng, centres)
        exact_rows = None
        for kind in ("exact", "hnsw"):
            index = VectorIndex(kind, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                                ef_search=args.ef_search, threads=args.threads)
            started = time.perf_counter()
            index.build(items)
            build = time.perf_counter() - started
            started = time.perf_counter()
            rows, _ = index.search(queries, args.k)
            query = time.perf_counter() - started
            if kind == "exact":
                exact_rows = rows
                recall = 1.0
            else:
                assert exact_rows is not None
                hits = sum(len(np.intersect1d(a, b)) for a, b in zip(rows, exact_rows, strict=True))
                recall = hits / exact_rows.size
            print(f"{n:>9,} {n_queries:>8,} {kind:<6} {build:>8.2f} {1000 * query / n_queries:>9.3f} "
                  f"{n_queries / query:>10,.0f} {recall:>10.4f}", flush=True)
        del items


if __name__ == "__main__":
    main()
