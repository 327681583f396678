-- 004_api_tasks.sql - a project's task page for the gateway to answer without a call
-- (see 003_api_views.sql): the columns of the Task message, the checklist as a JSON array of
-- ChecklistItem objects in id order ("[]" for none) and the dependencies as a bigint[] in order,
-- as taskd answers tasks.task.list. Change it with the Task message.

CREATE VIEW tasks.api_tasks AS
SELECT t.id, t.project_id, coalesce(t.show_id, 0) AS show_id, p.region, t.title, t.description,
       t.phase, t.assignee_id, t.role, t.priority,
       coalesce((extract(epoch FROM t.starts_at) * 1000000)::bigint, 0) AS starts_us,
       coalesce((extract(epoch FROM t.due_at) * 1000000)::bigint, 0) AS due_us,
       t.estimate_hours, t.status,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'text', c.text, 'done', c.done)
                                 ORDER BY c.id)
                 FROM tasks.task_checklist c WHERE c.task_id = t.id), '[]') AS checklist,
       ARRAY(SELECT d.depends_on FROM tasks.task_deps d WHERE d.task_id = t.id
             ORDER BY d.depends_on) AS depends_on,
       coalesce(t.template_id, 0) AS template_id, coalesce(t.recurring_id, 0) AS recurring_id,
       t.version,
       coalesce((extract(epoch FROM t.created_at) * 1000000)::bigint, 0) AS created_us,
       coalesce((extract(epoch FROM t.updated_at) * 1000000)::bigint, 0) AS updated_us
FROM tasks.tasks t JOIN tasks.projects p ON p.id = t.project_id;
