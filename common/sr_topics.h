/* sr_topics - the one table that maps each bus topic to its payload message type.
 *
 * Topics are "domain.event" (metric.room, order.paid); subscribers filter by prefix. A topic not
 * in this table is not published, and a received one is counted and dropped. Later services add
 * their rows here as they add their .proto files.
 */
#ifndef SR_TOPICS_H
#define SR_TOPICS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct {
    const char *topic;
    const ProtobufCMessageDescriptor *payload;
    const char *meaning; /* one line, printed in the README */
} sr_topic_t;

/* sr_topic_find - the row for an exact topic, or NULL */
const sr_topic_t *sr_topic_find(const char *topic);
/* sr_topics_all - every row, count in *n */
const sr_topic_t *sr_topics_all(size_t *n);

#endif
