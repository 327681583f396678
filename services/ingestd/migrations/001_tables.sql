-- 001_tables.sql - live-room samples, orders and interactions, partitioned by day.
--
-- The hot tables are append-only and carry a BRIN index on ts only: it costs almost nothing per
-- row and answers "one room over a time range" together with partition pruning. Every table
-- has a DEFAULT partition so a row outside the daily partitions never fails a batch.
-- metrics.ensure_partitions() is called by sr-ingestd at start-up and from its cron.

CREATE TABLE metrics.room_samples (
    platform smallint NOT NULL,
    room_id text NOT NULL,
    session_id text NOT NULL,
    ts timestamptz NOT NULL,
    online_viewers bigint NOT NULL,
    cumulative_viewers bigint NOT NULL,
    new_viewers bigint NOT NULL,
    avg_watch_seconds bigint NOT NULL,
    likes bigint NOT NULL,
    comments bigint NOT NULL,
    shares bigint NOT NULL,
    new_followers bigint NOT NULL,
    fan_club_joins bigint NOT NULL,
    product_impressions bigint NOT NULL,
    product_clicks bigint NOT NULL,
    orders_created bigint NOT NULL,
    orders_paid bigint NOT NULL,
    paid_buyers bigint NOT NULL,
    gmv_fen bigint NOT NULL,
    refunds_count bigint NOT NULL,
    refunds_fen bigint NOT NULL,
    ad_spend_fen bigint NOT NULL
) PARTITION BY RANGE (ts);

CREATE TABLE metrics.orders (
    platform smallint NOT NULL,
    room_id text NOT NULL,
    session_id text NOT NULL,
    ts timestamptz NOT NULL,
    order_id text NOT NULL,
    sku_id text NOT NULL,
    status smallint NOT NULL,
    quantity bigint NOT NULL,
    amount_fen bigint NOT NULL,
    buyer_hash text NOT NULL
) PARTITION BY RANGE (ts);

CREATE TABLE metrics.interactions (
    platform smallint NOT NULL,
    room_id text NOT NULL,
    session_id text NOT NULL,
    ts timestamptz NOT NULL,
    kind smallint NOT NULL,
    count bigint NOT NULL,
    value_fen bigint NOT NULL,
    text text NOT NULL,
    user_hash text NOT NULL
) PARTITION BY RANGE (ts);

CREATE INDEX room_samples_ts_brin ON metrics.room_samples USING brin (ts);
CREATE INDEX orders_ts_brin ON metrics.orders USING brin (ts);
CREATE INDEX interactions_ts_brin ON metrics.interactions USING brin (ts);

CREATE TABLE metrics.room_samples_default PARTITION OF metrics.room_samples DEFAULT;
CREATE TABLE metrics.orders_default PARTITION OF metrics.orders DEFAULT;
CREATE TABLE metrics.interactions_default PARTITION OF metrics.interactions DEFAULT;

-- one row per batch ever stored: written in the same transaction as the batch's rows, so a
-- resent batch is recognised and skipped
CREATE TABLE metrics.batches (
    collector_id text NOT NULL,
    batch_seq bigint NOT NULL,
    rows int NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collector_id, batch_seq)
);

-- per room and minute: the latest gauges of the minute's last sample, paid orders and
-- interactions summed; filled by metrics.roll_minutes() as minutes close
CREATE TABLE metrics.room_minutes (
    platform smallint NOT NULL,
    room_id text NOT NULL,
    minute timestamptz NOT NULL,
    session_id text NOT NULL,
    online_viewers bigint NOT NULL DEFAULT 0,
    cumulative_viewers bigint NOT NULL DEFAULT 0,
    likes bigint NOT NULL DEFAULT 0,
    comments bigint NOT NULL DEFAULT 0,
    orders_paid bigint NOT NULL DEFAULT 0,
    gmv_fen bigint NOT NULL DEFAULT 0,
    refunds_fen bigint NOT NULL DEFAULT 0,
    paid_orders bigint NOT NULL DEFAULT 0,
    paid_amount_fen bigint NOT NULL DEFAULT 0,
    interactions bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (platform, room_id, minute)
);

