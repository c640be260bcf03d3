"""The marketplace simulator: contract, determinism, funnel realism, shop rules and the hidden truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recs_assets.contract import EVENT_TYPES, EVENTS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA
from recs_assets.sources.simulator import SimulatedMarketplace, SimulatorConfig, simulate
from recs_assets.sources.simulator.day import shopper_response
from recs_assets.sources.simulator.world import World, build_world

GAMES = SimulatorConfig(preset="games", seed=7, n_users=1_000, n_items=400, n_days=14)
FASHION = SimulatorConfig(
    preset="fashion", seed=7, n_users=800, n_items=300, n_days=14, new_listings_per_day=20
)
TINY = dict(n_users=150, n_items=60, n_days=5)


@pytest.fixture(scope="module")
def games() -> SimulatedMarketplace:
    return simulate(GAMES)


@pytest.fixture(scope="module")
def fashion() -> SimulatedMarketplace:
    return simulate(FASHION)


@pytest.fixture(params=["games", "fashion"])
def market(request, games, fashion) -> SimulatedMarketplace:
    return {"games": games, "fashion": fashion}[request.param]


def of_type(m: SimulatedMarketplace, *event_types: str) -> pl.DataFrame:
    return m.events.filter(pl.col("event_type").is_in(event_types))


def with_day(m: SimulatedMarketplace, events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(day=m.day_of(events["event_at"]))


# --- contract and determinism --------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_tables_match_the_contract_exactly(preset):
    m = simulate(SimulatorConfig(preset=preset, **TINY))
    assert m.events.schema == pl.Schema(EVENTS_SCHEMA)
    assert m.items.schema == pl.Schema(ITEMS_SCHEMA)
    assert m.users.schema == pl.Schema(USERS_SCHEMA)
    assert m.events.height > 0


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_same_seed_gives_identical_tables(preset):
    first = simulate(SimulatorConfig(preset=preset, seed=3, **TINY))
    second = simulate(SimulatorConfig(preset=preset, seed=3, **TINY))
    assert first.events.equals(second.events)
    assert first.items.equals(second.items)
    assert first.users.equals(second.users)


def test_different_seed_gives_different_tables():
    first = simulate(SimulatorConfig(seed=3, **TINY))
    second = simulate(SimulatorConfig(seed=4, **TINY))
    assert not first.events.equals(second.events)
    assert not first.users.equals(second.users)


def test_event_ids_are_unique_and_in_time_order(market):
    events = market.events
    assert events["event_id"].is_unique().all()
    assert events.equals(events.sort(["event_at", "event_id"]))
    # Zero-padded ids sort as strings in the same order as the timestamps.
    assert events["event_id"].is_sorted()
    assert events["event_id"].str.contains(r"^e\d{9,}$").all()
    assert set(events["event_type"].unique()) <= set(EVENT_TYPES)


def test_events_stay_inside_the_simulated_period(market):
    start = dt.datetime.combine(market.config.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=market.config.n_days)
    assert market.events["event_at"].min() >= start
    assert market.events["event_at"].max() < end


def test_every_event_of_a_session_shares_user_day_and_variant(market):
    per_session = with_day(market, market.events).group_by("session_id").agg(
        users=pl.col("user_id").n_unique(),
        days=pl.col("day").n_unique(),
        variants=pl.col("variant").n_unique(),
    )
    assert (per_session["users"] == 1).all()
    assert (per_session["days"] == 1).all()
    assert (per_session["variants"] == 1).all()
    assert (market.events["variant"] == "control").all()


def test_events_are_only_from_signed_up_users(market):
    joined = market.events.join(market.users, on="user_id", how="left")
    assert joined["signup_at"].null_count() == 0
    assert (joined["event_at"] >= joined["signup_at"]).all()


# --- the shopping funnel -------------------------------------------------------------------------


def test_funnel_narrows_at_plausible_rates(market):
    counts = dict(market.events.group_by("event_type").len().iter_rows())
    impressions, views = counts["impression"], counts["view"]
    carts, purchases = counts["add_to_cart"], counts["purchase"]
    assert impressions > views > carts > purchases > 0
    assert 0.05 <= views / impressions <= 0.20
    assert 0.15 <= carts / views <= 0.40
    assert 0.30 <= purchases / carts <= 0.70


def test_each_funnel_step_follows_the_previous_one_in_the_same_session(market):
    steps = [("impression", "view"), ("view", "add_to_cart"), ("add_to_cart", "purchase")]
    for before, after in steps:
        earlier = of_type(market, before).select("session_id", "item_id", before_at="event_at")
        later = of_type(market, after).select("session_id", "item_id", "event_at")
        matched = later.join(earlier, on=["session_id", "item_id"], how="left")
        assert matched["before_at"].null_count() == 0, f"{after} without a {before}"
        assert (matched["before_at"] < matched["event_at"]).all(), f"{after} before its {before}"


def test_search_comes_first_has_a_query_and_no_item(market):
    searches = of_type(market, "search")
    assert searches.height > 0
    assert searches["item_id"].null_count() == searches.height
    assert searches["query"].null_count() == 0
    assert (searches["surface"] == "search").all()
    assert searches["price"].null_count() == searches.height
    first_at = market.events.group_by("session_id").agg(first_at=pl.col("event_at").min())
    joined = searches.join(first_at, on="session_id")
    assert (joined["event_at"] == joined["first_at"]).all()
    assert searches["session_id"].is_unique().all()


def test_queries_are_category_or_brand_words(market):
    words = set(market.items["category"]) | {b.lower() for b in market.items["brand"]}
    assert set(of_type(market, "search")["query"]) <= words
    assert of_type(market, "impression", "view", "purchase")["query"].null_count() > 0


def test_impressions_have_distinct_items_positions_and_propensities(games):
    impressions = of_type(games, "impression")
    per_session = impressions.group_by("session_id").agg(
        n=pl.len(),
        items=pl.col("item_id").n_unique(),
        positions=pl.col("position").sort(),
    )
    assert (per_session["n"] == per_session["items"]).all()
    assert (per_session["n"] <= GAMES.impressions_per_session).all()
    # Positions are 1..n within each session.
    expected = per_session["n"].map_elements(lambda n: list(range(1, n + 1)), return_dtype=pl.List(pl.Int32))
    assert (per_session["positions"] == expected).all()
    propensity = impressions["propensity"]
    assert propensity.null_count() == 0
    assert ((propensity > 0) & (propensity <= 1)).all()


def test_propensities_are_the_policys_true_probabilities(games):
    # Inverse-propensity weighting counts what the policy could have shown: for the k-th slot the
    # expected value of 1 / propensity is the number of items still unshown, so the ratio averages 1.
    impressions = of_type(games, "impression")
    unshown = pl.col("pool") - (pl.col("position") - 1)
    home = impressions.filter(pl.col("surface") == "home").with_columns(pool=pl.lit(GAMES.n_items))
    category_sizes = games.items.group_by("category").agg(pool=pl.len())
    category_searches = (
        of_type(games, "search").select("session_id", category="query").join(category_sizes, on="category")
    )
    searched = impressions.join(category_searches, on="session_id")
    for shown in (home, searched):
        assert shown.height > 1_000
        ratio = shown.select((1 / pl.col("propensity") / unshown).mean()).item()
        assert 0.85 < ratio < 1.15


def test_prices_values_and_propensities_are_set_only_where_they_belong(market):
    events = market.events.join(market.items.select("item_id", item_price="price"), on="item_id", how="left")
    item_events = events.filter(pl.col("item_id").is_not_null())
    assert (item_events["price"] == item_events["item_price"]).all()
    assert of_type(market, "search")["price"].null_count() == of_type(market, "search").height
    not_play = market.events.filter(pl.col("event_type") != "play")
    assert not_play["value"].null_count() == not_play.height
    not_impression = market.events.filter(pl.col("event_type") != "impression")
    assert not_impression["propensity"].null_count() == not_impression.height


def test_views_fall_with_position(games):
    impressions = of_type(games, "impression").select("session_id", "item_id", "position")
    views = of_type(games, "view").select("session_id", "item_id", viewed=pl.lit(True))
    rate = (
        impressions.join(views, on=["session_id", "item_id"], how="left")
        .group_by("position")
        .agg(view_rate=pl.col("viewed").is_not_null().mean())
        .sort("position")
    )
    assert rate["view_rate"][0] > 1.5 * rate["view_rate"][-1]


def test_purchases_are_skewed_towards_popular_items(games):
    per_item = of_type(games, "purchase").group_by("item_id").len().sort("len", descending=True)
    top_tenth = per_item["len"].head(GAMES.n_items // 10).sum()
    assert top_tenth / per_item["len"].sum() > 0.5


def test_the_logging_policy_shows_bestsellers_far_more_than_the_typical_item(games):
    shown = of_type(games, "impression").group_by("item_id").len()
    per_item = games.items.select("item_id").join(shown, on="item_id", how="left").fill_null(0)["len"]
    assert per_item.quantile(0.99) > 8 * per_item.median()


def test_users_buy_mostly_in_their_favourite_category(games):
    purchases = of_type(games, "purchase").join(
        games.items.select("item_id", "category"), on="item_id", how="left", maintain_order="left"
    )
    favourite = games.preferred_categories(purchases["user_id"].to_list())
    share = np.mean(np.array(favourite) == purchases["category"].to_numpy())
    n_categories = games.items["category"].n_unique()
    assert share > 0.4 > 3 / n_categories


def test_a_few_users_account_for_many_sessions(games):
    sessions = games.events.group_by("user_id").agg(sessions=pl.col("session_id").n_unique())
    top = sessions["sessions"].sort(descending=True).head(GAMES.n_users // 10).sum()
    assert top / sessions["sessions"].sum() > 0.25


# --- shop rules ----------------------------------------------------------------------------------


def test_fashion_listing_sells_at_most_once(fashion):
    purchases = of_type(fashion, "purchase")
    assert purchases.height > 0
    assert purchases["item_id"].is_unique().all()


def test_fashion_listing_has_no_events_after_its_sale_or_before_its_listing(fashion):
    sold_at = of_type(fashion, "purchase").select("item_id", sold_at="event_at")
    events = (
        fashion.events.filter(pl.col("item_id").is_not_null())
        .join(sold_at, on="item_id", how="left")
        .join(fashion.items.select("item_id", "listed_at"), on="item_id", how="left")
    )
    after_sale = events.filter(pl.col("event_at") > pl.col("sold_at"))
    assert after_sale.height == 0
    assert (events["event_at"] > events["listed_at"]).all()


def test_fashion_second_buyer_keeps_their_cart():
    # A tiny stock and busy shoppers make two people go for the same listing.
    m = simulate(SimulatorConfig(preset="fashion", n_users=200, n_items=20, n_days=5,
                                 new_listings_per_day=2, sessions_per_user_day=1.0))
    carts = of_type(m, "add_to_cart").group_by("item_id").agg(carts=pl.len())
    buyers = of_type(m, "purchase").group_by("item_id").agg(buyers=pl.len())
    joined = carts.join(buyers, on="item_id", how="left").fill_null(0)
    assert (joined["buyers"] <= 1).all()
    assert (joined["carts"] > joined["buyers"]).any()


def test_fashion_sold_listings_are_inactive_and_unsold_ones_active(fashion):
    sold = set(of_type(fashion, "purchase")["item_id"])
    active = dict(fashion.items.select("item_id", "is_active").iter_rows())
    assert sold and all(not active[item] for item in sold)
    assert all(is_active for item, is_active in active.items() if item not in sold)


def test_fashion_new_listings_arrive_every_day(fashion):
    items = fashion.items
    assert items.height == FASHION.n_items + FASHION.new_listings_per_day * FASHION.n_days
    listed_day = fashion.day_of(items["listed_at"])
    assert (listed_day < 0).sum() == FASHION.n_items
    per_day = listed_day.filter(listed_day >= 0).value_counts()
    assert per_day.height == FASHION.n_days
    assert (per_day["count"] == FASHION.new_listings_per_day).all()
    assert items["condition"].null_count() == 0
    assert set(items["condition"]) <= {"new_with_tags", "very_good", "good", "fair"}
    assert items["item_id"].str.contains(r"^f\d{6}$").all()


def test_games_user_buys_a_title_at_most_once(games):
    purchases = of_type(games, "purchase")
    assert purchases.height > 0
    assert not purchases.select("user_id", "item_id").is_duplicated().any()


def test_games_plays_follow_a_purchase_by_the_same_user(games):
    plays = of_type(games, "play")
    assert plays.height > 0
    assert (plays["value"] > 0).all()
    bought = of_type(games, "purchase").select("user_id", "item_id", bought_at="event_at")
    joined = plays.join(bought, on=["user_id", "item_id"], how="left")
    assert joined["bought_at"].null_count() == 0
    assert (games.day_of(joined["event_at"]) > games.day_of(joined["bought_at"])).all()


def test_games_users_come_back_to_items_they_viewed(games):
    views = of_type(games, "view").group_by("user_id", "item_id").agg(
        sessions=pl.col("session_id").n_unique()
    )
    assert (views["sessions"] > 1).sum() > 0.02 * views.height


def test_games_items_are_a_fixed_catalogue(games):
    items = games.items
    assert items.height == GAMES.n_items
    assert items["condition"].null_count() == items.height
    assert items["is_active"].all()
    assert items["price"].is_between(5, 70).all()
    assert 8 <= items["category"].n_unique() <= 12
    assert items["item_id"].str.contains(r"^g\d{6}$").all()
    start = dt.datetime.combine(GAMES.start_date, dt.time(), tzinfo=dt.UTC)
    assert (items["listed_at"] < start).all()


def test_users_table_is_plausible(market):
    users = market.users
    assert users.height == market.config.n_users
    assert users["user_id"].is_unique().all()
    assert users["user_id"].str.contains(r"^u\d{6}$").all()
    assert set(users["segment"]) == {"new", "casual", "regular", "power"}
    assert users["country"].n_unique() >= 3
    top_country_share = users["country"].value_counts()["count"].max() / users.height
    assert top_country_share > 1.5 / users["country"].n_unique()
    end = dt.datetime.combine(market.config.start_date, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
        days=market.config.n_days
    )
    assert (users["signup_at"] < end).all()


# --- preference shift ----------------------------------------------------------------------------


def category_shift(m: SimulatedMarketplace, event_type: str, shift_day: int) -> float:
    """Total-variation distance between the category mix before and after the shift day."""
    events = with_day(m, of_type(m, event_type)).join(m.items.select("item_id", "category"), on="item_id")
    before = events.filter(pl.col("day") < shift_day)["category"].value_counts(normalize=True)
    after = events.filter(pl.col("day") >= shift_day)["category"].value_counts(normalize=True)
    both = before.join(after, on="category", how="full", coalesce=True, suffix="_after").fill_null(0)
    return 0.5 * float((both["proportion"] - both["proportion_after"]).abs().sum())


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_preference_shift_changes_what_people_buy(preset):
    base = dict(preset=preset, seed=11, n_users=800, n_items=300, n_days=14)
    steady = simulate(SimulatorConfig(**base))
    shifted = simulate(SimulatorConfig(**base, preference_shift_day=7))
    assert category_shift(shifted, "purchase", 7) > category_shift(steady, "purchase", 7) + 0.15


def test_preference_shift_leaves_the_days_before_it_untouched():
    base = dict(seed=5, n_users=300, n_items=100, n_days=6)
    steady = simulate(SimulatorConfig(**base))
    shifted = simulate(SimulatorConfig(**base, preference_shift_day=3))

    def before_shift(m):
        # Plays are drawn after all purchases, so only browsing events are comparable.
        events = with_day(m, m.events.filter(pl.col("event_type") != "play"))
        return events.filter(pl.col("day") < 3).drop("event_id", "session_id")

    assert before_shift(steady).equals(before_shift(shifted))
    assert not steady.events.equals(shifted.events)


def test_zero_shift_strength_changes_nothing():
    base = dict(seed=5, n_users=300, n_items=100, n_days=6)
    steady = simulate(SimulatorConfig(**base))
    no_op = simulate(SimulatorConfig(**base, preference_shift_day=3, shift_strength=0.0))
    assert steady.events.equals(no_op.events)


# --- the hidden truth ----------------------------------------------------------------------------


def test_true_affinity_is_a_probability_per_pair(games):
    users = games.users["user_id"].head(50).to_list()
    items = games.items["item_id"].tail(50).to_list()
    affinity = games.true_affinity(users, items)
    assert affinity.shape == (50,)
    assert ((affinity > 0) & (affinity < 1)).all()
    assert games.true_affinity([], []).shape == (0,)
    # Pairwise, not a grid: reversing both inputs reverses the output.
    np.testing.assert_allclose(games.true_affinity(users[::-1], items[::-1]), affinity[::-1])


def test_true_affinity_is_higher_in_a_users_favourite_category(games):
    users = games.users["user_id"].head(200).to_list()
    favourite = games.preferred_categories(users)
    items = games.items.select("item_id", "category")
    rng = np.random.default_rng(0)
    in_favourite, elsewhere = [], []
    for user, category in zip(users, favourite, strict=True):
        inside = items.filter(pl.col("category") == category)["item_id"].to_list()
        outside = items.filter(pl.col("category") != category)["item_id"].to_list()
        in_favourite.append(games.true_affinity([user], [inside[rng.integers(len(inside))]])[0])
        elsewhere.append(games.true_affinity([user], [outside[rng.integers(len(outside))]])[0])
    assert np.mean(in_favourite) > 2 * np.mean(elsewhere)


def test_true_affinity_is_higher_for_bought_than_for_ignored_items(market):
    shown = of_type(market, "impression").select("session_id", "user_id", "item_id")
    bought = of_type(market, "purchase").select("session_id", "item_id", bought=pl.lit(True))
    pairs = shown.join(bought, on=["session_id", "item_id"], how="left")
    days = market.config.n_days - 1
    affinity = market.true_affinity(pairs["user_id"], pairs["item_id"], day=days)
    was_bought = pairs["bought"].is_not_null().to_numpy()
    assert affinity[was_bought].mean() > 2 * affinity[~was_bought].mean()


def test_true_affinity_follows_the_shift():
    m = simulate(SimulatorConfig(seed=2, n_users=100, n_items=50, n_days=4, preference_shift_day=2))
    users = m.users["user_id"].to_list()
    items = (m.items["item_id"].to_list() * 2)[: len(users)]
    before, after = m.true_affinity(users, items, day=1), m.true_affinity(users, items, day=2)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(m.true_affinity(users, items), after)
    np.testing.assert_allclose(m.true_affinity(users, items, day=0), before)


def test_true_affinity_names_unknown_ids(games):
    with pytest.raises(KeyError, match="u999999"):
        games.true_affinity(["u000001", "u999999"], ["g000001", "g000002"])
    with pytest.raises(KeyError, match="nope"):
        games.true_affinity(["u000001"], ["nope"])


def test_true_affinity_rejects_mismatched_lengths_and_bad_days(games):
    with pytest.raises(ValueError, match="same length"):
        games.true_affinity(["u000001", "u000002"], ["g000001"])
    with pytest.raises(ValueError, match="day"):
        games.true_affinity(["u000001"], ["g000001"], day=GAMES.n_days)


# --- the shoppers' response model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_world() -> World:
    return build_world(SimulatorConfig(**TINY))


def repeated_pairs(n: int, position: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User 0 shown item 0, n times in the same slot."""
    zeros = np.zeros(n, dtype=np.int64)
    return zeros, zeros.copy(), np.full(n, position, dtype=np.int64)


