# Showrunner - one plain Makefile for the whole suite.
#
# Layout it knows (add files, not rules):
#   proto/*.proto                 -> $(BUILD)/gen/*.pb-c.[ch]     (protoc-c, never committed)
#   common/*.c + generated code   -> $(BUILD)/lib/libsr.a
#   services/NAME/*.c             -> $(BUILD)/bin/sr-NAME        (main.c + libsr-NAME.a)
#   services/NAME/migrations/*.sql -> embedded in sr-NAME         (deploy/embed-sql.sh)
#   tests/unit/common/test_*.c    -> one cmocka binary each, linked with libsr.a
#   tests/unit/NAME/test_*.c      -> one cmocka binary each, linked with libsr-NAME.a too
#   tests/integration/test_*.c    -> one cmocka binary each (needs PostgreSQL, see tests/run.sh)
#   tests/support/*.c             -> $(BUILD)/lib/libsrtest.a     (helpers for tests)
#   tests/bench/*.c               -> $(BUILD)/tests/bench/NAME    (`make bench-*`, release build)
# `make test` builds everything again in build/asan with ASan + UBSan and runs tests/run.sh.

BUILD    ?= build
SAN      ?=
PKGS     := libzmq libpq libprotobuf-c libcurl jansson libmicrohttpd libsodium libcrypto
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-format-zero-length
comma    := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

HAVE_PKGS := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
ifeq ($(HAVE_PKGS),yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
endif

CPPFLAGS := -Icommon -I$(BUILD)/gen $(PKG_CFLAGS)
ALL_CFLAGS := $(WARN) $(CFLAGS) $(SANFLAGS) $(CPPFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread -lm
SR_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

PROTOS   := $(wildcard proto/*.proto)
GEN_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)
COMMON_C := $(wildcard common/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_C)) $(GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
LIBSR    := $(BUILD)/lib/libsr.a

SERVICES := $(notdir $(patsubst %/,%,$(wildcard services/*/)))
BINS     := $(SERVICES:%=$(BUILD)/bin/sr-%)

SUPPORT_C   := $(wildcard tests/support/*.c)
LIBSRTEST   := $(BUILD)/lib/libsrtest.a
UNIT_SRC    := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INTEG_SRC   := $(wildcard tests/integration/test_*.c)
INTEG_BINS  := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRC))
TEST_PROTOS := $(wildcard tests/fixtures/*/*.proto)
TEST_GEN_C  := $(patsubst %.proto,$(BUILD)/gen/test/%.pb-c.c,$(notdir $(TEST_PROTOS)))


.SECONDEXPANSION:
.PHONY: all deps check-deps check-build-deps test tests-build run stop status bench bench-ingest bench-me bench-gateway format format-check clean
.SECONDARY:

all: check-build-deps $(BINS)

deps:
	@deploy/deps.sh install

check-deps:
	@deploy/deps.sh check || deploy/deps.sh install

check-build-deps:
	@deploy/deps.sh check build || deploy/deps.sh install build

# --- code generation -------------------------------------------------------------------------
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/gen/test/%.pb-c.c $(BUILD)/gen/test/%.pb-c.h: tests/fixtures/*/%.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen/test -I$(dir $<) $<

$(BUILD)/gen/%_migrations.c: deploy/embed-sql.sh $$(wildcard services/%/migrations/*.sql)
	@mkdir -p $(dir $@)
	deploy/embed-sql.sh $* services/$*/migrations > $@

# --- objects ---------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/common/sr_service.o: ALL_CFLAGS += -DSR_VERSION=\"$(SR_VERSION)\"

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(LIBSR): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSRTEST): $(patsubst %.c,$(BUILD)/obj/%.o,$(SUPPORT_C)) $(TEST_GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# --- services: libsr-NAME.a holds everything but main.c, so unit tests can link it ----------
svc_src  = $(filter-out services/$1/main.c,$(wildcard services/$1/*.c))
svc_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call svc_src,$1)) \
           $(if $(wildcard services/$1/migrations/*.sql),$(BUILD)/obj/gen/$1_migrations.o)

$(BUILD)/lib/libsr-%.a: $$(call svc_objs,$$*)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/sr-%: $(BUILD)/obj/services/%/main.o $(BUILD)/lib/libsr-%.a $(LIBSR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# --- tests -----------------------------------------------------------------------------------
TEST_CPP := -I$(BUILD)/gen/test -Itests/support $(addprefix -Iservices/,$(SERVICES))

$(BUILD)/tests/unit/common/%: $(BUILD)/obj/tests/unit/common/%.o $(LIBSRTEST) $(LIBSR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $$(BUILD)/lib/libsr-$$(firstword $$(subst /, ,$$*)).a $(LIBSRTEST) $(LIBSR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(LIBSRTEST) $(LIBSR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/obj/tests/%.o: ALL_CFLAGS += $(TEST_CPP)
$(BUILD)/obj/tests/%.o: tests/%.c $(GEN_H) $(TEST_GEN_C:.c=.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

tests-build: $(BINS) $(UNIT_BINS) $(INTEG_BINS)

test: check-deps
	SR_DB_PASSWORD=compose-check docker-compose config -q
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 CFLAGS="-O1 -g" tests-build
	tests/run.sh build/asan

# --- running the suite -----------------------------------------------------------------------
run: check-deps all
	@deploy/run.sh start

stop:
	@deploy/run.sh stop

status:
	@deploy/run.sh status

# --- benchmarks: release build, each bench-* starts its own PostgreSQL and processes ---------
bench: all bench-ingest bench-me bench-gateway

$(BUILD)/tests/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/lib/libsr-ingestd.a $(LIBSR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

bench-ingest: all $(BUILD)/tests/bench/bench_ingest
	tests/bench/bench-ingest.sh $(BUILD)

bench-me: all
	tests/bench/bench-me.sh $(BUILD)

bench-gateway: all
	tests/bench/bench-gateway.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
