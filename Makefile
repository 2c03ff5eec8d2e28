# Chronoscope — the two commands:
#   make run    install what is missing, build, and serve on http://127.0.0.1:8080/
#   make test   install what is missing and run the whole suite (browser tests included)
# Every install step checks first, so a second run skips what is already right.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# A failed recipe (say, the bundle over its budget) leaves no target behind that looks done.
.DELETE_ON_ERROR:

CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CARGO_BIN):$(PATH)

TRUNK_VERSION := 0.21.14
# The wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock (pinned in frontend/Cargo.toml).
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ADDR ?= 127.0.0.1:8080
# The first load (wasm + JS glue, gzip -9) must stay within this many bytes.
BUNDLE_BUDGET_GZIP := 350000
# Fonts for the browser tests: colour emoji and CJK, as users' systems have them.
BROWSER_FONTS := fonts-noto-color-emoji fonts-noto-cjk
DATA_DIR ?= ./data

FRONTEND_SOURCES := $(shell find frontend shared static -type f -not -path '*/target/*') \
	Cargo.toml Cargo.lock Trunk.toml package-lock.json

.PHONY: help run test tools browser-tools chrony wasm-target trunk wasm-bindgen-cli npm-tools dist server \
	lint unit-tests wasm-check browser-tests bundle-size clean

help:
	@echo "make run    install what is missing, build and start Chronoscope at http://$(ADDR)/"
	@echo "make test   install what is missing and run the whole test suite (browser tests too)"

## ---------------------------------------------------------------- the two commands
run: tools dist server
	./target/release/chronoscope serve --addr $(ADDR) --dist dist --data-dir $(DATA_DIR)

test: tools browser-tools chrony lint unit-tests wasm-check dist browser-tests
	@echo "make test: all checks passed"

## ---------------------------------------------------------------- installs (idempotent)
tools: wasm-target trunk wasm-bindgen-cli npm-tools

wasm-target:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
		|| rustup target add wasm32-unknown-unknown

trunk:
	@if [ "$$(trunk --version 2>/dev/null)" != "trunk $(TRUNK_VERSION)" ]; then \
		echo "installing trunk $(TRUNK_VERSION) (a few minutes, once)"; \
		cargo install trunk --version $(TRUNK_VERSION) --locked; \
	fi

# Without --locked: its lockfile names a dependency version the registry here does not serve.
wasm-bindgen-cli:
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "error: no wasm-bindgen in Cargo.lock"; exit 1; }
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
		echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force; \
	fi

# wasm-opt (npm binaryen) and Mermaid, pinned by package-lock.json.
npm-tools: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser-tools:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing Debian's chromium and chromium-driver"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi
	@missing=""; for p in $(BROWSER_FONTS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian's$$missing (so screenshots show emoji and CJK as users see them)"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $$missing; \
	fi

# chrony 4.3, the NTP interop peer: Debian's package unpacked into a folder of our own, never
# installed (that would replace the machine's time daemon). Tests run `chronyd -x`, which never
# touches the system clock.
CHRONY_DIR := target/peers/chrony
chrony: $(CHRONY_DIR)/usr/sbin/chronyd
$(CHRONY_DIR)/usr/sbin/chronyd:
	@echo "unpacking Debian's chrony into $(CHRONY_DIR)"
	@mkdir -p $(CHRONY_DIR)/deb
	@cd $(CHRONY_DIR)/deb && rm -f chrony_*.deb && { apt-get download chrony 2>/dev/null \
		|| { $(SUDO) apt-get update -qq && apt-get download chrony; }; }
	dpkg-deb -x $(CHRONY_DIR)/deb/chrony_*.deb $(CHRONY_DIR)
	@$@ -v

## ---------------------------------------------------------------- builds
dist: dist/index.html
dist/index.html: $(FRONTEND_SOURCES) node_modules/.installed
	trunk build --release --skip-version-check
	mkdir -p dist/vendor/mermaid
	cp node_modules/mermaid/dist/mermaid.min.js node_modules/mermaid/LICENSE dist/vendor/mermaid/
	@$(MAKE) --no-print-directory bundle-size

# The first load is the shell bundle (chronoscope-web-<hash>: overview, navigation, editor);
# the labs bundle (chronoscope-labs) comes on the first visit to a lab. See frontend/src/lib.rs.
bundle-size:
	@gz() { gzip -9 -c "$$1" | wc -c; }; \
	br() { if command -v brotli >/dev/null; then echo ", brotli $$(brotli -c -q 11 "$$1" | wc -c) B"; fi; }; \
	wasm=$$(ls dist/chronoscope-web-*_bg.wasm); js=$${wasm%_bg.wasm}.js; \
	lwasm=dist/chronoscope-labs_bg.wasm; ljs=dist/chronoscope-labs.js; \
	echo "shell: wasm $$(stat -c %s "$$wasm") B (gzip $$(gz "$$wasm") B$$(br "$$wasm")); js glue $$(stat -c %s "$$js") B (gzip $$(gz "$$js") B)"; \
	echo "labs:  wasm $$(stat -c %s "$$lwasm") B (gzip $$(gz "$$lwasm") B$$(br "$$lwasm")); js glue $$(stat -c %s "$$ljs") B (gzip $$(gz "$$ljs") B), loaded on the first visit to a lab"; \
	first=$$(( $$(gz "$$wasm") + $$(gz "$$js") )); \
	if [ $$first -le $(BUNDLE_BUDGET_GZIP) ]; then \
		echo "first load: $$first B gzip, within the $(BUNDLE_BUDGET_GZIP) B budget"; \
	else \
		echo "first load: $$first B gzip, OVER the $(BUNDLE_BUDGET_GZIP) B budget by $$((first - $(BUNDLE_BUDGET_GZIP))) B" \
			"(see ARCHITECTURE.md, Bundle budget)"; \
		exit 1; \
	fi

server:
	cargo build --release -p chronoscope-server

## ---------------------------------------------------------------- checks
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit-tests:
	cargo test --workspace

wasm-check:
	cargo check -p chronoscope --target wasm32-unknown-unknown

# The #[ignore]d tests need real peers: the browser tests need dist/ and Chromium, the NTP
# interop tests chronyd. Running them through the workspace reuses the unit tests' build (same
# feature set) instead of rebuilding.
browser-tests: dist chrony
	cargo test --workspace -- --ignored --test-threads=1

clean:
	rm -rf dist target
