# Sourced by scripts/up and scripts/up-swarm: messages, and settings from the environment or
# the env file (.env, created from .env.example; USBILLS_ENV_FILE picks another file). The
# environment wins over the file, as in Compose.
log() { printf 'up: %s\n' "$*" >&2; }
die() { printf 'up: error: %s\n' "$*" >&2; exit 1; }

env_file="${USBILLS_ENV_FILE:-.env}"
if [ ! -f "$env_file" ]; then
  cp .env.example "$env_file" || die "cannot create $env_file"
  log "created $env_file from .env.example"
fi
# conf KEY DEFAULT: the environment, else the env file, else DEFAULT.
conf() {
  local v
  if [ -n "${!1+x}" ]; then v="${!1}"; else v=$(sed -n "s/^$1=//p" "$env_file" | tail -1); fi
  printf '%s' "${v:-$2}"
}
set_env() {
  if grep -q "^$1=" "$env_file"; then sed -i "s|^$1=.*|$1=$2|" "$env_file"
  else printf '%s=%s\n' "$1" "$2" >> "$env_file"; fi
}

# DOMAIN and EMAIL, checked, become the site's VIRTUAL_HOST / LETSENCRYPT_* in the env file.
domain="${DOMAIN:-}"
if [ -n "$domain" ]; then
  domain=$(printf '%s' "$domain" | tr 'A-Z' 'a-z')
  [[ "$domain" =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$ ]] \
    || die "DOMAIN='$DOMAIN' is not a domain name like bills.example.com"
  set_env VIRTUAL_HOST "$domain"
  set_env LETSENCRYPT_HOST "$domain"
  export VIRTUAL_HOST="$domain" LETSENCRYPT_HOST="$domain"
fi
if [ -n "${EMAIL:-}" ]; then
  [[ "$EMAIL" =~ ^[^@[:space:]|]+@[^@[:space:]|]+\.[^@[:space:]|]+$ ]] \
    || die "EMAIL='$EMAIL' is not an e-mail address"
  set_env LETSENCRYPT_EMAIL "$EMAIL"
  export LETSENCRYPT_EMAIL="$EMAIL"
fi

# The Docker engine and Compose v2, installed on a fresh Debian/Ubuntu host.
need_docker() {
  if ! docker compose version >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 \
      || die "Docker with Compose v2 is needed and this is not a Debian/Ubuntu host: install them, then run scripts/up again"
    scripts/install-docker || die "could not install or start Docker (see above)"
  fi
}

# Builds behind a TLS-intercepting proxy: the CA bundle as a BuildKit secret (compose.ca.yml).
ca_files=()
ca=$(conf BUILD_CA_FILE /etc/ssl/certs/ca-certificates.crt)
if [ "$ca" != none ]; then
  if [ -s "$ca" ]; then
    export BUILD_CA_FILE="$ca"
    ca_files=(-f compose.ca.yml)
  elif [ -n "${BUILD_CA_FILE:-}" ]; then
    die "BUILD_CA_FILE=$ca does not exist (\"none\" builds without a CA file)"
  fi
fi
