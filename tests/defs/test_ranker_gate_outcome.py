"""What the ranker asset tells the UI and MLflow about its gate: one line with the figures it decided on."""

from recs_assets.defs.models import RankerConfig, gate_outcome
from recs_assets.models.ranker import LightGBMRanker


def _judged(fallback):
    ranker = LightGBMRanker()
    ranker.validation = {"lists": 40, "trees": 100, "ranker_ndcg@10": 0.31, "best_generator": "ease",
                         "best_generator_ndcg@10": 0.33}
    ranker.fallback = fallback
    return ranker


def test_the_gate_line_says_whether_the_ranker_kept_its_order_with_both_figures():
    assert gate_outcome(_judged("ease")) == "fell back to ease's order: ranker 0.3100 vs ease 0.3300 nDCG@10 on held-out lesson lists"
    assert gate_outcome(_judged(None)).startswith("keeps its own order: ranker 0.3100 vs ease 0.3300")
    assert gate_outcome(LightGBMRanker()) == "no gate: no held-out lesson lists"


def test_the_gate_settings_reach_the_ranker_from_the_launchpad():
    settings = {k: v for k, v in RankerConfig(validation_fraction=0.3, gate=False).model_dump().items() if v is not None}
    ranker = LightGBMRanker(**settings)
    assert (ranker.validation_fraction, ranker.gate) == (0.3, False)
