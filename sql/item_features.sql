-- item_features: one profile per item (demand, funnel conversion, catalogue facts, availability), as
-- known at the cutoff.
-- grain: one row per item in `items` (items with no activity get zeros). key: item_id.
-- definitions:
--   n_users          distinct users with a view, add_to_cart, purchase, rating or play of the item.
--   popularity_rank  1 = most distinct users (then most purchases); tied items share a rank.
--   view_to_cart_rate = n_add_to_carts / n_views, view_to_purchase_rate = n_purchases / n_views
--                    (NULL without views); cart_to_purchase_rate = n_purchases / n_add_to_carts (NULL
--                    without carts). counts are events, so a rate can exceed 1 (e.g. buying without a view).
--   is_listed        listed by the cutoff: listed_at NULL or <= cutoff (always true without a cutoff:
--                    the catalogue is today's).
--   listing_age_days days from listed_at to the cutoff (0 if listed after the latest event when there is
--                    no cutoff); NULL if listed_at is unknown or the item was not listed yet.
--   is_available     could be shown at the cutoff: is_listed and either still active today, or sold
--                    no earlier than the cutoff. `is_active` is today's state, so for an inactive
--                    listing the purchase log says when it left: a one-of-a-kind listing sold before
--                    the cutoff is unavailable, one sold later was still available then; games (active)
--                    stay available however often they sell. an inactive item never sold (delisted)
--                    is unavailable at every cutoff, as nothing says when it left. this is the only
--                    column that reads events after the cutoff, and only to undo what today's
--                    is_active already reveals. items with is_active NULL count as active.
--   is_listed_later  listed after the cutoff and for sale once listed (active today, or sold since):
--                    a listing the shop will show during the period after the cutoff. only its
--                    existence and attributes are known then, never its demand; with a NULL cutoff
--                    nothing is listed later. a content model may propose it (see listed_at).
--   title, listed_at the catalogue's own title and listing time (attributes for content models).
-- parameters:
--   $cutoff   TIMESTAMPTZ or NULL. only events with event_at < $cutoff are counted and ages are
--             measured at $cutoff; NULL = all events, measured at the latest event time, and
--             is_available = is_active. undated events (Steam) count only when $cutoff is NULL.
-- inputs: events, items.

with

parameters as (
    select cast($cutoff as timestamptz) as cutoff
),

all_purchases as (
    -- deliberately not cut at the cutoff (see is_available), so it comes before `events` is narrowed.
    select item_id, event_at
    from events
    where event_type = 'purchase' and item_id is not null
),

events as (
    select events.*
    from events
    cross join parameters
    where parameters.cutoff is null or events.event_at < parameters.cutoff
),

items as (
    select * from items
),

measured as (
    select coalesce((select cutoff from parameters), (select max(event_at) from events)) as measured_at
),

interaction_events as (
    select *
    from events
    where item_id is not null
        and event_type in ('view', 'add_to_cart', 'purchase', 'rating', 'play')
),

demand as (
    select
        item_id,
        count(distinct user_id) as n_users,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_carts,
        count(*) filter (where event_type = 'purchase') as n_purchases,
        count(*) filter (where event_type = 'rating') as n_ratings,
        count(*) filter (where event_type = 'play') as n_plays
    from interaction_events
    group by item_id
),

first_sales as (
    select
        item_id,
        min(event_at) as first_purchase_at
    from all_purchases
    group by item_id
),

listings as (
    select
        items.*,
        -- with no cutoff the catalogue is today's, so every item in it is listed, however fresh.
        items.listed_at is null
            or (select cutoff from parameters) is null
            or items.listed_at <= (select cutoff from parameters) as is_listed
    from items
),

final as (
    select
        items.item_id,
        coalesce(demand.n_users, 0) as n_users,
        coalesce(demand.n_views, 0) as n_views,
        coalesce(demand.n_add_to_carts, 0) as n_add_to_carts,
        coalesce(demand.n_purchases, 0) as n_purchases,
        coalesce(demand.n_ratings, 0) as n_ratings,
        coalesce(demand.n_plays, 0) as n_plays,
        rank() over (
            order by coalesce(demand.n_users, 0) desc, coalesce(demand.n_purchases, 0) desc
        ) as popularity_rank,
        case when demand.n_views > 0 then demand.n_add_to_carts / demand.n_views end as view_to_cart_rate,
        case
            when demand.n_add_to_carts > 0 then demand.n_purchases / demand.n_add_to_carts
        end as cart_to_purchase_rate,
        case when demand.n_views > 0 then demand.n_purchases / demand.n_views end as view_to_purchase_rate,
        items.price,
        items.category,
        items.brand,
        items.condition,
        items.title,
        items.listed_at,
        case
            when items.is_listed and items.listed_at > measured.measured_at then 0.0
            when items.is_listed then (epoch(measured.measured_at) - epoch(items.listed_at)) / 86400.0
        end as listing_age_days,
        items.is_listed,
        coalesce(
            items.is_listed
            and (
                -- a source without is_active says nothing about delisting, so its items stay available.
                coalesce(items.is_active, true)
                or first_sales.first_purchase_at >= (select cutoff from parameters)
            ),
            false
        ) as is_available,
        coalesce(
            not items.is_listed
            and (coalesce(items.is_active, true) or first_sales.first_purchase_at is not null),
            false
        ) as is_listed_later
    from listings as items
    cross join measured
    left join demand on items.item_id = demand.item_id
    left join first_sales on items.item_id = first_sales.item_id
)

select * from final
order by item_id
