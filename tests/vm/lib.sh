# Shared helpers for the VM integration tests (sourced by tests/vm/run and the t-*.sh files).
# Runs inside the guest, as root, with the repository at the same path as on the host.

DMR_TOP=${DMR_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KO_METADATA=$DMR_TOP/metadata/dm-remap-v4-metadata.ko
KO_SPARE_POOL=$DMR_TOP/spare_pool/dm-remap-v4-spare-pool.ko
KO_REASSEMBLY=$DMR_TOP/reassembly/dm-remap-v4-setup-reassembly.ko
KO_CORE=$DMR_TOP/src/dm-remap-v4.ko
TARGET=dm-remap-v4
WORK=${WORK:-/tmp/dmr-test}
# Filled by scripts/test with `make modules_install` + depmod.
DMR_MODROOT=${DMR_MODROOT:-$DMR_TOP/build/modroot}

# Test bookkeeping: a test is a shell function; `fail` records a failure and the runner reports it.
_failures=0
fail() {
	echo "    FAIL: $*"
	_failures=$((_failures + 1))
}

assert_eq() { # what expected actual
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

assert_contains() { # what needle haystack
	case "$3" in *"$2"*) ;; *) fail "$1: '$2' not found in '$3'" ;; esac
}

# Kernel log lines printed since the last call of dmesg_mark.
# Every process costs about a quarter of a second in the guest (TCG, debug kernel), so the helpers that the
# tests call hundreds of times run one program and do the rest in bash.
dmesg_mark() {
	local lines
	mapfile -t lines < <(dmesg)
	_dmesg_lines=${#lines[@]}
}
dmesg_new() {
	local lines
	mapfile -t -s "$_dmesg_lines" lines < <(dmesg)
	[ ${#lines[@]} = 0 ] || printf '%s\n' "${lines[@]}"
}

load_modules() {
	lsmod | grep -q '^dm_remap_v4 ' && return 0
	insmod "$KO_METADATA" && insmod "$KO_SPARE_POOL" && insmod "$KO_REASSEMBLY" && insmod "$KO_CORE"
}

unload_modules() {
	local m
	for m in dm_remap_v4 dm_remap_v4_setup_reassembly dm_remap_v4_spare_pool dm_remap_v4_metadata; do
		if lsmod | grep -q "^$m "; then rmmod "$m" || return 1; fi
	done
}

# make_loop NAME SIZE_MiB [SECTOR_SIZE]: a loop device over a file in the guest's tmpfs; prints /dev/loopN.
make_loop() {
	[ -d "$WORK" ] || mkdir -p "$WORK"
	truncate -s "${2}M" "$WORK/$1.img"
	losetup --find --show ${3:+--sector-size "$3"} "$WORK/$1.img"
}

# Removes every dm device and loop device the tests made.
cleanup_devices() {
	dmsetup remove_all --force >/dev/null 2>&1
	losetup -D
	rm -rf "$WORK"
}

sectors() { blockdev --getsz "$1"; }

# status_field DEV KEY: the value of KEY=... in the target's status line.
status_field() {
	local w words
	# Every line: a table may hold other targets too.
	read -ra words -d '' <<<"$(dmsetup status "$1")"
	for w in "${words[@]}"; do
		case "$w" in "$2="*) echo "${w#"$2="}" ;; esac
	done
}

# pattern FILE SIZE_KiB: pseudo-random data, kept in FILE to compare against.
pattern() {
	head -c "$(($2 * 1024))" /dev/urandom >"$1"
}

# same_bytes WHAT FILE DEV OFFSET_SECTORS: DEV holds FILE's bytes at OFFSET (read with O_DIRECT).
same_bytes() {
	local size
	size=$(stat -c %s "$2")
	if ! dd if="$3" iflag=direct,skip_bytes,count_bytes bs=64k skip=$(($4 * 512)) count="$size" 2>/dev/null |
		cmp -s - "$2"; then
		fail "$1: $3 at sector $4 does not hold the expected $size bytes"
	fi
}

# write_at FILE DEV OFFSET_SECTORS: writes FILE to DEV at OFFSET with O_DIRECT. The block size divides the
# file: dd drops O_DIRECT for a short last block, and a buffered write reads the pages it covers first.
write_at() {
	local size bs=65536
	size=$(stat -c %s "$1")
	[ $((size % bs)) = 0 ] || bs=$size
	dd if="$1" of="$2" oflag=direct,seek_bytes bs=$bs seek=$(($3 * 512)) conv=notrunc 2>/dev/null
}

# dust_over DEV NAME: a dm-dust device NAME over DEV with 512-byte blocks (block number = sector), enabled.
dust_over() {
	dmsetup create "$2" --table "0 $(sectors "$1") dust $1 0 512" && dmsetup message "$2" 0 enable
}

# error_range NAME DEV FIRST COUNT: a device over DEV whose sectors FIRST..FIRST+COUNT-1 fail every I/O.
error_range() {
	local len
	len=$(sectors "$2")
	dmsetup create "$1" --table "0 $3 linear $2 0
$3 $4 error
$(($3 + $4)) $((len - $3 - $4)) linear $2 $(($3 + $4))"
}

# quiesced_msg DEV WORD...: a message sent while DEV is suspended (the messages that copy data need it),
# printing its output; DEV is resumed whatever the message did.
quiesced_msg() {
	local dev=$1 r
	shift
	dmsetup suspend "$dev" || return 1
	dmsetup message "$dev" 0 "$@"
	r=$?
	dmsetup resume "$dev"
	return $r
}

remap_msg() { quiesced_msg "$1" remap "$2"; }
unremap_msg() { quiesced_msg "$1" unremap "$2"; }
