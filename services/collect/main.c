/* sr-collect - send room samples from a file or stdin to sr-ingestd and wait for every ack.
 *
 * A one-shot command, not a daemon (deploy/run.sh skips it). Arguments and dispatch only: the
 * imports are collect_send.c's. Exit status: 0 when every batch was stored (or found stored
 * before), 1 when the input is malformed, a batch was rejected or the acks did not come in time,
 * 2 for bad arguments.
 */
#include "collect.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *proto, *csv, *platform, *room;
    collect_send_opts_t send;
} args_t;

static const char s_usage[] =
    "usage: sr-collect --proto FILE|- --endpoints tcp://HOST:PORT[,...] [options]\n"
    "       sr-collect --csv FILE|- --platform douyin|channels|kuaishou [--room ROOM]\n"
    "                  --endpoints tcp://HOST:PORT[,...] [options]\n"
    "Send room samples to sr-ingestd.\n"
    "  --proto FILE         length-delimited protobuf RoomSample records, - for stdin\n"
    "  --csv FILE           a platform's exported session data, one row per snapshot; checked\n"
    "                       whole first: a file with problems is listed and nothing is sent\n"
    "  --platform NAME      the platform that exported the CSV file\n"
    "  --room ROOM          the room id, for CSV files without a room column\n"
    "  --endpoints LIST     comma-separated ingestd collector endpoints\n"
    "  --batch N            samples per batch (default 500)\n"
    "  --collector-id ID    collector id (default collect@HOST:PID:TIME for --proto and\n"
    "                       csv:PLATFORM:SHA256-PREFIX[:batch=N][:room=ROOM] for --csv; reuse\n"
    "                       one to resend the same file and have it recognised as duplicate)\n"
    "  --timeout SECONDS    give up when no ack arrives for this long (default 60)\n"
    "  --resend-ms MS       resend a batch with no ack after MS (default 2000)\n"
    "Exit: 0 all stored, 1 bad input / rejected / timed out, 2 bad arguments.\n";

static int s_usage_error(const char *what)
{
    if (what)
        fprintf(stderr, "sr-collect: %s\n", what);
    fputs(s_usage, stderr);
    return 2;
}

static int s_parse(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {
        {"proto", required_argument, NULL, 'p'},
        {"endpoints", required_argument, NULL, 'e'},
        {"batch", required_argument, NULL, 'b'},
        {"collector-id", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'},
        {"resend-ms", required_argument, NULL, 'r'},
        {"csv", required_argument, NULL, 'c'},
        {"platform", required_argument, NULL, 'P'},
        {"room", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (args_t){.send = {.batch = COLLECT_DEFAULT_BATCH, .timeout_s = 60, .resend_ms = 2000}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *num = c == 'b'   ? &a->send.batch
                    : c == 't' ? &a->send.timeout_s
                    : c == 'r' ? &a->send.resend_ms
                               : NULL;
        const char **str = c == 'p'   ? &a->proto
                           : c == 'e' ? &a->send.endpoints
                           : c == 'i' ? &a->send.collector_id
                           : c == 'c' ? &a->csv
                           : c == 'P' ? &a->platform
                           : c == 'R' ? &a->room
                                      : NULL;
        if (num) {
            *num = strtol(optarg, &end, 10);
            if (*end || end == optarg || *num < 1 || *num > 1000000)
                return -1;
        } else if (str)
            *str = optarg;
        else
            return -1;
    }
    if (optind != argc || !a->send.endpoints || !a->proto == !a->csv)
        return -1;
    if (a->csv ? !a->platform : a->platform || a->room)
        return -1;
    a->send.input = a->csv ? a->csv : a->proto;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--config-markdown") == 0)
        return 0; /* no SR_* settings: arguments only (the README check asks every sr-*) */
    args_t a;
    if (argc < 2)
        return s_usage_error(NULL);
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (s_parse(argc, argv, &a) < 0)
        return s_usage_error("bad or missing argument");
    if (a.csv)
        return collect_import_csv(&a.send, a.csv, a.platform, a.room);
    return collect_import_proto(&a.send, a.proto);
}
