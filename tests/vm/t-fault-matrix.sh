# Fault matrix: combinations of faults the other error tests do not cover (t-error-path.sh: single faults on
# main, spare exhaustion, one failing spare unit during a relocation; t-error-load.sh: ext4 and fio over
# failing writes; t-crash-replay.sh: power cuts). Here: one write over remapped, pending and newly failing
# units at once; failing spare units of remapped units; the spare vanishing under I/O; the metadata region
# failing its writes (and a table reload that cannot read it); a transient outage of main's writes. Every
# scenario keeps an image of the data it had acknowledged and compares the device with it byte for byte,
# also after the target was loaded again from the spare's metadata.
#
# Each scenario ends with a greppable line that scripts/reliability-summary adds up:
#   fault-matrix: <scenario>: faults_injected=F writes_acked=A writes_verified=V lost_writes=L
#
# Processes are what costs time in the debug kernel under TCG, so status lines are read once and checked
# with shell patterns (fm_status) rather than one `dmsetup status | sed` per field.

# Small devices: reading them back whole is what most of the time goes to under TCG. A 4 MiB spare gets the
# smallest metadata region (2 MiB) and a pool of 4096 units.
FM_MIB=2
FM_LEN=$((FM_MIB * 2048))
FM_SPARE_MIB=4
FM_SPARE_LEN=$((FM_SPARE_MIB * 2048))

# fm_begin NAME: a new scenario with an all-zero expected image (what a fresh target over zeroed loop
# devices reads) and a file of random data that the writes take their data from, each from a new offset.
fm_begin() {
	_fm_name=$1 _fm_faults=0 _fm_acked=0 _fm_verified=0 _fm_writes=() _fm_rand=0 _fm_lost=()
	mkdir -p "$WORK"
	rm -f "$WORK/exp.img"
	truncate -s "${FM_MIB}M" "$WORK/exp.img"
	head -c "${FM_MIB}M" /dev/urandom >"$WORK/rand"
}

fm_end() {
	echo "fault-matrix: $_fm_name: faults_injected=$_fm_faults writes_acked=$_fm_acked" \
		"writes_verified=$_fm_verified lost_writes=${#_fm_lost[@]}"
}

# fm_fault [N]: N (default 1) faults were injected.
fm_fault() { _fm_faults=$((_fm_faults + ${1:-1})); }

# fm_bad NAME COUNT SECTOR...: each SECTOR of dust device NAME fails reads, and its next COUNT writes (0: the
# first write clears it, as a drive that rewrites an unreadable sector).
fm_bad() {
	local name=$1 count=$2 s
	shift 2
	for s in "$@"; do
		if [ "$count" = 0 ]; then
			dmsetup message "$name" 0 addbadblock "$s" >/dev/null || fail "addbadblock $s on $name"
		else
			dmsetup message "$name" 0 addbadblock "$s" "$count" >/dev/null || fail "addbadblock $s on $name"
		fi
		fm_fault
	done
}

# fm_create MAIN SPARE [NAME]: the target over all of MAIN (FM_LEN sectors).
fm_create() { dmsetup create "${3:-r}" --table "0 $FM_LEN $TARGET $1 $2"; }

# fm_reload MAIN SPARE: loads the same table again and swaps it in; the new table reads the metadata.
fm_reload() { dmsetup reload r --table "0 $FM_LEN $TARGET $1 $2" && dmsetup resume r; }

# _fm_dd_rand SECTORS SECTOR OF [FLAGS]: SECTORS of new random data to OF at SECTOR, in one bio with O_DIRECT.
_fm_dd_rand() {
	dd if="$WORK/rand" iflag=skip_bytes skip=$((_fm_rand * 512)) of="$3" oflag=seek_bytes${4:+,$4} \
		seek=$(($2 * 512)) bs=$(($1 * 512)) count=1 conv=notrunc 2>/dev/null
}

# fm_write SECTORS SECTOR: new random data written through r in one O_DIRECT bio; once acknowledged it goes
# into the expected image. Returns dd's status.
fm_write() {
	[ $((_fm_rand + $1)) -le "$FM_LEN" ] || _fm_rand=0
	_fm_dd_rand "$1" "$2" /dev/mapper/r direct || { _fm_rand=$((_fm_rand + $1)); return 1; }
	_fm_dd_rand "$1" "$2" "$WORK/exp.img"
	_fm_rand=$((_fm_rand + $1))
	_fm_acked=$((_fm_acked + 1))
	_fm_writes+=("$2:$1")
}

