# gatehouse — see README.md. Every output goes under build/.
#   make            build build/gatehouse
#   make run        install missing packages, build, run the embedded default
#   make test       install what tests need, build, run every test
#   make asan       the whole suite under ASan+UBSan
#   make fuzz       build libFuzzer targets and run each briefly
#   make bench      gatehouse vs HAProxy vs nginx, writes docs/performance.md

CC ?= cc
O ?= build
SAN ?=
PKGS = openssl libpcre2-8 libmicrohttpd libxml-2.0 xmlsec1-openssl zlib sqlite3 libcurl jansson \
       hiredis libpq
WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
       -Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual -Wsign-compare \
       -Wformat=2 -Wno-format-nonliteral
CFLAGS_BASE = -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -fstack-protector-strong \
              -D_FORTIFY_SOURCE=2 -pthread
ifneq ($(SAN),)
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDSAN = -fsanitize=address,undefined
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS)
LIBS = $(PKG_LIBS) -pthread

COMMON = common/log.c common/time.c common/str.c common/buf.c common/conf_table.c \
         common/conf_lex.c common/conf_parse.c common/conf_write.c common/kv.c \
         common/kv_rec.c common/fs.c common/conf_outline.c common/reason.c common/cidr.c \
         common/conf_headers.c common/json.c common/secret_file.c common/join_token.c
RULES = rules/policy.c rules/host.c rules/path.c rules/dirs.c rules/ruleset.c rules/limits.c
CERTS = certs/tls_ctx.c certs/gen.c certs/tickets.c certs/ocsp.c certs/import.c
PROXY = proxy/http1_parse.c proxy/http1_chunk.c proxy/gen.c proxy/worker.c proxy/conn.c proxy/io.c \
        proxy/upstream.c proxy/headers.c proxy/accesslog.c proxy/timer.c proxy/stats.c \
        proxy/health.c proxy/persist.c proxy/shared.c proxy/http1_write.c proxy/http1_msg.c proxy/body.c proxy/tunnel.c proxy/upgrade.c proxy/client.c proxy/tls_fail.c proxy/l4.c proxy/tls_hello.c \
        proxy/header_rules.c proxy/tls_bio.c
PROXY += proxy/persist_key.c
CERTS += certs/san.c
PROXY += proxy/cover.c
PROXY += proxy/udp.c proxy/health_udp.c proxy/edge.c
SAML = saml/init.c saml/xml.c saml/verify.c saml/decrypt.c saml/sp.c saml/metadata.c \
       saml/authn.c saml/response.c saml/state.c saml/session_cache.c
SLIDES = slides/join.c slides/store.c slides/content.c slides/token.c slides/secrets.c \
         slides/snapshot.c slides/db_sqlite.c slides/db_pg.c
WEBUI = web-ui/password.c web-ui/users.c web-ui/session.c web-ui/audit.c web-ui/confedit.c \
        web-ui/apply.c web-ui/app.c web-ui/api_more.c web-ui/api_inventory.c web-ui/api_idp.c \
        web-ui/api_services.c web-ui/api_meetings.c web-ui/api_transactions.c \
        web-ui/api_certs.c web-ui/backup.c web-ui/api_rules.c web-ui/blockedit.c \
        web-ui/api_blocks.c web-ui/graphs.c web-ui/router.c web-ui/routes.c
CLIENT = client/http.c client/manifest.c
STORE = store/conn.c store/local.c store/redis.c store/sync.c
APPS = apps/apps.c apps/status.c apps/conference.c apps/meetings.c apps/api_tokens.c
MAIN = main/main.c main/candidate.c main/cluster_conf.c main/cluster_split.c main/default_conf.c main/signals.c main/saml_cmd.c main/join_cmd.c \
       main/meeting_cmd.c main/admin_cmd.c main/help.c main/store_setup.c
LIB_SRC = $(COMMON) $(STORE) $(RULES) $(CERTS) $(PROXY) $(SAML) $(SLIDES) $(WEBUI) $(APPS) $(CLIENT)
UNIT_SRC = tests/unit/runner.c tests/unit/proxy/http1_parse.c tests/unit/proxy/http1_chunk.c tests/unit/proxy/machines.c tests/unit/proxy/tls_hello.c tests/unit/proxy/health_udp.c \
           tests/unit/common/conf.c tests/unit/common/str.c tests/unit/common/json.c tests/unit/common/join_token.c tests/unit/rules/host_path.c \
           tests/unit/rules/ruleset.c tests/unit/rules/policy.c tests/unit/saml/xml.c \
           tests/unit/slides/join.c tests/unit/slides/store.c tests/unit/slides/secrets.c \
           tests/unit/slides/engines.c \
           tests/unit/web-ui/auth.c tests/unit/web-ui/blockedit.c tests/unit/web-ui/router.c \
           tests/unit/common/conf_headers.c tests/unit/proxy/header_rules.c proxy/tls_bio.c
UNIT_SRC += tests/unit/proxy/persist_key.c tests/unit/proxy/http1_write.c tests/unit/store/conformance.c
UNIT_SRC += tests/unit/main/cluster_split.c main/cluster_split.c