def test_response_funnel_only_narrows_and_owned_games_are_never_carted(tiny_world):
    n = 5_000
    rng = np.random.default_rng(0)
    user, item = rng.integers(0, TINY["n_users"], n), rng.integers(0, TINY["n_items"], n)
    position = rng.integers(1, 13, n)
    owned = np.arange(n) % 2 == 0
    response = shopper_response(tiny_world, user, item, position, tiny_world.taste_on(0), rng, owned=owned)
    assert response.viewed.any() and response.carted.any() and response.bought.any()
    assert not (response.carted & ~response.viewed).any()
    assert not (response.bought & ~response.carted).any()
    assert not response.carted[owned].any()
    assert (response.p_cart[owned] == 0).all()


def test_response_splits_the_affinity_between_basket_and_checkout(tiny_world):
    rng = np.random.default_rng(0)
    response = shopper_response(tiny_world, *repeated_pairs(3), tiny_world.taste_on(0), rng)
    np.testing.assert_allclose(response.p_cart * response.p_purchase, response.affinity)


def test_response_affinity_is_the_reported_true_affinity():
    # One response model: what drives the simulated purchases is what true_affinity reports.
    config = SimulatorConfig(**TINY)
    market, world = simulate(config), build_world(config)
    user = np.arange(TINY["n_users"])
    item = user % TINY["n_items"]
    day = TINY["n_days"] - 1
    rng = np.random.default_rng(0)
    response = shopper_response(world, user, item, np.ones_like(user), world.taste_on(day), rng)
    user_ids, item_ids = market.users["user_id"].gather(user), market.items["item_id"].gather(item)
    expected = market.true_affinity(user_ids, item_ids)
    np.testing.assert_array_equal(response.affinity, expected)