# fm_write_fails WHAT SECTORS SECTOR: a write through r that must fail. The expected image is left alone:
# a failed write promised nothing, and the scenarios only make it fail on units whose every copy rejected it.
fm_write_fails() {
	[ $((_fm_rand + $2)) -le "$FM_LEN" ] || _fm_rand=0
	_fm_dd_rand "$2" "$3" /dev/mapper/r direct && fail "$1: the write of $2 sectors at $3 succeeded"
	_fm_rand=$((_fm_rand + $2))
}

# fm_read_fails WHAT SECTOR [SECTORS]: a read through r (one bio) that must fail.
fm_read_fails() {
	if dd if=/dev/mapper/r of=/dev/null iflag=direct,skip_bytes bs=$((${3:-1} * 512)) skip=$(($2 * 512)) \
		count=1 2>/dev/null; then
		fail "$1: the read of sector $2 succeeded"
	fi
}

# fm_main_fails WHAT DEV SECTOR: DEV (under the target) still fails a read of SECTOR, so data read through
# the target for it cannot have come from there.
fm_main_fails() {
	dd if="$2" of=/dev/null iflag=direct,skip_bytes bs=512 skip=$(($3 * 512)) count=1 2>/dev/null &&
		fail "$1: $2 no longer fails sector $3"
}

# fm_range_ok START SECTORS: r holds the expected image's bytes there.
fm_range_ok() {
	dd if=/dev/mapper/r iflag=direct,skip_bytes,count_bytes bs=1M skip=$(($1 * 512)) count=$(($2 * 512)) \
		2>/dev/null | cmp -s -n $(($2 * 512)) -i 0:$(($1 * 512)) - "$WORK/exp.img"
}

# fm_check WHAT [START SECTORS]: r holds the expected image (all of it by default). On a mismatch, every
# acknowledged write whose range reads back wrong is counted as lost (once, however many checks find it). A
# whole-device match verifies every write so far.
fm_check() {
	local start=${2:-0} n=${3:-$FM_LEN} i s c lost=0
	if fm_range_ok "$start" "$n"; then
		[ "$n" != "$FM_LEN" ] || _fm_verified=$_fm_acked
		return 0
	fi
	for i in "${!_fm_writes[@]}"; do
		s=${_fm_writes[i]%:*} c=${_fm_writes[i]#*:}
		[ $((s + c)) -le "$start" ] || [ "$s" -ge $((start + n)) ] || fm_range_ok "$s" "$c" || {
			lost=$((lost + 1))
			_fm_lost[i]=1
		}
	done
	fail "$1: r does not hold the expected data in sectors $start..$((start + n - 1))" \
		"($lost acknowledged writes read back wrong)"
}

# fm_status DEV WHAT KEY=VALUE...: one `dmsetup status`, every KEY=VALUE checked in it.
fm_status() {
	local dev=$1 what=$2 st kv
	shift 2
	st=" $(dmsetup status "$dev") "
	for kv in "$@"; do
		case "$st" in *" $kv "*) ;; *) fail "$what: status lacks $kv: '${st# * * * }'" ;; esac
	done
}

# fm_list DEV: the entries as "sector state" lines.
fm_list() {
	local s spare ss st
	dmsetup message "$1" 0 list | while read -r s spare ss st; do echo "$s $st"; done
}

# fm_spare_sector DEV SECTOR: the spare sector of the unit holding SECTOR (its entry must exist).
fm_spare_sector() {
	local s spare ss st
	read -r s spare ss st < <(dmsetup message "$1" 0 list "$2" 1)
	[ "$s" = "$2" ] && echo "$ss"
}

