# Vigie: the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := $(SUDO) apt-get

.PHONY: install run test bench bench-tools bench-assets bench-audit lint translations catalog browser clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || PYTHON=python3; \
	  [ -x $(BIN)/python ] || $${PYTHON:-$(PYTHON)} -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) translations

# Compiled catalogues are build output (.mo files are not committed).
translations: $(STAMP)
	$(BIN)/pybabel compile -d inventory/translations -D messages 2>&1 | grep -v "^compiling" || true
	@ls inventory/translations/*/LC_MESSAGES/messages.mo >/dev/null

# Debian packages the tests need: chromium (Playwright drives it; no browser download), and the
# real peers the audit probes are tested against (dcmtk's dcmqrscp/storescp, vsftpd, samba);
# pango for WeasyPrint (PDF reports) and poppler-utils (pdftoppm, pdftotext) to read them back.
SYSTEM_PACKAGES := chromium fonts-dejavu-core dcmtk vsftpd samba libpango-1.0-0 libpangoft2-1.0-0 poppler-utils
browser:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  [ -z "$$missing" ] || { $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq $$missing >/dev/null; }
	@# The tests start their own vsftpd and smbd on loopback; the system services Debian starts
	@# on install (listening on every address) are not wanted.
	@for svc in vsftpd smbd nmbd samba-ad-dc; do \
	  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled $$svc >/dev/null 2>&1; then \
	    $(SUDO) systemctl disable --now $$svc >/dev/null 2>&1 || true; fi; done

run: install
	$(BIN)/inventory init
	$(BIN)/inventory serve

test: install browser
	$(BIN)/pytest -q -p no:cacheprovider

# The audit benchmark compares with nmap and builds a simulated WAN (a network namespace, iptables,
# and a delay line compiled with gcc, since this kernel has no netem). See bench/README.md.
BENCH_PACKAGES := nmap iproute2 iptables gcc libc6-dev
bench-tools:
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  [ -z "$$missing" ] || { $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq $$missing >/dev/null; }

bench: bench-assets bench-audit

bench-assets: install
	$(BIN)/python bench/bench_assets.py

# 1,000 hosts on loopback and on the simulated WAN, against nmap (about half an hour; root).
bench-audit: install bench-tools
	$(BIN)/python bench/bench_audit.py

lint: install
	$(BIN)/ruff check inventory tests bench
	$(BIN)/mypy inventory

clean:
	rm -rf $(VENV) var tests/artifacts

# Refresh the catalogue after changing user-facing text: extract, then merge into each language.
catalog: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _l -o inventory/translations/messages.pot --no-location --sort-output --project=Vigie .
	$(BIN)/pybabel update -i inventory/translations/messages.pot -d inventory/translations -D messages --no-fuzzy-matching --ignore-obsolete
