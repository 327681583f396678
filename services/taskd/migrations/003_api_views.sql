-- 003_api_views.sql - the reads taskd publishes for the gateway to answer without a call
-- (DESIGN: others read through views the owner publishes). Columns are named after the fields
-- of the message the matching RPC method answers with (proto/tasks.proto), so that the gateway
-- decodes a row as that message (common/sr_pbrow.h) and writes the same JSON; the region column
-- lets it show a caller only the rows of their regions. Change a view with its message.

CREATE VIEW tasks.api_projects AS
SELECT p.id, p.name, p.brand, p.region, p.platforms,
       coalesce((extract(epoch FROM p.starts_at) * 1000000)::bigint, 0) AS starts_us,
       coalesce((extract(epoch FROM p.ends_at) * 1000000)::bigint, 0) AS ends_us,
       p.owner_id, p.gmv_target_fen, p.reach_target, p.follower_target, p.budget_fen, p.status,
       p.auto_schedule, p.wip_todo, p.wip_doing, p.wip_blocked, p.version,
       (extract(epoch FROM p.created_at) * 1000000)::bigint AS created_us,
       (extract(epoch FROM p.updated_at) * 1000000)::bigint AS updated_us
FROM tasks.projects p;
