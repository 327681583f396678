-- 002_builtin_templates.sql - the three SOP templates every installation starts with, written for
-- live commerce. Offsets are minutes from the show's start (T-7d = -10080), durations minutes;
-- roles anchor and field_control are taken from the show, the others from its crew.

INSERT INTO tasks.templates (name, description, builtin, builtin_key) VALUES
    ('大促专场 Big promotion show',
     'Double 11 / 12-style promotion: selection a week ahead, stock and coupons, warm-up, '
     'rehearsal, live checklist, review the next day', true, 'big_promotion'),
    ('常规场 Regular show', 'A routine show: script, equipment check, live checklist, review',
     true, 'regular'),
    ('新品首发 New product launch',
     'Launching a product: samples and selling points two weeks ahead, teasers, launch, review',
     true, 'new_product');

INSERT INTO tasks.template_steps (template_id, pos, key, title, phase, role, offset_minutes,
                                  duration_minutes, priority, depends_on, checklist)
SELECT t.id, s.pos, s.key, s.title, s.phase, s.role, s.offset_minutes, s.duration_minutes,
       s.priority, s.depends_on, s.checklist
FROM tasks.templates t
JOIN (VALUES
    ('big_promotion', 1, 'selection', '选品 Select products and prices', 'prep', 'operator',
     -10080, 1440, 'P0', '{}'::text[],
     '{"Shortlist hero and traffic products","Agree prices and gifts with the brand","Check margins against the commission"}'::text[]),
    ('big_promotion', 2, 'stock', 'Confirm stock and the 小黄车 line-up with the ERP', 'prep',
     'operator', -8640, 1440, 'P0', '{selection}', '{"Stock per SKU reserved","Cart order agreed"}'),
    ('big_promotion', 3, 'script', 'Write the show script', 'prep', 'content', -7200, 1440, 'P1',
     '{selection}', '{"Opening hook","Product segments with selling points","Closing push"}'),
    ('big_promotion', 4, 'warmup', 'Warm-up posts and short videos (预热)', 'prep', 'content',
     -4320, 2880, 'P1', '{script}', '{"Three short videos","Reservation post","Fan-group notice"}'),
    ('big_promotion', 5, 'coupons', 'Set up coupons and price mechanics', 'prep', 'operator',
     -2880, 720, 'P0', '{stock}', '{"Coupons created","Flash-sale slots set"}'),
    ('big_promotion', 6, 'rehearsal', 'Rehearse the script', 'prep', 'anchor', -2880, 240, 'P1',
     '{script}', '{}'),
    ('big_promotion', 7, 'cs_brief', 'Brief customer service on offers and after-sales', 'prep',
     'cs', -1440, 120, 'P1', '{coupons}', '{"FAQ sheet shared","Refund rules agreed"}'),
    ('big_promotion', 8, 'equipment', 'Equipment and network test', 'prep', 'field_control',
     -1440, 180, 'P0', '{}', '{"Cameras and lights","Microphones","Upload bandwidth","Backup stream"}'),
    ('big_promotion', 9, 'live_checklist', 'Live checklist: cart, coupons, comments', 'live',
     'field_control', 0, 240, 'P0', '{equipment,rehearsal,warmup,cs_brief}',
     '{"Cart order checked","Coupons live","Comment moderation on","Sell-out watch"}'),
    ('big_promotion', 10, 'review', '复盘 Post-show review', 'review', 'operator', 1440, 240,
     'P1', '{live_checklist}', '{"GMV against target","Top and worst products","Next actions"}'),
    ('regular', 1, 'script', 'Write the show script', 'prep', 'content', -2880, 720, 'P2', '{}',
     '{}'),
    ('regular', 2, 'equipment', 'Equipment and network test', 'prep', 'field_control', -1440, 120,
     'P1', '{}', '{"Cameras and lights","Upload bandwidth"}'),
    ('regular', 3, 'live_checklist', 'Live checklist', 'live', 'field_control', 0, 180, 'P1',
     '{script,equipment}', '{"Cart order checked","Comment moderation on"}'),
    ('regular', 4, 'review', '复盘 Post-show review', 'review', 'operator', 1440, 120, 'P2',
     '{live_checklist}', '{}'),
    ('new_product', 1, 'samples', 'Get samples and product facts', 'prep', 'operator', -20160,
     2880, 'P0', '{}', '{"Samples received","Spec sheet","Certificates"}'),
    ('new_product', 2, 'selling_points', 'Work out the selling points', 'prep', 'content',
     -14400, 2880, 'P1', '{samples}', '{}'),
    ('new_product', 3, 'teaser', 'Teaser videos and launch reservation', 'prep', 'content',
     -10080, 4320, 'P1', '{selling_points}', '{}'),
    ('new_product', 4, 'stock', 'Launch stock and price confirmed with the ERP', 'prep',
     'operator', -4320, 1440, 'P0', '{samples}', '{}'),
    ('new_product', 5, 'rehearsal', 'Rehearse the demonstration', 'prep', 'anchor', -1440, 240,
     'P1', '{selling_points}', '{}'),
    ('new_product', 6, 'launch', 'Launch show checklist', 'live', 'field_control', 0, 240, 'P0',
     '{teaser,stock,rehearsal}', '{"Launch price live","Stock watch"}'),
    ('new_product', 7, 'review', '复盘 Launch review', 'review', 'operator', 1440, 240, 'P1',
     '{launch}', '{"Sell-through","Buyer questions","Reorder decision"}')
) AS s (builtin_key, pos, key, title, phase, role, offset_minutes, duration_minutes, priority,
        depends_on, checklist)
ON s.builtin_key = t.builtin_key;
