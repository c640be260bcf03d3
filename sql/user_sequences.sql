-- user_sequences: each user's whole item history in order; input for next-item sequence models.
-- grain: one row per user with at least one item event. key: user_id.
-- item_ids lists the items of the user's view, add_to_cart, purchase and rating events across all
-- sessions (the same events as session_sequences), ordered by event_at then event_id; event_types is
-- the parallel list; n_items its length (events, not distinct items); last_item_id, last_event_at the
-- most recent of them.
-- parameters:
--   $cutoff   TIMESTAMPTZ or NULL. only events with event_at < $cutoff; NULL = all events. undated
--             events (Steam) are used only when $cutoff is NULL, ordered by event_id alone.
-- inputs: events.

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

item_events as (
    select
        user_id,
        event_id,
        event_at,
        item_id,
        event_type
    from events
    where item_id is not null
        and event_type in ('view', 'add_to_cart', 'purchase', 'rating')
),

histories as (
    select
        user_id,
        list(item_id order by event_at, event_id) as item_ids,
        list(event_type order by event_at, event_id) as event_types,
        count(*) as n_items,
        max(event_at) as last_event_at
    from item_events
    group by user_id
),

final as (
    select
        user_id,
        item_ids,
        event_types,
        n_items,
        item_ids[n_items] as last_item_id,
        last_event_at
    from histories
)

select * from final
order by user_id