test_fault_one_write_over_remapped_pending_and_failing_units() {
	local main spare
	fm_begin mixed-units
	main=$(make_loop main $FM_MIB) spare=$(make_loop spare $FM_SPARE_MIB)
	dust_over "$main" dust || { fail "create dust"; return; }
	fm_create /dev/mapper/dust "$spare" || { fail "create"; return; }
	fm_write 2048 0 || fail "initial write"
	# Sector 9 fails every write (and read): the write that finds it relocates it.
	fm_bad dust 255 9
	fm_write 8 8 || fail "relocating write"
	# Sector 11 fails reads until it is written: a read finds it and it goes pending.
	fm_bad dust 0 11
	fm_read_fails "read over an unreadable unit" 8 8
	# Sector 13 fails reads and writes from now on; nothing has touched it through the target yet.
	fm_bad dust 255 13
	assert_eq "entries before the write" "9 active
11 pending" "$(fm_list r)"
	# One 4 KiB write covers good units, a remapped one, a pending one and a newly failing one: it is split
	# at the unit boundaries, the pending unit healed onto the spare, the failing one relocated.
	fm_write 8 8 || fail "write over remapped, pending and failing units"
	assert_eq "entries after the write" "9 active
11 active
13 active" "$(fm_list r)"
	fm_status r "after the write" remapped=3 pending=0 spare_used=3 read_errors=1 write_errors=0 \
		metadata=ok state=ok
	# Main still fails them (dust never saw the healing write of 11): their data comes from the spare.
	fm_main_fails "after the write" /dev/mapper/dust 11
	fm_main_fails "after the write" /dev/mapper/dust 13
	# The whole device, read in 64 KiB bios that the target splits over main and three spare units.
	fm_check "after the write"
	dmsetup remove r
	fm_create /dev/mapper/dust "$spare" || { fail "recreate"; return; }
	assert_eq "entries after recreate" "9 active
11 active
13 active" "$(fm_list r)"
	fm_check "after recreate"
	fm_end
}

test_fault_spare_units_of_remapped_units_fail() {
	local main spare p100 p200 n200
	fm_begin spare-unit-errors
	main=$(make_loop main $FM_MIB) spare=$(make_loop spare $FM_SPARE_MIB)
	dust_over "$main" dust || { fail "create dust"; return; }
	dust_over "$spare" sdust || { fail "create spare dust"; return; }
	fm_create /dev/mapper/dust /dev/mapper/sdust || { fail "create"; return; }
	fm_write 2048 0 || fail "initial write"
	fm_bad dust 255 100 200
	fm_write 8 96 || fail "relocating write at 96"
	fm_write 8 200 || fail "relocating write at 200"
	p100=$(fm_spare_sector r 100) p200=$(fm_spare_sector r 200)
	[ -n "$p100" ] && [ -n "$p200" ] || { fail "no entries for 100 and 200: $(fm_list r)"; return; }
	# On the spare, 100's unit now fails reads until written; 200's fails reads and writes.
	fm_bad sdust 0 "$p100"
	fm_bad sdust 255 "$p200"
	# Main holds stale data for both, so a read must fail rather than fall back to it.
	fm_read_fails "remapped unit whose spare unit fails reads" 100
	fm_read_fails "remapped unit whose spare unit fails reads and writes" 200
	fm_status r "after the failed reads" remapped=2 pending=0 spare_used=2 read_errors=2 write_errors=0 \
		state=ok
	fm_check "units before 100" 0 100
	fm_check "units after 200" 201 $((FM_LEN - 201))
	# A write heals 100 in place (the spare drive rewrites the sector) and moves 200 to a new spare unit;
	# the old one is retired.
	fm_write 1 100 || fail "write to 100"
	fm_write 1 200 || fail "write to 200"
	assert_eq "100 keeps its spare unit" "$p100" "$(fm_spare_sector r 100)"
	n200=$(fm_spare_sector r 200)
	[ -n "$n200" ] && [ "$n200" != "$p200" ] || fail "200 did not move off its failing spare unit ($p200 -> $n200)"
	fm_status r "after the writes" remapped=2 pending=0 spare_used=3 write_errors=0 state=ok
	fm_check "after the writes"
	dmsetup remove r
	fm_create /dev/mapper/dust /dev/mapper/sdust || { fail "recreate"; return; }
	assert_eq "200's new spare unit after recreate" "$n200" "$(fm_spare_sector r 200)"
	# Retiring lasts while the table is loaded: from the metadata, only the two mapped units are in use.
	fm_status r "after recreate" remapped=2 pending=0 spare_used=2 state=ok
	fm_check "after recreate"
	fm_end
}

