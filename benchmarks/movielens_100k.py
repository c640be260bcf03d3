"""MovieLens 100k under Microsoft Recommenders' protocol, our models beside their published README rows.

Protocol (recs_assets/evaluation/protocols.py): `python_stratified_split` by item, ratio 0.75,
seed 42, on u.data in file order (75,066 train / 24,934 test ratings); every test rating relevant,
binary gain; items rated in train removed from the lists; nDCG@10, precision@10, recall@10.

Honest tuning: hyper-parameters are chosen on a validation split carved from the TRAIN part only
(the same stratified split applied to train, ratio 0.75, seed 43), by validation nDCG@10. The chosen
settings are refit on the whole train part and evaluated once on test. Every model sees binary
interactions (strength 1 per rated film), as the published binary-gain protocol treats ratings.

    .venv/bin/python benchmarks/movielens_100k.py --data ../shared/datasets/ml-100k --out /tmp/ml100k_bench

Writes to --out: test.parquet (user_id, item_id), train.parquet (user_id, item_id), one
recommendations_<row>.parquet (user_id, item_id, rank) for every row printed (each tuned model; each
generator and the ranker of the whole pipeline on the MS split, `ms_pipeline_<model>`; each model of
our own protocols, `<protocol>_<model>`, beside that protocol's truth_<protocol>.parquet), and
results.json (metrics, chosen settings, validation scores of every setting tried, machine, runtime).
Every figure printed can be recomputed with `ms_recommenders_metrics(recommendations, test, 10)`
(against truth_<protocol>.parquet for our protocols): the script does so itself, from the files it
wrote, and fails if one figure differs.

`--only-ms-pipeline` runs the whole pipeline on the MS split alone (no tuning grids, no other protocol).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import polars as pl  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))

from recs_assets.models.lists import recommendations_frame  # noqa: E402
from recs_assets.evaluation.protocols import ms_recommenders_metrics, python_stratified_split  # noqa: E402
from recs_assets.models import (  # noqa: E402
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from recs_assets.sources.movielens import load_raw_events  # noqa: E402

K = 10
SPLIT_SEED = 42
VALIDATION_SEED = 43

# Published Microsoft Recommenders README (MovieLens 100k, same protocol): nDCG@10, P@10, R@10.
PUBLISHED = {
    "BiVAE": (0.4751, 0.4118, 0.2191),
    "BPR (Cornac)": (0.4420, 0.3882, 0.2125),
    "LightGCN": (0.4198, 0.3796, 0.1443),
    "NCF": (0.3961, 0.3473, 0.1808),
    "SAR": (0.3825, 0.3308, 0.1764),
}


def grids() -> dict[str, tuple[type, list[dict]]]:
    """Every setting tried per model (small grids: the whole run takes a few minutes on 2 cores)."""

    def product(**axes: list) -> list[dict]:
        return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]

    return {
        "popularity": (PopularityRecommender, [{}]),
        "item_knn": (ItemKNNRecommender, product(k=[5, 10, 20, 50, 100, 200, 400], shrinkage=[0.0, 10.0, 50.0, 100.0])),
        "ease": (EASERecommender, product(l2=[25.0, 50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0])),
        "als": (
            ALSRecommender,
            product(
                factors=[32, 64, 128, 200],
                regularization=[1.0, 10.0, 50.0, 100.0],
                alpha=[1.0, 5.0, 20.0, 50.0],
                iterations=[15],
            ),
        ),
        "bpr": (
            BPRRecommender,
            product(
                factors=[64, 128],
                learning_rate=[0.001, 0.01],
                regularization=[0.001, 0.01],
                iterations=[50, 500],
            ),
        ),
    }


def binary_interactions(df: pl.DataFrame) -> pl.DataFrame:
    return df.select("user_id", "item_id", strength=pl.lit(1.0))


def fit_and_recommend(cls: type, params: dict, train: pl.DataFrame, users: list[str]) -> pl.DataFrame:
    model = cls(**params).fit(binary_interactions(train))
    item_ids, scores = model.recommend(users, K, exclude_seen=True)
    return recommendations_frame(users, item_ids, scores)


def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe()


def ms_split_pipeline(ml_dir: Path, train: pl.DataFrame, test: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], dict]:
    """Our whole pipeline, re-ranker included, with default settings, on the MS split itself.

    Every rating counts alike (no recency decay), as the binary-gain protocol treats them; the ranker's
    lessons come from random hold-outs inside the train part. Returns each model's top-k lists and the
    ranker's decision on its held-out lessons (`pipeline_lists`).
    """
    from recs_assets.evaluation.pipeline import pipeline_lists
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.sources import movielens
    from recs_assets.training.splits import Split

    events = movielens.load_raw_events(ml_dir).drop("_source", "_parse_error", "_raw_line")
    side = lambda part: events.join(part.select("_line"), on="_line", how="semi").drop("_line")  # noqa: E731
    split = Split(train=side(train), test=side(test), protocol="random", cutoff=None)
    weights = {**DEFAULT_INTERACTION_PARAMS, "half_life_days": None}
    return pipeline_lists(split, events.drop("_line"), movielens.load_items(ml_dir), movielens.load_users(ml_dir), weights, k=K)


def write_and_rescore(out: Path, name: str, recs: pl.DataFrame, truth: pl.DataFrame, rescored: dict[str, dict]) -> dict:
    """Write one printed row's lists to recommendations_<name>.parquet and score that file, as anyone re-scoring it would.

    The figure printed is the one read back from the file (`ms_recommenders_metrics`); the pipeline's own
    grading (`evaluate`, all truth users) must agree with it, or the run fails at the end.
    """
    from recs_assets.evaluation.metrics import evaluate

    path = out / f"recommendations_{name}.parquet"
    recs.select("user_id", "item_id", "rank").write_parquet(path)
    metrics = ms_recommenders_metrics(pl.read_parquet(path), truth, K)
    direct = evaluate(recs, truth, K)[f"ndcg@{K}"]
    rescored[name] = {"file": path.name, f"ndcg@{K}": metrics[f"ndcg@{K}"], "graded": direct,
                      "agrees": abs(metrics[f"ndcg@{K}"] - direct) < 1e-12}
    return {**metrics, "users_evaluated": metrics["test_users"]}


def print_table(label: str, results: dict[str, dict]) -> None:
    print(f"\n{label}")
    print(f"{'model':<12} {'nDCG@10':>8} {'P@10':>8} {'R@10':>8} {'users':>7}")
    for name, m in sorted(results.items(), key=lambda kv: -kv[1][f"ndcg@{K}"]):
        print(f"{name:<12} {m[f'ndcg@{K}']:>8.4f} {m[f'precision@{K}']:>8.4f} {m[f'recall@{K}']:>8.4f} {m['users_evaluated']:>7}")


def our_protocols(ml_dir: Path, steam_dir: Path | None, out: Path, rescored: dict[str, dict]) -> dict[str, dict]:
    """The same models under the pipeline's own protocols: temporal on MovieLens, random on Steam.

    Default hyper-parameters, interaction weights and the re-ranker exactly as `make run` trains them.
    """
    from recs_assets.evaluation.pipeline import pipeline_lists
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.sources import movielens, steam
    from recs_assets.training.splits import make_split

    sources = {"movielens_100k (temporal, last 7 days)": (movielens, ml_dir, "temporal", "temporal_ml100k")}
    if steam_dir is not None and steam_dir.exists():
        sources["steam_200k (random 25% per user, seed 42)"] = (steam, steam_dir, "random", "random_steam200k")
    tables = {}
    for label, (adapter, folder, protocol, slug) in sources.items():
        started = time.perf_counter()
        events = adapter.load_raw_events(folder).drop("_source", "_line", "_parse_error", "_raw_line").unique(
            subset=["event_id"], keep="first", maintain_order=True
        )
        split = make_split(events, protocol, test_days=7, test_fraction=0.25, seed=42)
        lists, ranker = pipeline_lists(split, events, adapter.load_items(folder), adapter.load_users(folder), DEFAULT_INTERACTION_PARAMS, k=K)
        truth = split.truth
        truth.write_parquet(out / f"truth_{slug}.parquet")
        results = {name: write_and_rescore(out, f"{slug}_{name}", recs, truth, rescored) for name, recs in lists.items()}
        tables[label] = {**results, "ranker_decision": ranker}
        print_table(f"{label}: our pipeline, default settings ({time.perf_counter() - started:.0f} s)", results)
        print(ranker_line(ranker))
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder holding the GroupLens ml-100k files (u.data, ...)")
    parser.add_argument("--out", required=True, help="folder for test.parquet, recommendations_<model>.parquet, ...")
    parser.add_argument(
        "--steam", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "steam-200k"),
        help="folder holding steam-200k.csv.gz, for the random-protocol table ('' to skip)",
    )
    parser.add_argument("--only-ms-pipeline", action="store_true",
                        help="run only the whole pipeline on the MS split (no tuning grids, no other protocol)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    ratings = load_raw_events(args.data)
    bad = ratings.filter(pl.col("_parse_error").is_not_null())
    if bad.height:
        raise SystemExit(f"u.data has {bad.height} unreadable line(s), e.g. {bad.row(0, named=True)['_parse_error']}")
    ratings = ratings.sort("_line").select("user_id", "item_id", "value", "_line")
    train, test = python_stratified_split(ratings, ratio=0.75, filter_by="item", seed=SPLIT_SEED)
    fit_part, valid_part = python_stratified_split(train, ratio=0.75, filter_by="item", seed=VALIDATION_SEED)
    print(
        f"split: {train.height:,} train / {test.height:,} test ratings "
        f"(validation inside train: {fit_part.height:,} fit / {valid_part.height:,} validation)",
        flush=True,
    )
    test.select("user_id", "item_id").write_parquet(out / "test.parquet")
    train.select("user_id", "item_id").write_parquet(out / "train.parquet")

    valid_users = valid_part.get_column("user_id").unique().sort().to_list()
    test_users = test.get_column("user_id").unique().sort().to_list()
    results: dict[str, dict] = {}
    rescored: dict[str, dict] = {}
    for name, (cls, settings) in ({} if args.only_ms_pipeline else grids()).items():
        t0 = time.perf_counter()
        tried = []
        for params in settings:
            recs = fit_and_recommend(cls, params, fit_part, valid_users)
            tried.append({"params": params, "validation": ms_recommenders_metrics(recs, valid_part, K)})
        best = max(tried, key=lambda row: row["validation"][f"ndcg@{K}"])  # first of ties wins
        tune_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        recs = fit_and_recommend(cls, best["params"], train, test_users)
        final_seconds = time.perf_counter() - t1
        metrics = write_and_rescore(out, name, recs, test, rescored)
        results[name] = {
            "params": best["params"],
            "validation_ndcg@10": best["validation"][f"ndcg@{K}"],
            "test": metrics,
            "settings_tried": len(tried),
            "tune_seconds": round(tune_seconds, 2),
            "fit_and_recommend_seconds": round(final_seconds, 2),
            "grid": tried,
        }
        print(
            f"  {name:<10} {len(tried):>3} settings in {tune_seconds:6.1f} s; chosen {best['params']} "
            f"(validation nDCG@10 {best['validation'][f'ndcg@{K}']:.4f}); test nDCG@10 {metrics[f'ndcg@{K}']:.4f}",
            flush=True,
        )

    runtime = time.perf_counter() - start
    if results:
        print_tuned(results, runtime)
    started = time.perf_counter()
    ms_lists, ms_ranker = ms_split_pipeline(Path(args.data), train, test)
    ms_pipeline = {name: write_and_rescore(out, f"ms_pipeline_{name}", recs, test, rescored) for name, recs in ms_lists.items()}
    print_table(
        f"MS split, our whole pipeline with default settings, re-ranker included ({time.perf_counter() - started:.0f} s)",
        ms_pipeline,
    )
    print(ranker_line(ms_ranker))
    ours = {"ms_split_pipeline_defaults": {**ms_pipeline, "ranker_decision": ms_ranker}}
    if not args.only_ms_pipeline:
        ours.update(our_protocols(Path(args.data), Path(args.steam) if args.steam else None, out, rescored))
    (out / "results.json").write_text(
        json.dumps(
            {
                "protocol": {
                    "split": "python_stratified_split(filter_by='item', ratio=0.75, seed=42) on u.data in file order",
                    "validation": "python_stratified_split of train (filter_by='item', ratio=0.75, seed=43)",
                    "train_rows": train.height,
                    "test_rows": test.height,
                    "k": K,
                },
                "models": results,
                "published": {name: dict(zip(("ndcg@10", "precision@10", "recall@10"), v)) for name, v in PUBLISHED.items()},
                "our_protocols": ours,
                "rescored_from_files": rescored,
                "machine": machine(),
                "runtime_seconds": round(time.perf_counter() - start, 1),
            },
            indent=2,
        )
    )
    print(f"wrote {out}/test.parquet, train.parquet, recommendations_<row>.parquet ({len(rescored)} files), results.json")
    wrong = [name for name, row in rescored.items() if not row["agrees"]]
    if wrong:
        print(f"re-scoring the written files does not reproduce the printed figure for: {', '.join(wrong)}", file=sys.stderr)
        return 1
    print(f"re-scored every file with ms_recommenders_metrics: all {len(rescored)} printed nDCG@{K} figures reproduced")
    return 0


def ranker_line(decision: dict) -> str:
    """What the ranker's gate saw on its held-out lessons (inside train), in one line."""
    v = decision["validation"]
    if not v:
        return "ranker: no held-out lessons, no gate"
    kept = f"keeps {decision['fallback']}'s list" if decision["fallback"] else "serves its own order"
    return (f"ranker gate on {v['lists']} held-out lesson lists: ranker nDCG@10 {v['ranker_ndcg@10']:.4f} vs best generator "
            f"{v['best_generator']} {v['best_generator_ndcg@10']:.4f} -> {kept}")


def print_tuned(results: dict[str, dict], runtime: float) -> None:
    """The tuned models beside MS Recommenders' published rows."""
    rows = [(f"{name} (ours)", r["test"][f"ndcg@{K}"], r["test"][f"precision@{K}"], r["test"][f"recall@{K}"]) for name, r in results.items()]
    rows += [(f"{name} (MS Recommenders README)", *vals) for name, vals in PUBLISHED.items()]
    rows.sort(key=lambda row: -row[1])
    lines = [
        "",
        "MovieLens 100k, MS Recommenders protocol: stratified by item 75/25 seed 42, binary relevance, seen removed, k=10",
        f"{'model':<40} {'nDCG@10':>8} {'P@10':>8} {'R@10':>8}",
        *(f"{label:<40} {ndcg:>8.4f} {prec:>8.4f} {rec:>8.4f}" for label, ndcg, prec, rec in rows),
        "",
        f"test users: {next(iter(results.values()))['test']['test_users']}; "
        "ours: tuned on a validation split of train only, refit on all of train, scored once on test",
        f"machine: {machine()}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        f"runtime: {runtime:.1f} s (load, split, tuning and final fits of all models)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
