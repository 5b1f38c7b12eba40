#!/usr/bin/env bash
# Makes a self-signed development certificate for nnunet's TLS remoting (cluster-config/tls.hocon):
#   scripts/make-dev-certs.sh [OUT_DIR] [extra SAN, e.g. IP:10.0.0.5 or DNS:node1.lan ...]
# Writes OUT_DIR/nnunet-node.pfx (PKCS#12: certificate + private key, password-protected) and
# OUT_DIR/nnunet-node.password (mode 600). Valid for 127.0.0.1 and localhost plus any extra SANs; server and client
# authentication (Akka uses mutual TLS). No CA: every node gets the same file and nnunet pins its thumbprint.
# Idempotent: an existing, still valid certificate is kept (delete OUT_DIR to make a new one).
set -euo pipefail
out="${1:-certs}"
shift || true
pfx="$out/nnunet-node.pfx"
pwfile="$out/nnunet-node.password"
mkdir -p "$out"
chmod 700 "$out"

if [[ -s "$pfx" && -s "$pwfile" ]] &&
   openssl pkcs12 -in "$pfx" -passin "file:$pwfile" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -checkend 86400 >/dev/null 2>&1; then
  echo "kept $pfx (valid for more than a day)"
else
  san="IP:127.0.0.1,DNS:localhost"
  for extra in "$@"; do san="$san,$extra"; done
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  umask 077
  openssl rand -hex 24 > "$pwfile"
  openssl req -x509 -newkey rsa:3072 -sha256 -days 825 -nodes \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj "/CN=nnunet-node" \
    -addext "subjectAltName=$san" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
    -addext "extendedKeyUsage=serverAuth,clientAuth" 2>/dev/null
  # AES + SHA-256 PBE (OpenSSL 3 default); .NET's PKCS#12 loader reads it
  openssl pkcs12 -export -in "$tmp/cert.pem" -inkey "$tmp/key.pem" -out "$pfx" -passout "file:$pwfile" -name nnunet-node
  echo "wrote $pfx and $pwfile"
fi
echo "thumbprint: $(openssl pkcs12 -in "$pfx" -passin "file:$pwfile" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :)"
echo "use:  export NNUNET_TLS_CERT=$(cd "$out" && pwd)/nnunet-node.pfx NNUNET_TLS_PASSWORD=\$(cat $pwfile)"
echo "      nnunet coordinator ... --config cluster-config/tls.hocon   (same on every worker)"
