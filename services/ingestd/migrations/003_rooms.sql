-- 003_rooms.sql - the room registry: which region a platform's live room belongs to.
--
-- Written through sr-ingestd's RPC methods metrics.room.* (the gateway's /api/v1/rooms), read
-- by them to scope every room's numbers to its region. platform is the lower-case name
-- ("douyin"); region is a region code of the gateway's access.regions, "" when unassigned.
CREATE TABLE metrics.rooms (
    platform text NOT NULL,
    room_id text NOT NULL,
    region text NOT NULL DEFAULT '',
    name text NOT NULL DEFAULT '',
    version bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, room_id)
);
CREATE INDEX rooms_region ON metrics.rooms (region, platform, room_id);
