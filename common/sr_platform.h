/* sr_platform - the live-commerce platforms by the lower-case names used in configuration, URLs
 * and the API ("channels", "douyin", "kuaishou", "taobao"), and the Platform enum of
 * proto/metrics.proto that messages and tables carry. The names come from the enum itself
 * (PLATFORM_DOUYIN -> "douyin"), so a platform added to the .proto is known here at once.
 */
#ifndef SR_PLATFORM_H
#define SR_PLATFORM_H

#include <stddef.h>

/* sr_platform_parse - the Platform value of a name; 0 (PLATFORM_UNSPECIFIED) when unknown */
int sr_platform_parse(const char *name);
/* sr_platform_name - the name of a Platform value into out ("unspecified" for 0 or unknown) */
const char *sr_platform_name(int platform, char *out, size_t size);

#endif
