-- user_item_interactions: how strongly each user has shown interest in each item, as known at the cutoff.
-- grain: one row per (user_id, item_id) with strength > 0. key: (user_id, item_id).
-- strength = sum over the pair's events of (type weight x recency decay):
--   view $w_view, add_to_cart $w_add_to_cart, purchase $w_purchase,
--   rating $w_rating x rating / 5, play $w_play x ln(1 + hours).
--   impressions and searches say nothing about liking an item: weight 0, left out.
--   decay = 0.5 ^ (age_days / $half_life_days), age measured at the cutoff; $half_life_days NULL = no decay.
-- parameters:
--   $cutoff           TIMESTAMPTZ or NULL. only events with event_at < $cutoff are used and ages are
--                     measured at $cutoff; NULL = all events, measured at the latest event time.
--                     events without a time (Steam) are used only when $cutoff is NULL, with decay 1:
--                     nothing proves they happened before a given cutoff.
--   $w_view, $w_add_to_cart, $w_purchase, $w_rating, $w_play   DOUBLE >= 0
--   $half_life_days   DOUBLE > 0 or NULL
-- inputs: events.

with

parameters as (
    select
        cast($cutoff as timestamptz) as cutoff,
        cast($w_view as double) as w_view,
        cast($w_add_to_cart as double) as w_add_to_cart,
        cast($w_purchase as double) as w_purchase,
        cast($w_rating as double) as w_rating,
        cast($w_play as double) as w_play,
        cast($half_life_days as double) as half_life_days
),

events as (
    select events.*
    from events
    cross join parameters
    where parameters.cutoff is null or events.event_at < parameters.cutoff
),

measured as (
    -- the moment ages are measured at; NULL when no event has a time.
    select coalesce((select cutoff from parameters), (select max(event_at) from events)) as measured_at
),

interaction_events as (
    select
        event_id,
        event_at,
        user_id,
        item_id,
        event_type,
        value
    from events
    where item_id is not null
        and event_type in ('view', 'add_to_cart', 'purchase', 'rating', 'play')
),

weighted as (
    select
        interaction_events.*,
        -- a rating or play without its value carries no usable signal, hence 0 rather than NULL.
        coalesce(
            case interaction_events.event_type
                when 'view' then parameters.w_view
                when 'add_to_cart' then parameters.w_add_to_cart
                when 'purchase' then parameters.w_purchase
                when 'rating' then parameters.w_rating * interaction_events.value / 5.0
                when 'play' then parameters.w_play * ln(1 + greatest(interaction_events.value, 0))
            end,
            0
        ) as weight,
        (epoch(measured.measured_at) - epoch(interaction_events.event_at)) / 86400.0 as age_days,
        parameters.half_life_days
    from interaction_events
    cross join parameters
    cross join measured
),

decayed as (
    select
        *,
        case
            when half_life_days is null or age_days is null then 1.0
            else power(0.5, age_days / half_life_days)
        end as decay
    from weighted
),

pairs as (
    select
        user_id,
        item_id,
        sum(weight * decay) as strength,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_carts,
        count(*) filter (where event_type = 'purchase') as n_purchases,
        count(*) filter (where event_type = 'rating') as n_ratings,
        count(*) filter (where event_type = 'play') as n_plays,
        -- the latest rating wins when a user re-rated; event_id breaks ties in time so reruns agree.
        (list(value order by event_at desc nulls last, event_id desc) filter (where event_type = 'rating'))[1]
            as rating,
        coalesce(sum(value) filter (where event_type = 'play'), 0) as play_hours,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from decayed
    group by user_id, item_id
),

final as (
    select
        user_id,
        item_id,
        strength,
        n_views,
        n_add_to_carts,
        n_purchases,
        n_ratings,
        n_plays,
        rating,
        play_hours,
        first_event_at,
        last_event_at
    from pairs
    where strength > 0
)

select * from final
order by user_id, item_id
