-- 002_pollers.sql - the ingestd instances that poll the platforms, so they can share the rooms.
--
-- Each polling instance refreshes its row every few seconds; an instance polls the rooms whose
-- hash modulo the number of live rows equals its place among them (ordered by name). A row not
-- refreshed for a while belongs to an instance that died, and the others take its rooms over.
CREATE TABLE metrics.pollers (
    instance text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
