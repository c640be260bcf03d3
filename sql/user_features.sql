-- user_features: one profile per user (activity, spend, taste, tenure), as known at the cutoff.
-- grain: one row per user in `users` (users with no activity get zeros). key: user_id.
-- definitions:
--   n_events        the user's own actions: every event except impressions (those are what the shop
--                   showed, not what the user did).
--   n_sessions      visits, counting every event type; events without a session_id are grouped per
--                   user per UTC day (per user when undated), as in session_sequences.
--   n_active_days   distinct UTC days with any event (0 for undated sources).
--   n_interactions  view + add_to_cart + purchase + rating + play events.
--   frequency       n_interactions / n_active_days: interactions per active day; 0 with no
--                   interactions, NULL when the user's events have no dates (Steam).
--   recency_days    days from the user's last event (any type) to the cutoff; NULL if none or undated.
--   monetary        sum of purchase prices (the event's price, else the item's list price).
--   price_level     mean price over view, add_to_cart and purchase events; NULL if none has a price.
--   top_category    the category with most interactions (ties: alphabetical); top_category_share is
--                   its share of the user's interactions with items of a known category.
--   avg_session_events   n_events / n_sessions; avg_session_seconds: mean session span (first to last
--                   event of any type); NULL without sessions.
--   signup_age_days days from signup to the cutoff; NULL if unknown or not yet signed up at the cutoff
--                   (0 for a signup after the latest event when there is no cutoff).
-- parameters:
--   $cutoff   TIMESTAMPTZ or NULL. only events with event_at < $cutoff are used and ages are measured
--             at $cutoff; NULL = all events, measured at the latest event time. undated events (Steam)
--             are used only when $cutoff is NULL.
-- inputs: events, items, users.

with

parameters as (
    select cast($cutoff as timestamptz) as cutoff
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

users as (
    select * from users
),

measured as (
    select coalesce((select cutoff from parameters), (select max(event_at) from events)) as measured_at
),

user_events as (
    select
        events.*,
        coalesce(
            events.session_id,
            events.user_id || ':' || coalesce(cast(cast(events.event_at as date) as varchar), 'undated')
        ) as visit_id,
        cast(events.event_at as date) as event_on,
        events.event_type in ('view', 'add_to_cart', 'purchase', 'rating', 'play')
            and events.item_id is not null as is_interaction,
        coalesce(events.price, items.price) as known_price,
        items.category
    from events
    left join items on events.item_id = items.item_id
),

activity as (
    select
        user_id,
        count(*) filter (where event_type <> 'impression') as n_events,
        count(distinct visit_id) as n_sessions,
        count(distinct event_on) as n_active_days,
        count(*) filter (where is_interaction) as n_interactions,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_carts,
        count(*) filter (where event_type = 'purchase') as n_purchases,
        max(event_at) as last_event_at,
        coalesce(sum(known_price) filter (where event_type = 'purchase'), 0) as monetary,
        avg(known_price) filter (where event_type in ('view', 'add_to_cart', 'purchase')) as price_level
    from user_events
    group by user_id
),

visits as (
    select
        user_id,
        visit_id,
        epoch(max(event_at)) - epoch(min(event_at)) as visit_seconds
    from user_events
    group by user_id, visit_id
),

visit_lengths as (
    select
        user_id,
        avg(visit_seconds) as avg_session_seconds
    from visits
    group by user_id
),

category_counts as (
    select
        user_id,
        category,
        count(*) as n_category_interactions
    from user_events
    where is_interaction and category is not null
    group by user_id, category
),

category_ranked as (
    select
        *,
        n_category_interactions / sum(n_category_interactions) over (partition by user_id) as category_share,
        row_number() over (
            partition by user_id order by n_category_interactions desc, category
        ) as category_rank
    from category_counts
),

top_categories as (
    select
        user_id,
        category as top_category,
        category_share as top_category_share
    from category_ranked
    where category_rank = 1
),

final as (
    select
        users.user_id,
        coalesce(activity.n_events, 0) as n_events,
        coalesce(activity.n_sessions, 0) as n_sessions,
        coalesce(activity.n_active_days, 0) as n_active_days,
        coalesce(activity.n_interactions, 0) as n_interactions,
        coalesce(activity.n_views, 0) as n_views,
        coalesce(activity.n_add_to_carts, 0) as n_add_to_carts,
        coalesce(activity.n_purchases, 0) as n_purchases,
        (epoch(measured.measured_at) - epoch(activity.last_event_at)) / 86400.0 as recency_days,
        case
            when coalesce(activity.n_interactions, 0) = 0 then 0.0
            when activity.n_active_days = 0 then null
            else activity.n_interactions / activity.n_active_days
        end as frequency,
        coalesce(activity.monetary, 0.0) as monetary,
        activity.price_level,
        top_categories.top_category,
        top_categories.top_category_share,
        activity.n_events / activity.n_sessions as avg_session_events,
        visit_lengths.avg_session_seconds,
        case
            when users.signup_at > (select cutoff from parameters) then null
            -- with no cutoff the user list is today's, so a signup after the latest event is just new.
            when users.signup_at > measured.measured_at then 0.0
            else (epoch(measured.measured_at) - epoch(users.signup_at)) / 86400.0
        end as signup_age_days,
        users.segment,
        users.country
    from users
    cross join measured
    left join activity on users.user_id = activity.user_id
    left join visit_lengths on users.user_id = visit_lengths.user_id
    left join top_categories on users.user_id = top_categories.user_id
)

select * from final
order by user_id
