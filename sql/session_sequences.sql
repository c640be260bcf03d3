-- session_sequences: what each visit looked at, in order; input for session-based sequence models.
-- grain: one row per session with at least one item event. key: session_id.
-- item_ids lists the items of the session's view, add_to_cart, purchase and rating events, ordered by
-- event_at then event_id; event_types is the parallel list of event types; n_events their number.
-- ratings are included because rating-only sources (MovieLens) have nothing else; plays are left out
-- because they are use of a game already bought, not a step towards choosing one.
-- events without a session_id (MovieLens, Steam) are grouped per user per UTC day into pseudo-sessions
-- with session_id = user_id || ':' || 'YYYY-MM-DD' (user_id || ':undated' when there is no time).
-- started_at, ended_at: first and last of those events (NULL when undated).
-- parameters:
--   $cutoff   TIMESTAMPTZ or NULL. only events with event_at < $cutoff (a session running across the
--             cutoff is cut there); NULL = all events. undated events are used only when $cutoff is NULL.
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
        coalesce(
            session_id,
            user_id || ':' || coalesce(cast(cast(event_at as date) as varchar), 'undated')
        ) as session_id,
        user_id,
        event_id,
        event_at,
        item_id,
        event_type
    from events
    where item_id is not null
        and event_type in ('view', 'add_to_cart', 'purchase', 'rating')
),

sessions as (
    select
        session_id,
        user_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        list(item_id order by event_at, event_id) as item_ids,
        list(event_type order by event_at, event_id) as event_types,
        count(*) as n_events
    from item_events
    group by session_id, user_id
),

final as (
    select * from sessions
)

select * from final
order by session_id
