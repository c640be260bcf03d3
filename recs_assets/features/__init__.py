"""Features: what the shop knows about each user, item, user-item pair and session at a point in time.

The tables are defined in SQL (`sql/*.sql`) and computed by `run_sql`; each takes a `cutoff` so that a
model trained "as of" a date only ever sees what was known before it.
"""

from recs_assets.features.sql_runner import SQL_DIR, SqlParameterError, available_sql, run_sql

# Starting values for the interaction weights and decay (user_item_interactions,
# user_category_affinity). A purchase says far more than a view; a cart sits between. These are
# defaults for the assets' config, which is where a team tunes them, not tuned values.
DEFAULT_INTERACTION_PARAMS: dict[str, float | None] = {
    "w_view": 1.0,
    "w_add_to_cart": 3.0,
    "w_purchase": 5.0,
    "w_rating": 5.0,  # x rating / 5: a 5-star rating counts like a purchase
    "w_play": 1.0,  # x ln(1 + hours)
    "half_life_days": 30.0,
}

__all__ = ["DEFAULT_INTERACTION_PARAMS", "SQL_DIR", "SqlParameterError", "available_sql", "run_sql"]