ASSETS = apps/web/join.html apps/web/reception.html apps/web/join.js apps/web/join.css
WEBUI_ASSETS = web-ui/web/login.html web-ui/web/admin.html web-ui/web/admin.js \
               web-ui/web/admin-forms.js \
               web-ui/web/admin.css
LIB_OBJ = $(LIB_SRC:%.c=$(O)/obj/%.o) $(O)/obj/gen/apps_assets.o $(O)/obj/gen/webui_assets.o
MAIN_OBJ = $(MAIN:%.c=$(O)/obj/%.o)
UNIT_OBJ = $(UNIT_SRC:%.c=$(O)/obj/%.o)

all: $(O)/gatehouse

$(O)/gatehouse: $(LIB_OBJ) $(MAIN_OBJ)
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^ $(LIBS)

$(O)/saml_bench: $(LIB_OBJ) $(O)/obj/tests/bench/saml_bench.o
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^ $(LIBS)

$(O)/store_bench: $(LIB_OBJ) $(O)/obj/tests/bench/store_bench.o
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^ $(LIBS)

# The UDP rows' load generator and echo servers (tests/bench/): libc only.
$(O)/udp_load: $(O)/obj/tests/bench/udp_load.o
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^

$(O)/udp_echo: $(O)/obj/tests/bench/udp_echo.o
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^

$(O)/unit_tests: $(LIB_OBJ) $(UNIT_OBJ)
	@echo "  LD   $@"
	@$(CC) $(LDSAN) -o $@ $^ $(LIBS)

$(O)/gen/apps_assets.c: $(ASSETS) scripts/embed.sh
	@mkdir -p $(dir $@)
	@scripts/embed.sh $@ apps_assets $(ASSETS)

$(O)/gen/webui_assets.c: $(WEBUI_ASSETS) scripts/embed.sh
	@mkdir -p $(dir $@)
	@scripts/embed.sh $@ webui_assets $(WEBUI_ASSETS)

$(O)/obj/gen/%.o: $(O)/gen/%.c common/asset.h
	@mkdir -p $(dir $@)
	@echo "  CC   $<"
	@$(CC) $(CFLAGS_ALL) -I. -c -o $@ $<

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC   $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

run: deps
	$(MAKE) $(O)/gatehouse
	./$(O)/gatehouse

unit: $(O)/unit_tests
	./$(O)/unit_tests

check-style:
	scripts/check-style.sh

test: deps-test
	$(MAKE) $(O)/gatehouse $(O)/unit_tests
	scripts/run-tests.sh $(O)

asan: deps-test
	$(MAKE) O=build/asan SAN=1 build/asan/gatehouse build/asan/unit_tests
	GH_SANITIZER=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  scripts/run-tests.sh build/asan

FUZZ_TARGETS = http1 h1write hello chunk conf path rules policy saml blockedit joinread route json resp split edgetoken
fuzz:
	@scripts/deps.sh fuzz
	@mkdir -p $(O)/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
	    $$(pkg-config --cflags $(PKGS)) \
	    -o $(O)/fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c $(COMMON) $(STORE) $(RULES) $(CERTS) $(SAML) \
	    proxy/http1_parse.c proxy/http1_chunk.c proxy/http1_write.c proxy/http1_msg.c proxy/tls_hello.c proxy/header_rules.c web-ui/blockedit.c $$( [ $$t = route ] && echo web-ui/router.c ) $$( [ $$t = split ] && echo main/cluster_split.c ) $(SLIDES) $(CLIENT) $$(pkg-config --libs $(PKGS)) \
	    -pthread || exit 1; \
	  mkdir -p $(O)/fuzz/corpus_$$t; \
	  ./$(O)/fuzz/fuzz_$$t -max_total_time=$${FUZZ_SECONDS:-20} -dict=tests/fuzz/$$t.dict \
	    $(O)/fuzz/corpus_$$t tests/fuzz/corpus/$$t > $(O)/fuzz/$$t.log 2>&1 || \
	    { tail -n 40 $(O)/fuzz/$$t.log; echo "fuzz_$$t: FAILED (crash input saved by libFuzzer)"; exit 1; }; \
	  echo "fuzz_$$t: $$(grep '^Done' $(O)/fuzz/$$t.log)"; \
	done

bench: deps
	@scripts/deps.sh bench
	$(MAKE) $(O)/gatehouse $(O)/saml_bench $(O)/store_bench $(O)/udp_load $(O)/udp_echo
	scripts/bench.sh $(O)

# Instructions (callgrind) and system calls (strace) per request of this
# build, HAProxy and nginx: keep-alive 1 KiB, then one resumed TLS
# connection per request, then one full handshake per request. Deterministic where bench's timings are not.
bench-callgrind: deps
	@scripts/deps.sh bench
	$(MAKE) $(O)/gatehouse
	GH_CG_OTHERS=1 python3 tests/bench/callgrind.py $(O)
	GH_CG_OTHERS=1 GH_CG_MODE=resumed GH_CG_N=300 GH_CG_WARM=20 python3 tests/bench/callgrind.py $(O)
	GH_CG_OTHERS=1 GH_CG_MODE=full GH_CG_N=200 GH_CG_WARM=20 python3 tests/bench/callgrind.py $(O)

clean:
	rm -rf build

.PHONY: all deps deps-test run unit test asan fuzz bench bench-callgrind clean check-style