test_fault_spare_vanishes_under_io() {
	local main spare reader
	fm_begin spare-vanishes
	main=$(make_loop main $FM_MIB) spare=$(make_loop spare $FM_SPARE_MIB)
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create slin --table "0 $FM_SPARE_LEN linear $spare 0" || { fail "create slin"; return; }
	fm_create /dev/mapper/dust /dev/mapper/slin || { fail "create"; return; }
	fm_write 2048 0 || fail "initial write"
	fm_bad dust 255 100
	fm_write 8 96 || fail "relocating write"
	# A reader of unremapped units keeps going while the spare turns into an error device, and makes one
	# whole pass after the swap. (No polling: every process costs about a second in the guest.)
	dd if="$WORK/exp.img" of="$WORK/exp-1024" bs=512 skip=1024 count=1024 2>/dev/null
	rm -f "$WORK/swapped"
	: >"$WORK/reads"
	(
		after=
		while [ -z "$after" ]; do
			[ ! -f "$WORK/swapped" ] || after=1
			if dd if=/dev/mapper/r iflag=direct,skip_bytes bs=64k skip=$((1024 * 512)) count=8 2>/dev/null |
				cmp -s - "$WORK/exp-1024"; then
				echo ok >>"$WORK/reads"
			else
				echo bad >>"$WORK/reads"
			fi
		done
	) &
	reader=$!
	dmsetup load slin --table "0 $FM_SPARE_LEN error" && dmsetup resume slin || fail "swap the spare for dm-error"
	: >"$WORK/swapped"
	fm_fault
	wait "$reader"
	assert_eq "reads of unremapped units while the spare vanished" "" "$(grep -v '^ok$' "$WORK/reads")"
	# The remapped unit's only copy is gone: its read fails, nothing else does.
	fm_read_fails "remapped unit with the spare gone" 100
	fm_check "units before 100" 0 100
	fm_check "units after 100" 101 $((FM_LEN - 101))
	fm_write 8 1024 || fail "write to a good unit of main with the spare gone"
	dmesg_mark
	fm_write_fails "write to a remapped unit with the spare gone" 1 100
	assert_contains "kernel log" "sector 100: write lost: every spare unit tried failed" "$(dmesg_new)"
	# No commit was needed yet, so the metadata is not known to be bad; the three spare units tried are
	# retired.
	fm_status r "before any commit" remapped=1 pending=0 spare_used=4 read_errors=1 write_errors=1 \
		metadata=ok state=ok
	# A read error on main needs a commit (pending): it fails, and the status says so.
	fm_bad dust 0 300
	fm_read_fails "unreadable unit of main" 300
	fm_status r "after the failed commit" remapped=1 pending=0 metadata=failed state=failed
	# The spare comes back; the target trusts its metadata again only after a reload.
	dmsetup load slin --table "0 $FM_SPARE_LEN linear $spare 0" && dmsetup resume slin || fail "restore slin"
	dmsetup message dust 0 clearbadblocks >/dev/null
	# Unit 100 reads the data acknowledged before the spare vanished (every later write to it failed on
	# every device), 300 main's data.
	fm_check "spare back, before the reload"
	fm_reload /dev/mapper/dust /dev/mapper/slin || fail "reload"
	fm_status r "after the reload" remapped=1 pending=0 spare_used=1 metadata=ok state=ok
	assert_eq "entries after the reload" "100 active" "$(fm_list r)"
	fm_check "after the reload"
	fm_end
}

# fm_split_spare SPARE POOL_START MD_TARGET: a table for SPARE whose metadata region (sectors 0..POOL_START)
# is MD_TARGET ("linear" or "error") and whose pool is SPARE's pool.
fm_split_spare() {
	if [ "$3" = error ]; then
		echo "0 $2 error"
	else
		echo "0 $2 linear $1 0"
	fi
	echo "$2 $((FM_SPARE_LEN - $2)) linear $1 $2"
}

