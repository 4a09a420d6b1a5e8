# Crash consistency (power cut) of the spare's metadata, on the real kernel: dm-log-writes under the spare
# logs every write and flush that reaches it while the target relocates writes, records and heals pending
# units, remaps, unremaps, clears pending units and overflows its journal into a checkpoint. Then the log is
# replayed onto a blank spare up to flush/FUA points (sampled, plus every mark and a few FUA writes torn in
# half), the target is created over main + that spare, and what it loads is judged against the states it
# acknowledged (`log-replay check`, tests/log-replay). Finally deliberately wrong replays (data that the
# flush before a commit made durable dropped; a commit left out although it was acknowledged) must be
# caught, so the oracle is known to be able to fail. See docs/testing.md.
#
# Every process costs about a second in the debug kernel under TCG: the loops keep them few.

CR_TOOL=$DMR_TOP/target/debug/log-replay
CR_MIB=4           # main and spare
CR_BULK_START=6144 # an error segment of main: every write to it fails and is relocated, one commit each
CR_BULK_UNITS=320  # more commits than the 256-block journal holds: forces a checkpoint
CR_MAX_POINTS=${CR_MAX_POINTS:-24}
CR_TORN_POINTS=${CR_TORN_POINTS:-4}

cr_msg_quiesced() { # DEV WORD...: a message that needs the device suspended
	local dev=$1 r
	shift
	dmsetup suspend "$dev" || return 1
	dmsetup message "$dev" 0 "$@" >/dev/null
	r=$?
	dmsetup resume "$dev"
	return $r
}

cr_badblock() { # SECTOR [COUNT]: on the dust device under main; no COUNT: fails reads until written
	dmsetup message cr-dust 0 addbadblock "$@" >/dev/null
}

cr_read_fails() { ! dd if=/dev/mapper/r of=/dev/null iflag=direct bs=512 skip="$1" count=1 2>/dev/null; }

# cr_write KIB SECTOR [BS_BYTES]: fresh random data written through the target with O_DIRECT and fsync (so
# it is acknowledged and durable), and into the expected image. BS (default: up to 64 KiB) divides the size:
# dd drops O_DIRECT for a short block, and a buffered write reads first.
cr_write() {
	local bs=${3:-$(($1 < 64 ? $1 * 1024 : 65536))}
	pattern "$WORK/w" "$1"
	dd if="$WORK/w" of=/dev/mapper/r oflag=direct,seek_bytes bs="$bs" seek=$(($2 * 512)) conv=notrunc,fsync \
		2>/dev/null || return 1
	dd if="$WORK/w" of="$WORK/expected.img" bs=512 seek="$2" conv=notrunc 2>/dev/null
	_cr_dirty=1
}

# cr_ack NAME: operation number _cr_op is acknowledged: keep the target's table and the data it must hold as
# state _cr_op, and mark the log. Everything the operation made durable is in the log before the mark.
cr_ack() {
	local t=${EPOCHREALTIME/./}
	_cr_op=$((_cr_op + 1))
	_cr_times+=" $1:$(((t - _cr_t) / 1000))"
	_cr_t=$t
	dmsetup message r 0 list >"$WORK/states/$_cr_op.list"
	_cr_img[_cr_op]=${_cr_img[_cr_op - 1]}
	if [ -n "$_cr_dirty" ]; then
		cp "$WORK/expected.img" "$WORK/states/$_cr_op.img"
		_cr_img[_cr_op]=$WORK/states/$_cr_op.img _cr_dirty=
	fi
	dmsetup message cr-log 0 mark "ack-$_cr_op-$1"
}

