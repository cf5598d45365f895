#!/usr/bin/env bash
# Install what Gatehouse needs, only what is missing, from Debian's packages.
#   scripts/deps.sh build   compiler and libraries
#   scripts/deps.sh test    + test clients and peers (curl, wget, chromium, python3, cmocka)
#   scripts/deps.sh fuzz    + clang and its libFuzzer runtime
#   scripts/deps.sh bench   + nginx, haproxy, squid, varnish, wrk, httperf, valgrind, strace
set -euo pipefail
mode=${1:-build}

build_pkgs=(gcc make pkg-config libc6-dev libpcre2-dev libssl-dev libc-ares-dev libcrypt-dev
    libmaxminddb-dev)
test_pkgs=(libcmocka-dev curl python3 openssl procps strace python3-websockets wget chromium
    libnss3-tools slowhttptest libmaxmind-db-writer-perl)
fuzz_pkgs=(clang libclang-rt-14-dev)
bench_pkgs=(nginx-light haproxy wrk httperf util-linux procps valgrind strace squid varnish)

want=("${build_pkgs[@]}")
case "$mode" in
build) ;;
test) want+=("${test_pkgs[@]}") ;;
fuzz) want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 build|test|fuzz|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx's Debian package starts a service listening on :80, squid's one on :3128 (where `make run`
# puts Gatehouse's forward proxy), varnish's on :6081; the tests and bench start their own
# instances, so stop them where a service manager runs them.
if [[ " ${missing[*]} " =~ " "(nginx-light|haproxy|squid|varnish)" " ]]; then
    (service nginx stop; service haproxy stop; service squid stop; service varnish stop) >/dev/null 2>&1 || true
fi