-- roll_minutes - (re)compute room_minutes for the minutes in [since, until); recomputing a
-- window of recent minutes each time picks up rows that arrived late. Returns rows written.
CREATE FUNCTION metrics.roll_minutes(since timestamptz, until timestamptz) RETURNS int
LANGUAGE sql AS $fn$
    WITH s AS (
        SELECT DISTINCT ON (platform, room_id, date_trunc('minute', ts))
               platform, room_id, date_trunc('minute', ts) AS minute, session_id,
               online_viewers, cumulative_viewers, likes, comments, orders_paid, gmv_fen,
               refunds_fen
        FROM metrics.room_samples WHERE ts >= since AND ts < until
        ORDER BY platform, room_id, date_trunc('minute', ts), ts DESC
    ), o AS (
        SELECT platform, room_id, date_trunc('minute', ts) AS minute,
               max(session_id) AS o_session, count(*) AS n, sum(amount_fen) AS amount
        FROM metrics.orders WHERE ts >= since AND ts < until AND status = 2 /* PAID */
        GROUP BY 1, 2, 3
    ), i AS (
        SELECT platform, room_id, date_trunc('minute', ts) AS minute,
               max(session_id) AS i_session, sum(count) AS n
        FROM metrics.interactions WHERE ts >= since AND ts < until
        GROUP BY 1, 2, 3
    ), up AS (
        INSERT INTO metrics.room_minutes AS m
        SELECT platform, room_id, minute, coalesce(s.session_id, o_session, i_session),
               coalesce(s.online_viewers, 0), coalesce(s.cumulative_viewers, 0),
               coalesce(s.likes, 0), coalesce(s.comments, 0), coalesce(s.orders_paid, 0),
               coalesce(s.gmv_fen, 0), coalesce(s.refunds_fen, 0), coalesce(o.n, 0),
               coalesce(o.amount, 0), coalesce(i.n, 0)
        FROM s FULL JOIN o USING (platform, room_id, minute)
               FULL JOIN i USING (platform, room_id, minute)
        ON CONFLICT (platform, room_id, minute) DO UPDATE SET
            session_id = EXCLUDED.session_id, online_viewers = EXCLUDED.online_viewers,
            cumulative_viewers = EXCLUDED.cumulative_viewers, likes = EXCLUDED.likes,
            comments = EXCLUDED.comments, orders_paid = EXCLUDED.orders_paid,
            gmv_fen = EXCLUDED.gmv_fen, refunds_fen = EXCLUDED.refunds_fen,
            paid_orders = EXCLUDED.paid_orders, paid_amount_fen = EXCLUDED.paid_amount_fen,
            interactions = EXCLUDED.interactions
        RETURNING 1
    )
    SELECT count(*)::int FROM up
$fn$;

-- ensure_partitions - daily partitions (UTC days) for today .. today + days_ahead of every hot
-- table, and drop the daily partitions older than retention_days. A day whose rows already sit
-- in the DEFAULT partition cannot get its own partition; it is skipped with a notice and its
-- rows stay where they are. Returns the number of partitions created plus dropped.
CREATE FUNCTION metrics.ensure_partitions(days_ahead int, retention_days int) RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
    d date;
    today date := (now() AT TIME ZONE 'UTC')::date;
    part record;
    changed int := 0;
BEGIN
    -- instances starting together would race to create the same partition
    PERFORM pg_advisory_xact_lock(hashtextextended('metrics.ensure_partitions', 0));
    FOREACH t IN ARRAY ARRAY['room_samples', 'orders', 'interactions'] LOOP
        FOR i IN 0 .. days_ahead LOOP
            d := today + i;
            IF to_regclass(format('metrics.%I', t || '_' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                BEGIN
                    EXECUTE format('CREATE TABLE metrics.%I PARTITION OF metrics.%I '
                                   'FOR VALUES FROM (%L) TO (%L)',
                                   t || '_' || to_char(d, 'YYYYMMDD'), t,
                                   d::timestamp AT TIME ZONE 'UTC',
                                   (d + 1)::timestamp AT TIME ZONE 'UTC');
                    changed := changed + 1;
                EXCEPTION WHEN check_violation THEN
                    RAISE NOTICE 'metrics.%: rows for % are in the default partition', t, d;
                END;
            END IF;
        END LOOP;
        FOR part IN
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = format('metrics.%I', t)::regclass
              AND c.relname ~ ('^' || t || '_[0-9]{8}$')
              AND to_date(right(c.relname, 8), 'YYYYMMDD') < today - retention_days
        LOOP
            EXECUTE format('DROP TABLE metrics.%I', part.relname);
            changed := changed + 1;
        END LOOP;
    END LOOP;
    RETURN changed;
END
$fn$;
