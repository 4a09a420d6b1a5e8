# Crash consistency (power cut) of main and the spare, on the real kernel: main and spare are two linear
# slices of one disk under one dm-log-writes device, so one log orders every write and flush that reaches
# either, while the target relocates writes, records and heals pending units, remaps, unremaps (copying units
# back to main), clears pending units and overflows its journal into a checkpoint (main's dm-dust and error
# segments stack on its slice). Then the log is replayed onto a blank disk up to flush/FUA points (sampled,
# plus every mark and a few FUA writes torn in half), the target is created over each replayed main +
# replayed spare, and the table it loads and the data of every unit are judged against the states it
# acknowledged (tests/log-replay). Deliberately wrong replays (data that the flush before a commit made
# durable dropped; a commit left out although acknowledged; an unremap's copy back to main, or an overwrite
# on main, left out although flushed) must be rejected, so the oracle is known to be able to fail. Known
# limit: a flush on either slice flushes the whole log, so a flush the target fails to pass to main alone
# goes unseen. See docs/testing.md.
#
# Every process costs about a second in the debug kernel under TCG: the replay phase runs a fixed number of
# them plus one `dmsetup message` per point.

CR_TOOL=$DMR_TOP/target/debug/log-replay
CR_MIB=4           # main and spare
CR_BULK_START=6144 # an error segment of main: every write to it fails and is relocated, one commit each
CR_BULK_UNITS=320  # more commits than the 256-block journal holds: forces a checkpoint
CR_MAX_POINTS=${CR_MAX_POINTS:-24}
CR_TORN_POINTS=${CR_TORN_POINTS:-4}
CR_MINOR=1000 # minors of the check devices: main slice cm<n> = CR_MINOR + 3n, spare slice cs<n> + 1, target cr<n> + 2
# First sectors of the spare's two scrub-state blocks, which hold the shutdown marks (SCRUB_BLOCKS in
# metadata/src/scrub.rs, 8 sectors a block).
CR_SCRUB_SECTORS=(8 72)

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
	# Without a data write the state's data is that of the state before (the judge looks back).
	[ -z "$_cr_dirty" ] || cp "$WORK/expected.img" "$WORK/states/$_cr_op.img"
	_cr_dirty=
	dmsetup message cr-log 0 mark "ack-$_cr_op-$1"
}

# cr_workload: every kind of metadata change, one operation at a time, each followed by cr_ack.
cr_workload() {
	local j
	dmsetup create r --table "0 $(sectors /dev/mapper/cr-main) $TARGET /dev/mapper/cr-main /dev/mapper/cr-spare" ||
		return 1
	cr_ack format # 1
	cr_badblock 100 255 && cr_badblock 101 255 && cr_badblock 900 255
	cr_write 512 0 || return 1 # 8 bios; one relocates units 100 and 101 (one commit), one unit 900
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
	for j in 0 1; do # 512-byte bios, one relocation and one journal commit each
		cr_write $((CR_BULK_UNITS / 4)) $((CR_BULK_START + j * CR_BULK_UNITS / 2)) 512 || return 1
		cr_ack bulk-$j
	done
	cr_msg_quiesced r unremap 2000 || return 1 # a cleared record in the journal after the checkpoint
	cr_ack unremap-2000
	cr_badblock 3000 255
	cr_write 4 2996 || return 1
	cr_ack relocate-3000
	cr_badblock 4000
	cr_read_fails 4000 || return 1
	cr_ack pending-4000 # 15
}

# cr_entry MARK_PREFIX: the index of the log entry that is the first mark starting with MARK_PREFIX.
cr_entry() { awk -v m="$1" '$2 == "mark" && index($5, m) == 1 { print $1; exit }' "$WORK/entries"; }

