/* sr_topics - the one table of bus topics and their payload types. See sr_topics.h.
 *
 * Add a row here when a service starts publishing a new event; sr_bus refuses to publish or deliver
 * a topic that is not in this table. tests/unit/common/test_sr_topics.c checks the rows.
 */
#include "sr_topics.h"

#include "access.pb-c.h"
#include "metrics.pb-c.h"
#include "rooms.pb-c.h"
#include "tasks.pb-c.h"

#include <string.h>

static const sr_topic_t s_topics[] = {
    {"metric.room", &sr__room_sample__descriptor, "latest numbers of one live room"},
    {"order.created", &sr__order_event__descriptor, "a buyer placed an order in a room"},
    {"order.paid", &sr__order_event__descriptor, "an order was paid"},
    {"order.cancelled", &sr__order_event__descriptor, "an order was cancelled before payment"},
    {"order.refunded", &sr__order_event__descriptor, "a paid order was refunded"},
    {"interaction.comment", &sr__interaction_event__descriptor, "a viewer commented"},
    {"interaction.gift", &sr__interaction_event__descriptor, "a viewer sent a gift"},
    {"interaction.like", &sr__interaction_event__descriptor, "viewers liked, in a bunch"},
    {"interaction.fan_club", &sr__interaction_event__descriptor, "a viewer joined the fan club"},
    {"region.created", &sr__region__descriptor, "a region was created"},
    {"region.updated", &sr__region__descriptor, "a region was renamed"},
    {"region.deleted", &sr__region__descriptor, "a region was deleted"},
    {"user.created", &sr__user__descriptor, "a user was created"},
    {"user.updated", &sr__user__descriptor, "a user's roles, regions or state changed"},
    {"room.registered", &sr__room__descriptor,
     "a room was registered, renamed or moved to a region"},
    {"project.changed", &sr__project__descriptor,
     "a project was created or changed (status moves included)"},
    {"session.changed", &sr__show__descriptor, "a show was scheduled or changed"},
    {"session.ended", &sr__show__descriptor, "a show went from live to ended"},
    {"task.changed", &sr__task__descriptor,
     "a task was created or changed (checklist and dependencies included)"},
    {"task.due_soon", &sr__task_reminder__descriptor,
     "an open task came within SR_TASK_DUE_SOON of its due time"},
    {"task.overdue", &sr__task_reminder__descriptor, "an open task passed its due time"},
};

#define TOPIC_COUNT (sizeof s_topics / sizeof s_topics[0])

const sr_topic_t *sr_topic_find(const char *topic)
{
    if (!topic)
        return NULL;
    for (size_t i = 0; i < TOPIC_COUNT; i++) {
        if (strcmp(s_topics[i].topic, topic) == 0)
            return &s_topics[i];
    }
    return NULL;
}

const sr_topic_t *sr_topics_all(size_t *n)
{
    *n = TOPIC_COUNT;
    return s_topics;
}