test_fault_metadata_region_fails_writes_and_reloads() {
	local main spare pool
	fm_begin metadata-region-fails
	main=$(make_loop main $FM_MIB) spare=$(make_loop spare $FM_SPARE_MIB)
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create slin --table "0 $FM_SPARE_LEN linear $spare 0" || { fail "create slin"; return; }
	fm_create /dev/mapper/dust /dev/mapper/slin || { fail "create"; return; }
	fm_write 2048 0 || fail "initial write"
	fm_bad dust 255 100
	fm_write 8 96 || fail "relocating write"
	# The first spare unit handed out is the first of the pool.
	pool=$(fm_spare_sector r 100)
	[ -n "$pool" ] || { fail "no entry for 100: $(fm_list r)"; return; }
	# The metadata region fails every I/O; the pool still works. (dm-error takes no flushes, so flushes of
	# the spare still succeed: it is the journal write itself that fails.)
	fm_split_spare "$spare" "$pool" error | dmsetup load slin && dmsetup resume slin ||
		fail "swap the metadata region for dm-error"
	fm_fault
	fm_bad dust 255 200
	fm_write_fails "write whose relocation cannot be committed" 1 200
	# The staged spare unit was given back and nothing was published.
	fm_status r "after the failed commit" remapped=1 pending=0 spare_used=1 write_errors=1 metadata=failed \
		state=failed
	# What needs no commit still works: a remapped unit's write goes to its spare unit.
	fm_write 1 100 || fail "write to the remapped unit"
	# A table reload now cannot read the metadata: refused, and the old table stays live.
	dmesg_mark
	dmsetup reload r --table "0 $FM_LEN $TARGET /dev/mapper/dust /dev/mapper/slin" 2>/dev/null &&
		fail "a table was loaded over an unreadable metadata region"
	assert_contains "reload refused" "$TARGET: metadata read failed" "$(dmesg_new)"
	fm_status r "old table after the refused reload" remapped=1 metadata=failed state=failed
	# The metadata region is back: a reload loads what was durable, which is all that was acknowledged.
	dmsetup load slin --table "0 $FM_SPARE_LEN linear $spare 0" && dmsetup resume slin || fail "restore slin"
	fm_reload /dev/mapper/dust /dev/mapper/slin || fail "reload"
	fm_status r "after the reload" remapped=1 pending=0 spare_used=1 metadata=ok state=ok
	assert_eq "entries after the reload" "100 active" "$(fm_list r)"
	# Unit 200's write was refused by main every time: main still holds the acknowledged data.
	dmsetup message dust 0 clearbadblocks >/dev/null
	fm_check "after the reload"
	fm_end
}

test_fault_transient_outage_of_main_writes() {
	local main spare s out
	fm_begin main-write-outage
	main=$(make_loop main $FM_MIB) spare=$(make_loop spare $FM_SPARE_MIB)
	dmsetup create mlin --table "0 $FM_LEN linear $main 0" || { fail "create mlin"; return; }
	fm_create /dev/mapper/mlin "$spare" || { fail "create"; return; }
	fm_write 2048 0 || fail "initial write"
	dd if="$WORK/exp.img" of="$WORK/old" bs=512 skip=1000 count=4 2>/dev/null
	# Main fails every write for a while (dm-flakey, up 0 s and down 1 s: always down; reads still work).
	dmsetup load mlin --table "0 $FM_LEN flakey $main 0 0 1 1 error_writes" && dmsetup resume mlin ||
		fail "swap main for dm-flakey"
	fm_fault
	# The target cannot tell an outage from bad sectors: each unit written is retried, then relocated.
	fm_write 4 1000 || fail "write during the outage"
	fm_status r "during the outage" remapped=4 pending=0 spare_used=4 write_errors=0 state=ok
	fm_check "during the outage"
	dmsetup load mlin --table "0 $FM_LEN linear $main 0" && dmsetup resume mlin || fail "restore mlin"
	# Main works again but the units stay on the spare (main still holds their old data) until moved back.
	same_bytes "main's copy of the relocated units" "$WORK/old" "$main" 1000
	dmsetup suspend r || fail "suspend"
	for s in 1000 1001 1002 1003; do
		out=$(dmsetup message r 0 unremap $s)
		case "$out" in "unremapped $s from spare 0 sector "*) ;; *) fail "unremap $s: '$out'" ;; esac
	done
	dmsetup resume r || fail "resume"
	fm_status r "after the unremaps" remapped=0 pending=0 spare_used=0 state=ok
	dd if="$WORK/exp.img" of="$WORK/new" bs=512 skip=1000 count=4 2>/dev/null
	same_bytes "main holds the data again" "$WORK/new" "$main" 1000
	dmsetup remove r
	fm_create /dev/mapper/mlin "$spare" || { fail "recreate"; return; }
	fm_status r "after recreate" remapped=0 pending=0 spare_used=0
	fm_check "after recreate"
	fm_end
}

# A relocation between `dmsetup load` and `dmsetup resume` (the race this file found first) is covered by
# t-spares.sh: test_a_table_loaded_before_the_live_one_committed_is_not_resumed.
