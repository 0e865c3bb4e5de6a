# drrun - one binary, objects under build/.  `make help` lists the targets.
#   make            build ./drrun
#   make test       deps + build + every test; ends with "N passed, N failed"
#   make demo       deps + build + the local failover example runbook
#   make bench      benchmarks side by side with their peers (bench-ssh: the SSH one,
#                   bench-serve: drrun serve against webhook)
#   make SAN=1 ...  the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer harnesses of the parsers of untrusted bytes (fuzz/)

# LINKED are linked; OPENED are only compiled against, and opened when their
# module is first required (engine/lua/dl.c), so start-up never maps them.
LINKED  := lua5.4 libuv jansson libpcre2-8 expat
OPENED  := libcurl libssh2 libcrypto
PKGS    := $(LINKED) $(OPENED)
MODE    := $(if $(FUZZ),fuzz,$(if $(SAN),san,rel))
BUILD   := build/$(MODE)
CC      ?= cc
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := $(if $(SAN),-O1 $(SANFLAGS),-O2)
ifneq ($(FUZZ),)
# make fuzz: everything built by clang with coverage for libFuzzer
CC      := clang
OPT     := -O1 -fsanitize=fuzzer-no-link $(SANFLAGS)
endif
CFLAGS  := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -Iinclude -Iengine -Iplugins \
           -DOPENSSL_API_COMPAT=0x10100000L
LDFLAGS := $(if $(SAN)$(FUZZ),$(SANFLAGS))
LDLIBS  := $(shell pkg-config --libs $(LINKED) 2>/dev/null) -lm
# the unit tests may call libcrypto directly (to check a digest, say)
TESTLIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)

ENGINE  := $(sort $(filter-out engine/tools/%,$(wildcard engine/*/*.c)))
PLUGINS := $(sort $(wildcard plugins/*.c plugins/*/*.c))
STDLIB  := $(shell find stdlib -name '*.lua' | sort)
OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(ENGINE) $(PLUGINS)) $(BUILD)/stdlib_gen.o
LIBOBJS := $(filter-out $(BUILD)/engine/cli/main.o,$(OBJS))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

ifeq ($(V),)
Q = @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

.PHONY: all deps test demo bench bench-ssh bench-serve clean help unit format fuzz fuzzers FORCE
all: drrun

drrun: $(BUILD)/drrun FORCE
	$(Q)cmp -s $< $@ || cp $< $@

$(BUILD)/drrun: $(OBJS)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# -MMD -MP: each object depends on the headers it really includes
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/embed: engine/tools/embed.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/stdlib_gen.c: $(BUILD)/embed $(STDLIB)
	$(call say,EMBED,stdlib)$(BUILD)/embed stdlib $(STDLIB) > $@.tmp && mv $@.tmp $@

$(BUILD)/stdlib_gen.o: $(BUILD)/stdlib_gen.c
	$(call say,CC,$<)$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS) $(TESTLIBS) -lcmocka

# test_faults makes library calls fail: its link wraps them
$(BUILD)/tests/test_faults: LDFLAGS += -Wl,--wrap=curl_easy_init \
	-Wl,--wrap=uv_poll_init_socket

# the fuzz harnesses, built by the ordinary compiler with a main() that runs
# their seed corpus (tests/run.sh runs them): they must keep compiling
SEEDS   := $(patsubst fuzz/%.c,$(BUILD)/tests/fuzz-seeds-%,$(wildcard fuzz/*.c))
$(BUILD)/tests/fuzz-seeds-%: fuzz/%.c tests/fuzz_seeds.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz_seeds.c $(LIBOBJS) $(LDLIBS)

unit: $(UNIT) $(SEEDS)

deps:
	@tests/deps.sh

test: deps
	@$(MAKE) --no-print-directory drrun unit
	@BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory drrun
	@runbooks/examples/demo.sh

bench: deps
	@$(MAKE) --no-print-directory drrun
	@bench/engine.sh
	@bench/http.sh
	@bench/test.sh
	@bench/drill.sh
	@bench/drill_pg.sh

# the SSH peers (pdsh, parallel-ssh, clush, ansible) are big: their own deps
bench-ssh: deps
	@$(MAKE) --no-print-directory drrun
	@bench/deps.sh
	@bench/ssh.sh

# drrun serve's webhook path against webhook (adnanh/webhook), installed first
bench-serve: deps
	@$(MAKE) --no-print-directory drrun
	@tests/deps.sh webhook
	@bench/serve.sh

# libFuzzer harnesses for the parsers of untrusted bytes (fuzz/*.c), outside
# make test: each runs FUZZ_RUNS executions (default 1,000,000) from its seed
# corpus in fuzz/corpus/NAME; make fuzz FUZZ_RUNS=10000000 FUZZERS="xml sigv4"
FUZZ_RUNS ?= 1000000
FUZZERS   ?= $(patsubst fuzz/%.c,%,$(wildcard fuzz/*.c))
fuzz:
	@tests/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory FUZZ=1 fuzzers
	@for f in $(FUZZERS); do \
		mkdir -p build/fuzz/corpus/$$f && \
		echo "fuzz: $$f, $(FUZZ_RUNS) runs" && \
		build/fuzz/fuzz/$$f -runs=$(FUZZ_RUNS) -max_len=65536 -print_final_stats=1 \
			build/fuzz/corpus/$$f fuzz/corpus/$$f 2>&1 | \
			grep -E '^(stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|Done)' \
			|| exit 1; \
	done

fuzzers: $(patsubst %,$(BUILD)/fuzz/%,$(FUZZERS))

$(BUILD)/fuzz/%: fuzz/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$<)$(CC) $(CFLAGS) -fsanitize=fuzzer $(SANFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

# the house style is .clang-format's
format:
	clang-format -i $(shell find engine plugins include tests/unit -name '*.[ch]')

clean:
	rm -rf build drrun

-include $(OBJS:.o=.d) $(UNIT:=.d)

help:
	@sed -n '1,9p' Makefile