# cr_workload: every kind of metadata change, one operation at a time, each followed by cr_ack.
cr_workload() {
	local j
	dmsetup create r --table "0 $(sectors /dev/mapper/cr-main) $TARGET /dev/mapper/cr-main /dev/mapper/cr-log" ||
		return 1
	cr_ack format # 1
	cr_badblock 100 255 && cr_badblock 101 255 && cr_badblock 1500 255
	cr_write 1024 0 || return 1 # 16 bios; one relocates units 100 and 101 (one commit), one unit 1500
	cr_ack relocate
	cr_write 4 96 || return 1 # over remapped units: their data goes to their spare units
	cr_ack overwrite
	cr_badblock 200 && cr_badblock 300
	cr_read_fails 200 || return 1
	cr_ack pending-200
	cr_read_fails 300 || return 1
	cr_ack pending-300 # 5
	dmsetup message cr-dust 0 removebadblock 300 >/dev/null
	dmsetup message r 0 clear_pending 300 || return 1
	cr_ack clear-pending-300
	cr_write 4 200 || return 1 # heals pending unit 200 onto the spare
	cr_ack heal-200
	cr_msg_quiesced r remap 2000 || return 1
	cr_ack remap-2000
	dmsetup message cr-dust 0 removebadblock 100 >/dev/null
	cr_msg_quiesced r unremap 100 || return 1
	cr_ack unremap-100
	cr_badblock 2500 255
	cr_write 4 2496 || return 1 # may reuse the spare unit that unit 100 freed
	cr_ack relocate-2500 # 10
	for j in 0 1 2 3 4; do # 512-byte bios, one relocation and one journal commit each
		cr_write $((CR_BULK_UNITS / 10)) $((CR_BULK_START + j * CR_BULK_UNITS / 5)) 512 || return 1
		cr_ack bulk-$j
	done
	cr_msg_quiesced r unremap 2000 || return 1 # a cleared record in the journal after the checkpoint
	cr_ack unremap-2000
	cr_badblock 3000 255
	cr_write 4 2996 || return 1
	cr_ack relocate-3000
	cr_badblock 4000
	cr_read_fails 4000 || return 1
	cr_ack pending-4000 # 18
}

# cr_check ACK: creates the target over the raw main and $WORK/check.img (a replayed spare, on loop device
# _cr_check_loop) and judges what it loads against state ACK (acknowledged) and ACK+1 (in flight). Prints
# why and returns 1 if it is wrong.
cr_check() {
	local next=$(($1 + 1)) out r=0
	[ -f "$WORK/states/$next.list" ] || next=$1
	if ! out=$(dmsetup create cr-check --table "0 $(sectors "$_cr_main") $TARGET $_cr_main $_cr_check_loop" 2>&1); then
		echo "the target refused the replayed spare: $out"
		return 1
	fi
	dmsetup message cr-check 0 list >"$WORK/loaded.list" && dmsetup status cr-check >"$WORK/status" || r=1
	"$CR_TOOL" check 512 /dev/mapper/cr-check "$WORK/status" "$WORK/loaded.list" "$WORK/states/$1.list" \
		"$WORK/states/$next.list" "${_cr_img[$1]}" "${_cr_img[$next]}" || r=1
	dmsetup remove cr-check || r=1
	return $r
}

# cr_entry MARK_PREFIX: the index of the log entry that is the first mark starting with MARK_PREFIX.
cr_entry() { awk -v m="$1" '$2 == "mark" && index($5, m) == 1 { print $1; exit }' "$WORK/entries"; }

# cr_sabotaged WHAT ACK REPLAY_ARGS...: a replay from a blank spare that is wrong on purpose; the check
# must reject it.
cr_sabotaged() {
	local what=$1 ack=$2 why
	shift 2
	truncate -s 0 "$WORK/bad.img" && truncate -s "${CR_MIB}M" "$WORK/bad.img" &&
		"$CR_TOOL" replay "$_cr_logdev" "$WORK/bad.img" 0 "$@" --copy-to "$WORK/check.img" ||
		{ fail "replay ($what)"; return; }
	if why=$(cr_check "$ack"); then
		fail "the oracle accepted $what"
	else
		echo "    caught $what: $(echo "$why" | head -n 1)"
	fi
}

