-- 001_tasks.sql - campaigns (projects), shows, tasks, SOP templates and recurring rules of
-- sr-taskd.
--
-- Every mutable row has a version that updates must send back. Status values are checked here;
-- which transitions are allowed is taskd's (taskd_lifecycle.c). Two shows of one room, or of one
-- anchor, must not overlap: taskd checks that under an advisory lock per room and per anchor, so
-- two planners cannot book the same slot at once.

CREATE TABLE tasks.projects (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand text NOT NULL DEFAULT '',
    region text NOT NULL,
    platforms text[] NOT NULL DEFAULT '{}',
    starts_at timestamptz,
    ends_at timestamptz,
    owner_id bigint NOT NULL DEFAULT 0,
    gmv_target_fen bigint NOT NULL DEFAULT 0 CHECK (gmv_target_fen >= 0),
    reach_target bigint NOT NULL DEFAULT 0 CHECK (reach_target >= 0),
    follower_target bigint NOT NULL DEFAULT 0 CHECK (follower_target >= 0),
    budget_fen bigint NOT NULL DEFAULT 0 CHECK (budget_fen >= 0),
    status text NOT NULL DEFAULT 'proposed'
        CHECK (status IN ('proposed', 'planning', 'executing', 'reviewing', 'closed', 'cancelled')),
    auto_schedule boolean NOT NULL DEFAULT false,
    wip_todo integer NOT NULL DEFAULT 0 CHECK (wip_todo >= 0),
    wip_doing integer NOT NULL DEFAULT 0 CHECK (wip_doing >= 0),
    wip_blocked integer NOT NULL DEFAULT 0 CHECK (wip_blocked >= 0),
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at >= starts_at)
);
CREATE INDEX projects_region ON tasks.projects (region, id);

CREATE TABLE tasks.shows (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES tasks.projects (id),
    platform text NOT NULL CHECK (platform IN ('channels', 'douyin', 'kuaishou', 'taobao')),
    room_id text NOT NULL,
    anchor_id bigint NOT NULL DEFAULT 0,
    controller_id bigint NOT NULL DEFAULT 0,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    theme text NOT NULL DEFAULT '',
    gmv_target_fen bigint NOT NULL DEFAULT 0 CHECK (gmv_target_fen >= 0),
    status text NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'live', 'ended', 'reviewed', 'cancelled')),
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX shows_project ON tasks.shows (project_id, starts_at);
CREATE INDEX shows_room ON tasks.shows (platform, room_id, starts_at);
CREATE INDEX shows_anchor ON tasks.shows (anchor_id, starts_at) WHERE anchor_id <> 0;

-- the rest of a show's crew by role (operator, content, cs, ...), for assigning template tasks
CREATE TABLE tasks.show_crew (
    show_id bigint NOT NULL REFERENCES tasks.shows (id) ON DELETE CASCADE,
    pos integer NOT NULL,
    role text NOT NULL,
    user_id bigint NOT NULL,
    PRIMARY KEY (show_id, pos)
);

CREATE TABLE tasks.templates (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    project_id bigint REFERENCES tasks.projects (id),
    builtin boolean NOT NULL DEFAULT false,
    builtin_key text UNIQUE,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks.template_steps (
    template_id bigint NOT NULL REFERENCES tasks.templates (id) ON DELETE CASCADE,
    pos integer NOT NULL,
    key text NOT NULL,
    title text NOT NULL,
    phase text NOT NULL CHECK (phase IN ('prep', 'live', 'review')),
    role text NOT NULL DEFAULT '',
    offset_minutes bigint NOT NULL,
    duration_minutes bigint NOT NULL CHECK (duration_minutes >= 0),
    priority text NOT NULL DEFAULT 'P2' CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    depends_on text[] NOT NULL DEFAULT '{}',
    checklist text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (template_id, pos),
    UNIQUE (template_id, key)
);

CREATE TABLE tasks.recurring (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES tasks.projects (id),
    title text NOT NULL,
    phase text NOT NULL CHECK (phase IN ('prep', 'live', 'review')),
    role text NOT NULL DEFAULT '',
    assignee_id bigint NOT NULL DEFAULT 0,
    priority text NOT NULL DEFAULT 'P2' CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    weekdays integer[] NOT NULL DEFAULT '{}',
    at_minute integer NOT NULL CHECK (at_minute BETWEEN 0 AND 1439),
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 0 AND 10080),
    starts_on date NOT NULL,
    ends_on date,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks.tasks (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES tasks.projects (id),
    show_id bigint REFERENCES tasks.shows (id),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    phase text NOT NULL DEFAULT 'prep' CHECK (phase IN ('prep', 'live', 'review')),
    assignee_id bigint NOT NULL DEFAULT 0,
    role text NOT NULL DEFAULT '',
    priority text NOT NULL DEFAULT 'P2' CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    starts_at timestamptz,
    due_at timestamptz,
    estimate_hours double precision NOT NULL DEFAULT 0 CHECK (estimate_hours >= 0),
    status text NOT NULL DEFAULT 'todo'
        CHECK (status IN ('todo', 'doing', 'blocked', 'done', 'cancelled')),
    template_id bigint REFERENCES tasks.templates (id) ON DELETE SET NULL,
    template_key text,
    recurring_id bigint REFERENCES tasks.recurring (id) ON DELETE SET NULL,
    occurs_on date,
    -- reminders sent for the current due date and state; cleared when either changes
    due_soon_sent boolean NOT NULL DEFAULT false,
    overdue_sent boolean NOT NULL DEFAULT false,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (due_at IS NULL OR starts_at IS NULL OR due_at >= starts_at),
    UNIQUE (show_id, template_id, template_key),
    UNIQUE (recurring_id, occurs_on)
);
CREATE INDEX tasks_project ON tasks.tasks (project_id, id);
CREATE INDEX tasks_assignee ON tasks.tasks (assignee_id, due_at) WHERE assignee_id <> 0;
CREATE INDEX tasks_open_due ON tasks.tasks (due_at) WHERE status IN ('todo', 'doing', 'blocked');

-- the templates applied to a show: each applies once
CREATE TABLE tasks.show_templates (
    show_id bigint NOT NULL REFERENCES tasks.shows (id) ON DELETE CASCADE,
    template_id bigint NOT NULL REFERENCES tasks.templates (id) ON DELETE CASCADE,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (show_id, template_id)
);

CREATE TABLE tasks.task_checklist (
    id bigserial PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES tasks.tasks (id) ON DELETE CASCADE,
    text text NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
    done boolean NOT NULL DEFAULT false
);
CREATE INDEX task_checklist_task ON tasks.task_checklist (task_id, id);

-- finish-to-start: task_id starts after depends_on finishes
CREATE TABLE tasks.task_deps (
    task_id bigint NOT NULL REFERENCES tasks.tasks (id) ON DELETE CASCADE,
    depends_on bigint NOT NULL REFERENCES tasks.tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on),
    CHECK (task_id <> depends_on)
);
CREATE INDEX task_deps_depends_on ON tasks.task_deps (depends_on);

CREATE TABLE tasks.task_comments (
    id bigserial PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES tasks.tasks (id) ON DELETE CASCADE,
    author_id bigint NOT NULL,
    author text NOT NULL DEFAULT '',
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_comments_task ON tasks.task_comments (task_id, id);
