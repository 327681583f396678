/* sr_platform - platform names and the Platform enum. See sr_platform.h. */
#include "sr_platform.h"

#include "metrics.pb-c.h"

#include <string.h>

#define PREFIX "PLATFORM_"

const char *sr_platform_name(int platform, char *out, size_t size)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&sr__platform__descriptor, platform);
    const char *name = v ? v->name + strlen(PREFIX) : "UNSPECIFIED";
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < size; p++)
        out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    out[n] = '\0';
    return out;
}

int sr_platform_parse(const char *name)
{
    const ProtobufCEnumDescriptor *d = &sr__platform__descriptor;
    char have[32];
    for (unsigned i = 0; name && i < d->n_values; i++)
        if (d->values[i].value != 0 &&
            strcmp(sr_platform_name(d->values[i].value, have, sizeof have), name) == 0)
            return d->values[i].value;
    return 0;
}
