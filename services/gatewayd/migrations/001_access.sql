-- 001_access.sql - accounts, regions, tokens and the audit log of sr-gatewayd.
--
-- Passwords are argon2id strings (libsodium crypto_pwhash_str); tokens are stored only as the
-- SHA-256 of the bearer text. Every mutable row has a version that updates must send back.

CREATE TABLE access.regions (
    id bigserial PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE access.users (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    display_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    roles text[] NOT NULL DEFAULT '{}',
    disabled boolean NOT NULL DEFAULT false,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- the regions a user is bound to; a region in use cannot be deleted
CREATE TABLE access.user_regions (
    user_id bigint NOT NULL REFERENCES access.users (id) ON DELETE CASCADE,
    region_id bigint NOT NULL REFERENCES access.regions (id),
    PRIMARY KEY (user_id, region_id)
);
CREATE INDEX user_regions_region ON access.user_regions (region_id);

CREATE TABLE access.tokens (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES access.users (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('session', 'api')),
    name text NOT NULL DEFAULT '',
    hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX tokens_user ON access.tokens (user_id, id);

CREATE TABLE access.audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id bigint,
    actor_name text NOT NULL,
    actor_roles text[] NOT NULL DEFAULT '{}',
    region text NOT NULL DEFAULT '',
    action text NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL DEFAULT '',
    before jsonb,
    after jsonb,
    request_id text NOT NULL DEFAULT '',
    method text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON access.audit USING brin (at);
CREATE INDEX audit_actor ON access.audit (actor_id, id);
CREATE INDEX audit_entity ON access.audit (entity, entity_id, id);
