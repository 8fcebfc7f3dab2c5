# Developer entry points for gochan.  Every target installs what it needs
# (Debian packages through tools/sysdeps, a venv per CPython through
# tools/venv), so each works from a fresh clone; later runs only rebuild what
# changed.  `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules --no-print-directory

comma := ,

# CPython interpreters: every one found (3.10 and newer, tagged "3.12" or
# "3.13t"), and python3's for demo and bench.  Each is looked up once, on
# first use; override on the command line, e.g. `make pytest PY_TAGS=3.12`.
PY_TAGS ?= $(eval PY_TAGS := $$(shell tools/pythons tags))$(PY_TAGS)
PY3 ?= $(eval PY3 := $$(shell tools/pythons tag python3))$(PY3)
py3_python = .venv/$(PY3)/bin/python

# --- the Python extension, built in place once per interpreter -------------

EXT_SOURCES := $(sort $(wildcard csrc/core/*.c csrc/py/*.c))
EXT_HEADERS := $(sort $(wildcard csrc/core/*.h csrc/py/*.h))

# What the build depends on besides file times: the list of sources and the
# flags setup.py reads from the environment.  build/ext-config is rewritten
# only when these change, so a change rebuilds every interpreter's extension.
ext_config := sources=$(EXT_SOURCES) headers=$(EXT_HEADERS) \
	GOCHAN_SANITIZE=$(GOCHAN_SANITIZE) GOCHAN_DEBUG=$(GOCHAN_DEBUG)
ifneq ($(ext_config),$(file < build/ext-config))
$(shell mkdir -p build)
$(file > build/ext-config,$(ext_config))
endif

.venv/%/.built: $(EXT_SOURCES) $(EXT_HEADERS) build/ext-config setup.py \
		pyproject.toml tools/constraints.txt | sysdeps
	tools/venv $*
	touch $@

# --- C tests ---------------------------------------------------------------

SAN ?=
ifeq ($(origin CC),default)
CC := gcc
endif
CTEST_DIR := build/ctest-$(if $(SAN),$(subst $(comma),-,$(SAN)),plain)
CTEST_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
	-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-Icsrc/core -Icsrc/tests \
	$(if $(SAN),-fsanitize=$(SAN)) \
	$(if $(findstring undefined,$(SAN)),-fno-sanitize-recover=all) \
	$(EXTRA_CFLAGS)

CORE_SOURCES := $(sort $(wildcard csrc/core/*.c))
CTEST_SOURCES := $(sort $(wildcard csrc/tests/test_*.c))
CORE_OBJS := $(patsubst csrc/%.c,$(CTEST_DIR)/obj/%.o,$(CORE_SOURCES))
CTEST_BINS := $(patsubst csrc/tests/%.c,$(CTEST_DIR)/%,$(CTEST_SOURCES))

$(CTEST_DIR)/obj/%.o: csrc/%.c | sysdeps
	@mkdir -p $(@D)
	$(CC) $(CTEST_CFLAGS) $$(pkg-config --cflags libuv) -MMD -MP -c $< -o $@

$(CTEST_BINS): $(CTEST_DIR)/%: $(CTEST_DIR)/obj/tests/%.o $(CORE_OBJS)
	$(CC) $(CTEST_CFLAGS) $^ -o $@ $$(pkg-config --libs libuv) -lpthread

-include $(wildcard $(CTEST_DIR)/obj/*/*.d)

# --- targets ---------------------------------------------------------------

.PHONY: help sysdeps build venvs demo bench test ctest pytest typecheck docs \
	format format-check clean distclean pytest-asan

help:
	@echo "make demo          build for python3, run benchmarks/demo.py"
	@echo "make test          ctest under TSan, ASan, UBSan, typecheck, docs, then"
	@echo "                   pytest on every CPython >= 3.10 found ($(PY_TAGS))"
	@echo "                   and pytest-asan"
	@echo "make ctest SAN=x   C tests built with -fsanitize=x (thread, address,"
	@echo "                   undefined, or empty for none) into build/ctest-x/"
	@echo "make pytest        pytest on every CPython (PY_TAGS=3.12 for one;"
	@echo "                   PYTEST_ARGS='-q tests/test_x.py -x' to choose)"
	@echo "make pytest-asan   pytest on python3 with the extension built with ASan"
	@echo "                   and UBSan into build/asan-$(PY3)/ (PYTEST_ARGS too)"
	@echo "make typecheck     mypy --strict over docs/examples and tests/typing,"
	@echo "                   then stubtest of gochan/__init__.pyi (python3)"
	@echo "make docs          the guide and API reference with Sphinx, warnings"
	@echo "                   as errors, into build/docs/ (python3)"
	@echo "make bench         build for python3, install the bench extra (matplotlib,"
	@echo "                   janus, pygolang), run benchmarks/run.py: both tables,"
	@echo "                   the plots in docs/images/bench/ (BENCH_ARGS='--only x')"
	@echo "make build         venv .venv/$(PY3)/ for python3, extension built"
	@echo "make venvs         the same for every CPython found"
	@echo "make format        clang-format the C sources (format-check: check)"
	@echo "make clean         build products; distclean: the venvs too"

sysdeps:
	@tools/sysdeps

build: .venv/$(PY3)/.built

venvs: $(foreach tag,$(PY_TAGS),.venv/$(tag)/.built)

demo: build
	$(py3_python) benchmarks/demo.py

bench: build
	tools/venv --no-build $(PY3) bench
	$(py3_python) benchmarks/run.py $(BENCH_ARGS)

# Every step runs even when an earlier one failed, so one run shows all.
test:
	@failed=(); \
	for san in thread address undefined; do \
		echo "=== make ctest SAN=$$san"; \
		$(MAKE) ctest SAN=$$san || failed+=("ctest SAN=$$san"); \
	done; \
	echo "=== make typecheck"; \
	$(MAKE) typecheck || failed+=(typecheck); \
	echo "=== make docs"; \
	$(MAKE) docs || failed+=(docs); \
	$(MAKE) pytest || failed+=(pytest); \
	$(MAKE) pytest-asan || failed+=(pytest-asan); \
	if [[ $${#failed[@]} -ne 0 ]]; then \
		echo "make test failed: $${failed[*]}" >&2; \
		exit 1; \
	fi

ctest: $(CTEST_BINS)
	tools/run-ctests "$(SAN)" $(CTEST_BINS)

pytest: venvs
	tools/run-pytest $(PY_TAGS)

# A separate sanitized build (tools/asan-pytest): the extensions in gochan/
# stay as they are.
pytest-asan: build
	tools/asan-pytest $(PY3) $(PYTEST_ARGS)

# The stubs are checked against the extension built for python3; the examples
# and tests/typing/ are type-checked against the stubs.
typecheck: build
	tools/venv --no-build $(PY3) typing
	$(py3_python) -m mypy --strict --cache-dir build/mypy-cache \
		docs/examples tests/typing
	$(py3_python) -m mypy.stubtest gochan --mypy-config-file pyproject.toml \
		--allowlist tools/stubtest-allowlist.txt

# -E: every page is read again, as api.rst shows docstrings that Sphinx cannot
# see change; -W --keep-going: every warning is reported, and any fails.
docs: build
	tools/venv --no-build $(PY3) docs
	$(py3_python) -m sphinx -b html -E -W --keep-going -q \
		-d build/docs-doctrees docs build/docs

C_FILES = $(sort $(wildcard csrc/*/*.c csrc/*/*.h))

format:
	@command -v clang-format >/dev/null || tools/sysdeps clang-format
	clang-format -i $(C_FILES)

format-check:
	@command -v clang-format >/dev/null || tools/sysdeps clang-format
	clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf build gochan.egg-info .pytest_cache .hypothesis
	rm -f gochan/*.so .venv/*/.built
	find . -path ./.venv -prune -o -name __pycache__ -type d -print \
		| xargs rm -rf

distclean: clean
	rm -rf .venv
