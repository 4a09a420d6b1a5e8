# Shared settings for every dm-remap-v4 script. Source it; it only sets variables.
# One place for versions and paths, so the scripts cannot disagree.

DMR_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Kernel under test: Debian's linux-source package (trixie-backports).
DMR_KVER=7.3
DMR_KSRC_PKG=linux-source-7.3
DMR_KSRC_PKG_VERSION=7.3.4-1~bpo13+1
DMR_KSRC_TARBALL=/usr/src/linux-source-7.3.tar.xz

# Rust: rustc from rustup, its library sources from Debian's rust-src (rustup cannot fetch rust-src here).
DMR_RUST_VERSION=1.95.0
DMR_RUST_SRC_PKG_VERSION=1.95.0+dfsg1-2~bpo13+1
DMR_BINDGEN_VERSION=0.73.2
DMR_VNG_VERSION=1.42
DMR_LLVM_SUFFIX=-19
# Packaging (scripts/package, the DKMS VM test): bookworm's own versions.
DMR_DKMS_VERSION=3.0.10-8+deb12u1
DMR_DEBHELPER_VERSION=13.11.4

# Build products live outside the checkout, keyed by kernel version + config hash.
DMR_CACHE=${DMR_CACHE:-/var/cache/dm-remap-v4}

export RUSTUP_TOOLCHAIN=$DMR_RUST_VERSION
export RUST_LIB_SRC=/usr/src/rustc-$DMR_RUST_VERSION/library
export LIBCLANG_PATH=/usr/lib/llvm${DMR_LLVM_SUFFIX}/lib
export PATH=$HOME/.cargo/bin:/usr/lib/llvm${DMR_LLVM_SUFFIX}/bin:$PATH
# The guest has no udev: libdevmapper must create /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1

dmr_die() {
	echo "error: $*" >&2
	exit 1
}

dmr_log() {
	echo "==> [$(date +%T)] $*" >&2
}