test_crash_replay_flush_points_load_an_acknowledged_state() {
	local spare len t0 end ack kind cur=0 points=0 torn=0 why info pool e f
	_cr_op=0 _cr_dirty= _cr_img=("$WORK/states/0.img")
	_cr_main=$(make_loop main $CR_MIB) spare=$(make_loop spare $CR_MIB) _cr_logdev=$(make_loop log 64)
	len=$(sectors "$_cr_main")
	mkdir -p "$WORK/states" && : >"$WORK/states/0.list" && truncate -s "${CR_MIB}M" "$WORK/states/0.img"
	cp "$WORK/states/0.img" "$WORK/expected.img"
	dmsetup create cr-dust --table "0 $len dust $_cr_main 0 512" && dmsetup message cr-dust 0 enable &&
		dmsetup create cr-main --table "0 $CR_BULK_START linear /dev/mapper/cr-dust 0
$CR_BULK_START $CR_BULK_UNITS error
$((CR_BULK_START + CR_BULK_UNITS)) $((len - CR_BULK_START - CR_BULK_UNITS)) linear /dev/mapper/cr-dust $((CR_BULK_START + CR_BULK_UNITS))" &&
		dmsetup create cr-log --table "0 $(sectors "$spare") log-writes $spare $_cr_logdev" ||
		{ fail "device stack"; return; }

	t0=$SECONDS _cr_t=${EPOCHREALTIME/./} _cr_times=
	cr_workload || { fail "workload stopped after operation $_cr_op (ms:$_cr_times)"; return; }
	echo "    workload: $_cr_op operations in $((SECONDS - t0)) s (ms:$_cr_times)"
	dmsetup remove r && dmsetup remove cr-log && dmsetup remove cr-main && dmsetup remove cr-dust ||
		{ fail "teardown"; return; }
	blockdev --flushbufs "$spare"
	info=$("$DMR_TOP/target/debug/md-fixture" info "$spare")
	pool=${info#*pool_start=} pool=${pool%% *}
	# (`metadata_version` in the status line is the version loaded, not the current one: ask the spare.)
	case $info in *" meta_version=1 "*) fail "the journal never overflowed into a checkpoint: $info" ;; esac

	"$CR_TOOL" entries "$_cr_logdev" >"$WORK/entries" &&
		"$CR_TOOL" points "$_cr_logdev" --max "$CR_MAX_POINTS" --torn "$CR_TORN_POINTS" --keep-sectors 0,64 \
			>"$WORK/points" || { fail "log unreadable"; return; }
	echo "    log: $(wc -l <"$WORK/entries") entries, $(grep -c ' flush\| fua' "$WORK/entries") flush/FUA;" \
		"$(wc -l <"$WORK/points") replay points"

	# Replay forward on one image; each point is judged on a copy (loading may format or repair it).
	t0=$SECONDS
	truncate -s "${CR_MIB}M" "$WORK/replay.img" "$WORK/check.img"
	_cr_check_loop=$(losetup --find --show "$WORK/check.img")
	while read -r end ack kind; do
		if [ "$kind" = torn ]; then
			"$CR_TOOL" replay "$_cr_logdev" "$WORK/replay.img" "$cur" "$end" --tear-last --copy-to "$WORK/check.img" ||
				{ fail "replay"; return; }
			cur=$((end - 1)) torn=$((torn + 1))
		else
			"$CR_TOOL" replay "$_cr_logdev" "$WORK/replay.img" "$cur" "$end" --copy-to "$WORK/check.img" ||
				{ fail "replay"; return; }
			cur=$end points=$((points + 1))
		fi
		why=$(cr_check "$ack") || fail "log entries 0..$end ($kind, after operation $ack): $why"
	done <"$WORK/points"
	cmp -s "$WORK/replay.img" "$spare" || fail "the whole log replayed is not the spare as written"
	echo "    replayed and checked $points points and $torn torn writes in $((SECONDS - t0)) s"

	# The oracle must be able to fail. (a) The data the flush before a commit made durable left out, as if
	# the target had committed a mapping without flushing its data first. (b) The commit of an acknowledged
	# change left out, as if the target had acknowledged it before its commit was durable.
	t0=$SECONDS
	for e in 10-relocate-2500 7-heal-200; do
		end=$(($(cr_entry "ack-$e") + 1))
		cr_sabotaged "ack-$e without its flushed data" "${e%%-*}" "$end" --lose-data-from "$pool"
	done
	for e in 8-remap-2000 6-clear-pending-300; do
		f=$(awk -v e="$(cr_entry "ack-$e")" '$1 < e && $2 == "fua" { f = $1 } END { print f }' "$WORK/entries")
		cr_sabotaged "ack-$e without its commit (log entry $f)" "${e%%-*}" "$f"
	done
	echo "    sabotaged replays in $((SECONDS - t0)) s"
	losetup -d "$_cr_check_loop"
}
