# Helpers of the dmremap VM tests (t-dmremap.sh, t-assemble.sh); sourced by them, not a test file itself.

# without_dmsetup CMD...: runs CMD in a private mount namespace where every dmsetup binary on the usual paths
# is covered by /dev/null, which cannot be executed; checks first that dmsetup really cannot run there. dmremap
# talks to device-mapper through its ioctls only, so it must work the same.
without_dmsetup() {
	unshare --mount --propagation private sh -c '
		for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
			if [ -e "$d/dmsetup" ]; then mount --bind /dev/null "$d/dmsetup" || exit 98; fi
		done
		if dmsetup version >/dev/null 2>&1; then echo "without_dmsetup: dmsetup still runs" >&2; exit 98; fi
		exec "$@"' sh "$@"
}
