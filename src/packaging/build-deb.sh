#!/usr/bin/env bash
# Build the Debian package from the release binary: the manual pages and shell
# completions are generated from that binary first, then `cargo deb` packages it all
# (metadata: [package.metadata.deb] in Cargo.toml). Prints the package's absolute path.
# Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x target/release/tessera ] || cargo build --release
out=target/packaging
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
target/release/tessera man --dir "$out/man" 2>/dev/null
gzip -9n "$out"/man/*.1
target/release/tessera completions bash >"$out/completions/tessera"
target/release/tessera completions zsh >"$out/completions/_tessera"
target/release/tessera completions fish >"$out/completions/tessera.fish"
deb=$(cargo deb --no-build --strip --output target/debian | tail -1)
echo "$PWD/$deb"
