/* busd_commands - what `sr-busd COMMAND` does besides running the forwarder:
 *   keygen   a fresh CURVE key pair, printed as the two settings that use it (the secret goes
 *            to busd only, the public key to every other daemon);
 *   topics   the topic table (common/sr_topics.c) as Markdown rows, as the README shows it.
 */
#include "busd.h"

#include "sr_topics.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

static int s_keygen(void)
{
    char public_key[41], secret_key[41];
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        fprintf(stderr, "sr-busd: this libzmq has no CURVE support\n");
        return 1;
    }
    printf("SR_BUSD_CURVE_SECRET=%s\nSR_BUS_SERVER_KEY=%s\n", secret_key, public_key);
    return 0;
}

static int s_topics(void)
{
    size_t n;
    const sr_topic_t *topics = sr_topics_all(&n);
    printf("| topic | payload | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        printf("| `%s` | `%s` | %s |\n", topics[i].topic, topics[i].payload->name,
               topics[i].meaning);
    return 0;
}

int busd_command(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "keygen") == 0)
        return s_keygen();
    if (argc == 1 && strcmp(argv[0], "topics") == 0)
        return s_topics();
    fprintf(stderr, "sr-busd: unknown command '%s'\nusage: sr-busd keygen | sr-busd topics\n",
            argv[0]);
    return 2;
}