def test_response_view_odds_fall_with_the_square_root_of_the_slot(tiny_world):
    # logit(p_view) loses 0.5 * log(position): slot 4 has half the view odds of slot 1.
    taste, rng = tiny_world.taste_on(0), np.random.default_rng(0)
    top = shopper_response(tiny_world, *repeated_pairs(1, position=1), taste, rng).p_view[0]
    fourth = shopper_response(tiny_world, *repeated_pairs(1, position=4), taste, rng).p_view[0]
    assert (fourth / (1 - fourth)) / (top / (1 - top)) == pytest.approx(0.5)


def test_response_buys_at_the_true_affinity_rate_once_viewed(tiny_world):
    n, rng = 200_000, np.random.default_rng(1)
    response = shopper_response(tiny_world, *repeated_pairs(n), tiny_world.taste_on(0), rng)
    views = response.viewed.sum()
    affinity = response.affinity[0]
    assert response.viewed.mean() == pytest.approx(response.p_view[0], abs=4 * np.sqrt(0.25 / n))
    assert response.bought.sum() / views == pytest.approx(affinity, abs=4 * np.sqrt(affinity / views))


def test_response_draws_three_uniforms_per_impression(tiny_world):
    # A fixed number of draws keeps every later draw of the day where it was: reproducible tables.
    user, item, position = repeated_pairs(7)
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    shopper_response(tiny_world, user, item, position, tiny_world.taste_on(0), rng)
    for _ in range(3):
        reference.random(7)
    assert rng.random() == reference.random()


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(preset="books"), "preset"),
        (dict(seed=-1), "seed"),
        (dict(n_users=0), "n_users"),
        (dict(n_items=0), "n_items"),
        (dict(n_days=0), "n_days"),
        (dict(n_days=2.5), "n_days"),
        (dict(n_users=True), "n_users"),
        (dict(seed=1.0), "seed"),
        (dict(sessions_per_user_day=0.0), "sessions_per_user_day"),
        (dict(impressions_per_session=0), "impressions_per_session"),
        (dict(new_listings_per_day=-1), "new_listings_per_day"),
        (dict(preference_shift_day=30), "preference_shift_day"),
        (dict(preference_shift_day=-1), "preference_shift_day"),
        (dict(shift_strength=1.5), "shift_strength"),
        (dict(shift_strength=float("nan")), "shift_strength"),
        (dict(sessions_per_user_day=float("inf")), "sessions_per_user_day"),
        (dict(start_date=dt.datetime(2026, 9, 1)), "start_date"),
    ],
)
def test_bad_config_is_rejected_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        SimulatorConfig(**overrides)


def test_unknown_preset_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="games, fashion"):
        SimulatorConfig(preset="books")
