#!/usr/bin/env bash
# kservehelper: gives the image a `python` for the model, in a Dockerfile RUN step (as root).
#
#   python.sh provision WANT PATCH   cuda and custom base images
#   python.sh check-distro-packages  python3-* apt packages must be importable by `python`
#
# provision: WANT is MAJOR.MINOR or empty (= the base image's or the distro's own Python).
#   1. A custom base image that has a python3 of that version keeps it (`python` points to it).
#   2. Otherwise the distro's Python from apt, detected here: pythonWANT when the apt lists
#      have it, else the distro's python3. It goes into a venv at /opt/venv, with the distro's
#      site-packages visible when it is the distro's default python3 (python3-* apt packages).
#   3. Otherwise (a version the distro does not ship) uv, installed from PyPI, installs the
#      python-build-standalone release PATCH: a download from GitHub, or from
#      $UV_PYTHON_INSTALL_MIRROR (a --build-arg; kservehelper build passes it through).
set -euo pipefail

say() { printf 'kservehelper: %s\n' "$*" >&2; }
version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
DIST_PACKAGES=/usr/lib/python3/dist-packages

link_python() { # make `python` (and pip through it) name the interpreter $1
  if [ "$(command -v python || true)" != "$1" ]; then ln -sf "$1" /usr/local/bin/python; fi
}

apt_candidate() { # does apt offer package $1?
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

distro_default() { # the MAJOR.MINOR of the distro's python3 package (apt's view)
  apt-cache depends python3 2>/dev/null | sed -n 's/^ *Depends: python\(3\.[0-9]*\)$/\1/p' | head -n 1
}

ensure_pip() { # a distro Python without pip (Debian disables ensurepip for it)
  if "$1" -m ensurepip >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update && apt-get install -y --no-install-recommends python3-pip && return 0
  fi
  say "error: the base image's Python ($1) has no pip; hint: use a base image with pip"
  exit 1
}

provision() {
  local want=${1:-} patch=${2:-} found
  for found in python3 python; do
    if command -v "$found" >/dev/null 2>&1; then
      found=$(command -v "$found")
      local have
      have=$(version_of "$found")
      if [ -z "$want" ] || [ "$have" = "$want" ]; then
        say "using the base image's Python $have ($found)"
        link_python "$found"
        if ! "$found" -m pip --version >/dev/null 2>&1; then
          ensure_pip "$found"
        fi
        return 0
      fi
      say "the base image has Python $have ($found); build.python_version asks for $want"
      break
    fi
  done
  if ! command -v apt-get >/dev/null 2>&1; then
    say "error: the base image has no Python${want:+ $want} and no apt-get to install one;"
    say "hint: use a base image that has Python, or a Debian/Ubuntu one"
    exit 1
  fi
  apt-get update
  local default package
  default=$(distro_default)
  if [ -z "$want" ]; then want=$default; fi
  if [ -n "$want" ] && apt_candidate "python${want}-venv"; then
    package="python${want}"
    apt-get install -y --no-install-recommends ca-certificates "$package" "${package}-venv"
    local site=()
    if [ "$want" = "$default" ]; then site=(--system-site-packages); fi
    "/usr/bin/${package}" -m venv "${site[@]}" /opt/venv
    say "using the distro's Python $want (/usr/bin/${package}, venv /opt/venv)"
    return 0
  fi
  if [ -z "$patch" ]; then
    say "error: this distro's apt offers no Python ${want:-3}; set build.python_version"
    exit 1
  fi
  say "the distro ships no Python $want (its python3 is ${default:-none}): downloading $patch"
  apt-get install -y --no-install-recommends ca-certificates python3 python3-venv
  /usr/bin/python3 -m venv /opt/kservehelper-uv
  /opt/kservehelper-uv/bin/pip install --quiet "uv==${UV_VERSION:?}"
  if [ -z "${UV_PYTHON_INSTALL_MIRROR:-}" ]; then unset UV_PYTHON_INSTALL_MIRROR; fi
  export UV_PYTHON_INSTALL_DIR=/opt/python UV_PYTHON_DOWNLOADS=automatic
  if ! /opt/kservehelper-uv/bin/uv python install "$patch"; then
    say "error: could not download Python $patch (python-build-standalone, from GitHub or"
    say "\$UV_PYTHON_INSTALL_MIRROR=${UV_PYTHON_INSTALL_MIRROR:-<unset>})."
    say "hint: set build.python_version to the distro's Python (${default:-see its apt}),"
    say "or export UV_PYTHON_INSTALL_MIRROR=<mirror of the python-build-standalone releases>"
    say "before kservehelper build"
    exit 1
  fi
  /opt/kservehelper-uv/bin/uv venv --seed --python "$patch" /opt/venv
  rm -rf /opt/kservehelper-uv
}

check_distro_packages() {
  local python default
  python=$(command -v python)
  default=$(version_of /usr/bin/python3 2>/dev/null || echo none)
  if "$python" -c "import sys; sys.exit('$DIST_PACKAGES' not in sys.path)" \
    && [ "$(version_of "$python")" = "$default" ]; then
    return 0
  fi
  say "error: build.system_packages lists python3-* packages: they install into the distro's"
  say "python3 ($default, $DIST_PACKAGES), which the model's Python ($python,"
  say "$(version_of "$python")) cannot import."
  say "hint: install the pip package instead (python_packages), or use the distro's Python:"
  say "set build.python_version: \"$default\" (or remove it)"
  exit 1
}

case "${1:-}" in
  provision) provision "${2:-}" "${3:-}" ;;
  check-distro-packages) check_distro_packages ;;
  *) say "usage: $0 provision WANT PATCH | check-distro-packages"; exit 2 ;;
esac