test_crash_replay_flush_points_load_an_acknowledged_state() {
	local disk len t0 end ack kind points why info pool e f loop major name spec n i
	_cr_op=0 _cr_dirty=
	# One disk, main its first half and the spare its second: one log orders the writes of both.
	disk=$(make_loop disk $((2 * CR_MIB))) _cr_logdev=$(make_loop log 64)
	len=$((CR_MIB * 2048))
	mkdir -p "$WORK/states" && : >"$WORK/states/0.list" && truncate -s "${CR_MIB}M" "$WORK/states/0.img"
	cp "$WORK/states/0.img" "$WORK/expected.img"
	dmsetup create --concise "cr-log,,,,0 $((2 * len)) log-writes $disk $_cr_logdev" &&
		dmsetup create --concise "cr-mslice,,,,0 $len linear /dev/mapper/cr-log 0;cr-spare,,,,0 $len linear /dev/mapper/cr-log $len" &&
		dmsetup create cr-dust --table "0 $len dust /dev/mapper/cr-mslice 0 512" && dmsetup message cr-dust 0 enable &&
		dmsetup create cr-main --table "0 $CR_BULK_START linear /dev/mapper/cr-dust 0
$CR_BULK_START $CR_BULK_UNITS error
$((CR_BULK_START + CR_BULK_UNITS)) $((len - CR_BULK_START - CR_BULK_UNITS)) linear /dev/mapper/cr-dust $((CR_BULK_START + CR_BULK_UNITS))" ||
		{ fail "device stack"; return; }

	t0=$SECONDS _cr_t=${EPOCHREALTIME/./} _cr_times=
	cr_workload || { fail "workload stopped after operation $_cr_op (ms:$_cr_times)"; return; }
	echo "    workload: $_cr_op operations in $((SECONDS - t0)) s (ms:$_cr_times)"
	dmsetup remove r || { fail "teardown"; return; }
	info=$("$DMR_TOP/target/debug/md-fixture" info /dev/mapper/cr-spare)
	dmsetup remove cr-main cr-dust cr-mslice cr-spare cr-log || { fail "teardown"; return; }
	pool=${info#*pool_start=} pool=${pool%% *}
	# (`metadata_version` in the status line is the version loaded, not the current one: ask the spare.)
	case $info in *" meta_version=1 "*) fail "the journal never overflowed into a checkpoint: $info" ;; esac

	# Every FUA write of a superblock copy is a point too: sectors 0 and 64 of the spare, on the disk after main.
	"$CR_TOOL" entries "$_cr_logdev" >"$WORK/entries" &&
		"$CR_TOOL" points "$_cr_logdev" --max "$CR_MAX_POINTS" --torn "$CR_TORN_POINTS" \
			--keep-sectors "$len,$((len + 64))" \
			>"$WORK/spec" || { fail "log unreadable"; return; }
	points=$(wc -l <"$WORK/spec")
	echo "    log: $(wc -l <"$WORK/entries") entries, $(grep -c ' flush\| fua' "$WORK/entries") flush/FUA;" \
		"$points replay points"
	# Deliberately wrong replays, which the oracle must reject. (a) The data the flush before a commit made
	# durable left out, as if the target had committed a mapping without flushing its data first (the pool
	# is on the spare's slice, at sector len + pool of the disk). (b) The commit of an acknowledged change
	# left out, as if the target had acknowledged it before it was durable. (c) Main's writes of an
	# operation left out, as if they had not been flushed: the copy back of an unremap (before the mapping
	# was cleared) and an overwrite of healthy units on main (before it was acknowledged).
	for e in 10-relocate-2500 7-heal-200; do
		echo "$(($(cr_entry "ack-$e") + 1)) ${e%%-*} lost-data ack-$e $((len + pool))" >>"$WORK/spec"
	done
	for e in 8-remap-2000 6-clear-pending-300; do
		# The last FUA write before the acknowledgement that is not a shutdown mark (the scrub-state blocks:
		# a suspend writes the clean mark, a resume the dirty one) is the commit.
		f=$(awk -v e="$(cr_entry "ack-$e")" -v m1=$((len + CR_SCRUB_SECTORS[0])) -v m2=$((len + CR_SCRUB_SECTORS[1])) \
			'$1 < e && $2 == "fua" && $3 != m1 && $3 != m2 { f = $1 } END { print f }' "$WORK/entries")
		echo "$f ${e%%-*} no-commit ack-$e" >>"$WORK/spec"
	done
	for e in 9-unremap-100:8-remap-2000 3-overwrite:2-relocate; do
		echo "$(($(cr_entry "ack-${e%%:*}") + 1)) ${e%%-*} lost-main ack-${e%%:*} $(cr_entry "ack-${e#*:}") $len" \
			>>"$WORK/spec"
	done

	# One disk image (main + spare) per line, side by side in one file on one loop device; all the targets
	# are created by one dmsetup call, each over linear slices of that loop device (cm<n>, cs<n>, cr<n>).
	t0=$SECONDS
	"$CR_TOOL" images "$_cr_logdev" "$WORK/spec" "$WORK/images" $((2 * CR_MIB << 20)) || { fail "images"; return; }
	cmp -s -i $(((points - 1) * (2 * CR_MIB << 20))):0 -n $((2 * CR_MIB << 20)) "$WORK/images" "$disk" ||
		fail "the whole log replayed is not main and the spare as written"
	loop=$(losetup --find --show "$WORK/images")
	while read -r major name; do [ "$name" = device-mapper ] && break; done </proc/devices
	spec= n=0
	while read -r end ack kind; do
		spec+="cm$n,,$((CR_MINOR + 3 * n)),,0 $len linear $loop $((2 * n * len));"
		spec+="cs$n,,$((CR_MINOR + 3 * n + 1)),,0 $len linear $loop $(((2 * n + 1) * len));"
		spec+="cr$n,,$((CR_MINOR + 3 * n + 2)),,0 $len $TARGET $major:$((CR_MINOR + 3 * n)) $major:$((CR_MINOR + 3 * n + 1));"
		n=$((n + 1))
	done <"$WORK/spec"
	why=$(dmsetup create --concise "$spec" 2>&1) || fail "creating the targets over the replayed disks: $why"
	dmsetup status >"$WORK/status"
	mkdir -p "$WORK/lists"
	for ((i = 0; i < n; i++)); do
		dmsetup message cr$i 0 list >"$WORK/lists/$i.list" 2>/dev/null
	done
	while read -r why; do
		case $why in FAIL:*) fail "${why#FAIL: }" ;; *) echo "    $why" ;; esac
	done < <("$CR_TOOL" judge "$WORK/spec" "$WORK/status" "$WORK/lists" "$WORK/states" 512 $((CR_MIB << 20)) "$CR_MINOR" ||
		[ $? = 1 ] || echo "FAIL: log-replay judge could not run") # 1: verdicts printed as FAIL lines
	echo "    replay, load and judgement of $n disks: $((SECONDS - t0)) s"
	dmsetup remove $(for ((i = 0; i < n; i++)); do echo cr$i; done) $(for ((i = 0; i < n; i++)); do echo cs$i cm$i; done)
	losetup -d "$loop"
}
