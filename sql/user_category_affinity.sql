-- user_category_affinity: how a user's interest divides across categories, as known at the cutoff.
-- grain: one row per (user_id, category) the user interacted with. key: (user_id, category).
-- strength = sum of the user's interaction weights on items of the category (same weights as
-- user_item_interactions, without decay); share = strength / the user's total, so shares sum to 1 per
-- user; category_rank 1 = favourite (ties: alphabetical). items without a category are left out, so a
-- source without categories (Steam) gives no rows.
-- parameters:
--   $cutoff   TIMESTAMPTZ or NULL. only events with event_at < $cutoff; NULL = all events. undated
--             events (Steam) are used only when $cutoff is NULL.
--   $w_view, $w_add_to_cart, $w_purchase, $w_rating, $w_play   DOUBLE >= 0
--             (rating weighted by rating / 5, play by ln(1 + hours)).
-- inputs: events, items.

with

parameters as (
    select
        cast($cutoff as timestamptz) as cutoff,
        cast($w_view as double) as w_view,
        cast($w_add_to_cart as double) as w_add_to_cart,
        cast($w_purchase as double) as w_purchase,
        cast($w_rating as double) as w_rating,
        cast($w_play as double) as w_play
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

weighted as (
    select
        events.user_id,
        items.category,
        coalesce(
            case events.event_type
                when 'view' then parameters.w_view
                when 'add_to_cart' then parameters.w_add_to_cart
                when 'purchase' then parameters.w_purchase
                when 'rating' then parameters.w_rating * events.value / 5.0
                when 'play' then parameters.w_play * ln(1 + greatest(events.value, 0))
            end,
            0
        ) as weight
    from events
    inner join items on events.item_id = items.item_id
    cross join parameters
    where events.event_type in ('view', 'add_to_cart', 'purchase', 'rating', 'play')
        and items.category is not null
),

by_category as (
    select
        user_id,
        category,
        sum(weight) as strength,
        count(*) as n_interactions
    from weighted
    group by user_id, category
    having sum(weight) > 0
),

final as (
    select
        user_id,
        category,
        strength,
        n_interactions,
        strength / sum(strength) over (partition by user_id) as share,
        row_number() over (partition by user_id order by strength desc, category) as category_rank
    from by_category
)

select * from final
order by user_id, category_rank
