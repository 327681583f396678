/* sr_pbrow - one PostgreSQL result row as a protobuf message, columns matched to fields by name.
 *
 * For reading a view an owning service publishes (its columns named after the fields of the
 * message it answers with) without a mapping per message: integers, doubles, bools and strings
 * from their text, repeated strings and integers from array literals ("{a,\"b c\"}", "{1,2}"),
 * message fields from JSON (a json or jsonb column: an object, or for a repeated field an array
 * of objects, "[]" for none) decoded by sr_pbjson, NULL as the field's default. A column with no
 * field of its name, a field type this does not read (enums, bytes) or JSON that does not fit
 * the message is an error.
 */
#ifndef SR_PBROW_H
#define SR_PBROW_H

#include "sr_arena.h"

#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>

/* sr_pbrow_decode - row of res as a new message of desc in arena; NULL with err (a line naming
 * the column) when a column does not fit */
ProtobufCMessage *sr_pbrow_decode(const PGresult *res, int row,
                                  const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                                  char *err, size_t errlen);

/* sr_pbrow_decode_rows - rows 0..rows-1 of res as new messages of desc in arena (the columns
 * matched to fields once); NULL with err as sr_pbrow_decode */
ProtobufCMessage **sr_pbrow_decode_rows(const PGresult *res, int rows,
                                        const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                                        char *err, size_t errlen);

/* sr_pbrow_text_list - a PostgreSQL one-dimensional array literal as strings in arena (one
 * buffer for all of them); *n the count */
char **sr_pbrow_text_list(sr_arena_t *arena, const char *literal, size_t *n);

#endif
