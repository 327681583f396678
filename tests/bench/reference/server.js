'use strict';
// server.js - the yardstick of `make bench-gateway`: GET /api/v1/projects/:id and
// GET /api/v1/projects/:id/tasks as sr-gatewayd serves them (through sr-taskd), written the
// plain way in Fastify and node-postgres: one pg.Pool, named (prepared) statements, response
// schemas for fast serialisation, the logger off.
//
//   PORT=8080 DATABASE_URL=postgresql://... BENCH_TOKEN=... node server.js
//
// Every request must send Authorization: Bearer $BENCH_TOKEN (401 otherwise). The JSON is the
// gateway's: every field of the protobuf message in field-number order, int64 as strings, times
// as microseconds since the Unix epoch ("0" for NULL), errors as
// {"error":{"code":...,"message":...,"field":...}}. PG_POOL_MAX sizes the pool (16).

const fastify = require('fastify')({ logger: false });
const pg = require('pg');

const port = Number(process.env.PORT || 8080);
const token = process.env.BENCH_TOKEN || '';
if (!process.env.DATABASE_URL || !token) {
  console.error('reference: set DATABASE_URL and BENCH_TOKEN');
  process.exit(2);
}
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.PG_POOL_MAX || 16),
});
pool.on('error', (err) => console.error('reference: idle client error:', err.message));

const LIMIT_DEFAULT = 50;
const LIMIT_MAX = 200;
const INT64_MAX = 9223372036854775807n;

// microseconds since the epoch as bigint (node-postgres hands int8 over as a string), 0 for NULL
const us = (col) => `coalesce((extract(epoch FROM ${col}) * 1000000)::bigint, 0)`;

const PROJECT_SQL = `
SELECT id, name, brand, region, platforms, ${us('starts_at')} AS starts_us,
       ${us('ends_at')} AS ends_us, owner_id, gmv_target_fen, reach_target, follower_target,
       budget_fen, status, auto_schedule, wip_todo, wip_doing, wip_blocked, version,
       ${us('created_at')} AS created_us, ${us('updated_at')} AS updated_us
FROM tasks.projects WHERE id = $1`;

const TASKS_SQL = `
SELECT t.id, t.project_id, coalesce(t.show_id, 0) AS show_id, p.region, t.title, t.description,
       t.phase, t.assignee_id, t.role, t.priority, ${us('t.starts_at')} AS starts_us,
       ${us('t.due_at')} AS due_us, t.estimate_hours, t.status,
       (SELECT coalesce(json_agg(json_build_object('id', c.id::text, 'text', c.text, 'done', c.done)
                                 ORDER BY c.id), '[]')
        FROM tasks.task_checklist c WHERE c.task_id = t.id) AS checklist,
       (SELECT coalesce(json_agg(d.depends_on::text ORDER BY d.depends_on), '[]')
        FROM tasks.task_deps d WHERE d.task_id = t.id) AS depends_on,
       coalesce(t.template_id, 0) AS template_id, coalesce(t.recurring_id, 0) AS recurring_id,
       t.version, ${us('t.created_at')} AS created_us, ${us('t.updated_at')} AS updated_us
FROM tasks.projects p JOIN tasks.tasks t ON t.project_id = p.id
WHERE p.id = $1 AND t.id > $2
ORDER BY t.id
LIMIT $3`;

const PROJECT_EXISTS_SQL = 'SELECT 1 FROM tasks.projects WHERE id = $1';

// --- response schemas (fast-json-stringify writes the properties in this order) -------------
const str = { type: 'string' };
const int = { type: 'integer' };
const bool = { type: 'boolean' };
const strs = { type: 'array', items: str };
const object = (props) => ({
  type: 'object',
  properties: props,
  required: Object.keys(props),
});

const projectSchema = object({
  id: str, name: str, brand: str, region: str, platforms: strs, starts_us: str, ends_us: str,
  owner_id: str, gmv_target_fen: str, reach_target: str, follower_target: str, budget_fen: str,
  status: str, auto_schedule: bool, wip_todo: int, wip_doing: int, wip_blocked: int,
  version: str, created_us: str, updated_us: str,
});

