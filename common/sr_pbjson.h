/* sr_pbjson - JSON <-> protobuf over protobuf-c's descriptors, for any message.
 *
 * One generic codec, not a mapping per message. The JSON shape:
 *   - field names as in the .proto (snake_case);
 *   - enums by value name ("PLATFORM_DOUYIN"); numbers are refused for enums;
 *   - 64-bit integers are written as JSON strings ("123") and read from strings or integers;
 *     32-bit integers, floats and doubles as numbers; bools as true/false;
 *   - bytes as base64; nested messages as objects; repeated fields as arrays;
 *   - every non-optional field is written, even at its default; proto3 `optional` fields and
 *     oneof members only when set.
 * Decoding refuses unknown fields, wrong JSON types, out-of-range numbers, unknown enum names,
 * bad base64 and nesting deeper than SR_PBJSON_MAX_DEPTH, each with the dotted path of the
 * field ("goals.gmv_target_fen", "samples[3].room_id") and a one-line message.
 */
#ifndef SR_PBJSON_H
#define SR_PBJSON_H

#include "sr_arena.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#define SR_PBJSON_MAX_DEPTH 32

typedef struct {
    char path[256]; /* "" for the whole document */
    char message[256];
} sr_pbjson_error_t;

/* sr_pbjson_encode - a new JSON object for msg (caller json_decref()s) */
json_t *sr_pbjson_encode(const ProtobufCMessage *msg);
/* sr_pbjson_encode_text - compact JSON text; caller frees */
char *sr_pbjson_encode_text(const ProtobufCMessage *msg);

/* sr_pbjson_decode - build a message of type desc from json, allocated in arena; 0 ok, -1 with
 * err filled */
int sr_pbjson_decode(const json_t *json, const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                     ProtobufCMessage **out, sr_pbjson_error_t *err)
    __attribute__((warn_unused_result));
/* sr_pbjson_decode_text - the same from text; malformed JSON is an error with path "" and the
 * line and column in the message */
int sr_pbjson_decode_text(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                          sr_arena_t *arena, ProtobufCMessage **out, sr_pbjson_error_t *err)
    __attribute__((warn_unused_result));

#endif
