#!/usr/bin/env bash
# Install the Debian packages datasafe's tests and optional parts need, when any is missing.
# Used by scripts/test.sh and .ci/run; as root it installs them, otherwise it says what to install.
set -euo pipefail
need_apt=()
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
command -v zstd >/dev/null || need_apt+=(zstd)
# mysqlclient (the MySQL driver) builds against the MariaDB client library
pkg-config --exists libmariadb 2>/dev/null || need_apt+=(pkg-config libmariadb-dev)
# masking's C module (datasafe.masking._native, see setup.py) links OpenSSL's libcrypto
[ -f /usr/include/openssl/sha.h ] || need_apt+=(libssl-dev)
# tests/test_report.py opens the HTML report in headless Chromium, driven through chromedriver
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
[ ${#need_apt[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
else
  echo "scripts/setup-system.sh: please install: ${need_apt[*]} (e.g. sudo apt-get install ${need_apt[*]})" >&2
  exit 1
fi