const taskSchema = object({
  id: str, project_id: str, show_id: str, region: str, title: str, description: str, phase: str,
  assignee_id: str, role: str, priority: str, starts_us: str, due_us: str,
  estimate_hours: { type: 'number' }, status: str,
  checklist: { type: 'array', items: object({ id: str, text: str, done: bool }) },
  depends_on: strs, template_id: str, recurring_id: str, version: str, created_us: str,
  updated_us: str,
});

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: str, message: str, field: str },
      required: ['code', 'message'],
    },
  },
};
const errors = { '4xx': errorSchema, '5xx': errorSchema };

// --- helpers ----------------------------------------------------------------------------------
function fail(reply, status, code, message, field) {
  const error = field ? { code, message, field } : { code, message };
  return reply.code(status).send({ error });
}

// parseId - the int64 in text, or null when it is not one
function parseId(text) {
  if (typeof text !== 'string' || !/^-?[0-9]{1,19}$/.test(text)) return null;
  const v = BigInt(text);
  return v > INT64_MAX || v < -INT64_MAX - 1n ? null : v.toString();
}

function dbFail(reply, err) {
  console.error('reference: query failed:', err.message);
  return fail(reply, 503, 'unavailable', 'the database does not answer');
}

// --- routes -----------------------------------------------------------------------------------
fastify.addHook('onRequest', (request, reply, done) => {
  const auth = request.headers.authorization;
  if (!auth) {
    fail(reply, 401, 'unauthenticated',
      'send Authorization: Bearer <token> (POST /api/v1/auth/login)');
    return;
  }
  if (auth !== `Bearer ${token}`) {
    fail(reply, 401, 'bad_token', 'the token is unknown, expired or revoked');
    return;
  }
  done();
});

fastify.get('/api/v1/projects/:id', { schema: { response: { 200: projectSchema, ...errors } } },
  async (request, reply) => {
    const id = parseId(request.params.id);
    if (id === null) return fail(reply, 400, 'invalid_field', 'id must be an int64', 'id');
    let res;
    try {
      res = await pool.query({ name: 'project_get', text: PROJECT_SQL, values: [id] });
    } catch (err) {
      return dbFail(reply, err);
    }
    if (res.rows.length === 0) return fail(reply, 404, 'not_found', `no project ${id}`, 'id');
    return res.rows[0];
  });

const taskPageSchema = object({ tasks: { type: 'array', items: taskSchema }, next_cursor: str });

fastify.get('/api/v1/projects/:id/tasks',
  { schema: { response: { 200: taskPageSchema, ...errors } } },
  async (request, reply) => {
    const id = parseId(request.params.id);
    if (id === null) return fail(reply, 400, 'invalid_field', 'id must be an int64', 'id');
    let limit = LIMIT_DEFAULT;
    if (request.query.limit !== undefined) {
      limit = /^[0-9]{1,4}$/.test(request.query.limit) ? Number(request.query.limit) : 0;
      if (limit < 1 || limit > LIMIT_MAX) {
        return fail(reply, 400, 'invalid_field', `limit must be 1 to ${LIMIT_MAX}`, 'limit');
      }
    }
    let after = '0';
    if (request.query.cursor) {
      after = parseId(request.query.cursor);
      if (after === null || after === '0' || after[0] === '-') {
        return fail(reply, 400, 'invalid', 'not a cursor this list gave out', 'cursor');
      }
    }
    let rows;
    try {
      ({ rows } = await pool.query({
        name: 'task_page', text: TASKS_SQL, values: [id, after, limit + 1],
      }));
      if (rows.length === 0) {
        const found = await pool.query({
          name: 'project_exists', text: PROJECT_EXISTS_SQL, values: [id],
        });
        if (found.rows.length === 0) return fail(reply, 404, 'not_found', `no project ${id}`, 'id');
      }
    } catch (err) {
      return dbFail(reply, err);
    }
    let nextCursor = '';
    if (rows.length > limit) {
      rows.length = limit;
      nextCursor = rows[limit - 1].id;
    }
    return { tasks: rows, next_cursor: nextCursor };
  });

fastify.listen({ port, host: '127.0.0.1' }).then(
  () => console.log(`reference: listening on 127.0.0.1:${port}`),
  (err) => {
    console.error('reference: cannot listen:', err.message);
    process.exit(1);
  },
);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    fastify.close().then(() => pool.end()).then(() => process.exit(0), () => process.exit(1));
  });
}
