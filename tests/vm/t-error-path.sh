# The error path: writes that fail on main are relocated to the spare; reads that fail return the error and
# leave the unit pending until a write heals it. Faults come from dm-dust under the main (or spare) device.

# bad_blocks NAME COUNT BLOCK...: BLOCK fails reads, and COUNT writes (0: a write clears it, as a drive would).
bad_blocks() {
	local name=$1 count=$2 b
	shift 2
	for b in "$@"; do
		if [ "$count" = 0 ]; then
			dmsetup message "$name" 0 addbadblock "$b" >/dev/null
		else
			dmsetup message "$name" 0 addbadblock "$b" "$count" >/dev/null
		fi
	done
}

# list_units DEV: the sectors and states of the entries, one "sector state" per line.
list_units() { dmsetup message "$1" 0 list | awk '{print $1, $4}'; }

test_write_errors_are_relocated_and_persist() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	bad_blocks dust 255 100 101 1500
	pattern "$WORK/b" 1024
	write_at "$WORK/b" /dev/mapper/r 0 || fail "write over bad blocks failed"
	assert_eq "remapped" 3 "$(status_field r remapped)"
	assert_eq "pending" 0 "$(status_field r pending)"
	assert_eq "write_errors returned" 0 "$(status_field r write_errors)"
	assert_eq "state" ok "$(status_field r state)"
	assert_eq "counted as automatic remaps" 3 "$(dmsetup message r 0 stats | sed -n 's/^remaps_auto=//p')"
	[ "$(status_field r device_errors)" -ge 3 ] || fail "device_errors: $(status_field r device_errors)"
	assert_eq "list" "100 active
101 active
1500 active" "$(list_units r)"
	same_bytes "data through dm" "$WORK/b" /dev/mapper/r 0
	# Main still fails those sectors: the data really comes from the spare.
	dd if=/dev/mapper/dust of=/dev/null iflag=direct bs=512 skip=100 count=1 2>/dev/null &&
		fail "dust no longer fails sector 100"
	# Later writes to a relocated unit go to its spare unit, not to main.
	pattern "$WORK/c" 4
	write_at "$WORK/c" /dev/mapper/r 1496 || fail "second write"
	dd if="$WORK/c" of="$WORK/b" bs=512 seek=1496 conv=notrunc 2>/dev/null
	same_bytes "data after second write" "$WORK/b" /dev/mapper/r 0
	assert_eq "no new remap" 3 "$(status_field r remapped)"
	# Reload with the same table, then remove and create: not one remap is lost.
	dmsetup reload r --table "0 $len $TARGET /dev/mapper/dust $spare" && dmsetup suspend r && dmsetup resume r ||
		fail "reload"
	assert_eq "remapped after reload" 3 "$(status_field r remapped)"
	same_bytes "data after reload" "$WORK/b" /dev/mapper/r 0
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" 3 "$(status_field r remapped)"
	same_bytes "data after recreate" "$WORK/b" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove dust
}

test_retries_zero_relocates_on_first_failure_and_transient_errors_stay_on_main() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	# Sector 40 fails two writes: the bio, and the unit's first write on its own; the default retry succeeds,
	# so the unit stays on main.
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	bad_blocks dust 2 40
	pattern "$WORK/a" 8
	write_at "$WORK/a" /dev/mapper/r 40 || fail "write with a transient error"
	assert_eq "transient: remapped" 0 "$(status_field r remapped)"
	same_bytes "transient: data on main" "$WORK/a" /dev/mapper/dust 40
	dmsetup remove r
	# retries 0: the first failure relocates.
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare 2 retries 0" || { fail "create retries 0"; return; }
	assert_eq "table shows the option" "2 retries 0" "$(dmsetup table r | cut -d' ' -f6-)"
	bad_blocks dust 2 80
	write_at "$WORK/a" /dev/mapper/r 80 || fail "write with retries 0"
	assert_eq "retries 0: only the failing unit is remapped" "80 active" "$(list_units r)"
	same_bytes "retries 0: data" "$WORK/a" /dev/mapper/r 80
	dmsetup remove r
	dmsetup remove dust
}

test_read_errors_go_pending_and_a_write_heals_them() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	bad_blocks dust 0 200 201
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=64k skip=1 count=1 2>/dev/null &&
		fail "a read over bad sectors succeeded"
	assert_eq "pending" 2 "$(status_field r pending)"
	assert_eq "remapped" 0 "$(status_field r remapped)"
	[ "$(status_field r read_errors)" -ge 1 ] || fail "read_errors: $(status_field r read_errors)"
	assert_eq "list" "200 pending
201 pending" "$(list_units r)"
	# The units around the bad ones still read.
	dd if="$WORK/a" of="$WORK/a192" bs=512 skip=192 count=8 2>/dev/null
	same_bytes "good units next to bad ones" "$WORK/a192" /dev/mapper/r 192
	# Pending survives a recreate.
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	assert_eq "pending after recreate" 2 "$(status_field r pending)"
	# A write over the pending units (and good ones around them) heals them onto the spare.
	pattern "$WORK/c" 4
	write_at "$WORK/c" /dev/mapper/r 198 || fail "healing write"
	assert_eq "pending after the write" 0 "$(status_field r pending)"
	assert_eq "remapped after the write" 2 "$(status_field r remapped)"
	dd if="$WORK/c" of="$WORK/a" bs=512 seek=198 conv=notrunc 2>/dev/null
	same_bytes "healed data" "$WORK/a" /dev/mapper/r 0
	# dust never saw the write: sector 200 still fails on main, yet reads through dm return the new data.
	dd if=/dev/mapper/dust of=/dev/null iflag=direct bs=512 skip=200 count=1 2>/dev/null &&
		fail "dust no longer fails sector 200"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate 2"; return; }
	same_bytes "healed data after recreate" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove dust
}

test_failing_spare_unit_is_retired() {
	local main spare len first
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dust_over "$spare" sdust || { fail "create spare dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust /dev/mapper/sdust" || { fail "create"; return; }
	# The first spare unit is the start of the pool: find it with a remap, then make it fail.
	pattern "$WORK/a" 4
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	bad_blocks dust 255 10
	write_at "$WORK/a" /dev/mapper/r 8 || fail "first relocation"
	first=$(dmsetup message r 0 list | awk '{print $3}')
	bad_blocks sdust 255 $((first + 1))
	bad_blocks dust 255 11
	write_at "$WORK/a" /dev/mapper/r 8 || fail "relocation over a failing spare unit"
	assert_eq "remapped" 2 "$(status_field r remapped)"
	assert_eq "spare unit skipped" "$((first + 2))" "$(dmsetup message r 0 list 11 1 | awk '{print $3}')"
	assert_eq "used counts the retired unit" 3 "$(status_field r spare_used)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 8
	dmsetup remove r
	dmsetup remove sdust
	dmsetup remove dust
}

# A bio's relocated units are written to the spare together before their commit (src/spare_writes.rs).
test_failed_spare_writes_of_one_bio_move_on_or_fail_alone() {
	local main spare len first
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dust_over "$spare" sdust || { fail "create spare dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust /dev/mapper/sdust 2 retries 0" ||
		{ fail "create"; return; }
	# The pool hands out units in order from its start: find the start with one relocation.
	pattern "$WORK/a" 1
	bad_blocks dust 255 8
	write_at "$WORK/a" /dev/mapper/r 8 || fail "first relocation"
	first=$(dmsetup message r 0 list | awk '{print $3}')
	# One 64 KiB write relocates 16 units (sectors 64, 66 .. 94) to spare units first+1 .. first+16, written
	# together. Two of those writes fail: each unit is retired and its data goes to the next free one.
	bad_blocks sdust 255 $((first + 3)) $((first + 9))
	bad_blocks dust 255 $(seq 64 2 94)
	pattern "$WORK/b" 64
	write_at "$WORK/b" /dev/mapper/r 64 || fail "write whose spare writes partly failed"
	assert_eq "remapped" 17 "$(status_field r remapped)"
	assert_eq "spare_used counts the two retired units" 19 "$(status_field r spare_used)"
	assert_eq "write_errors returned" 0 "$(status_field r write_errors)"
	assert_eq "sector 68 moved on" $((first + 17)) "$(dmsetup message r 0 list 68 1 | awk '{print $3}')"
	assert_eq "sector 80 moved on" $((first + 18)) "$(dmsetup message r 0 list 80 1 | awk '{print $3}')"
	assert_eq "sector 70 where written" $((first + 4)) "$(dmsetup message r 0 list 70 1 | awk '{print $3}')"
	same_bytes "data" "$WORK/b" /dev/mapper/r 64
	# Sector 258's unit (spare unit first+20) and the two fresh units tried after it (first+35, first+36) all
	# fail: that write is lost and the bio fails; the 15 other units of the bio are relocated and kept.
	bad_blocks sdust 255 $((first + 20)) $((first + 35)) $((first + 36))
	bad_blocks dust 255 $(seq 256 2 286)
	pattern "$WORK/c" 64
	write_at "$WORK/c" /dev/mapper/r 256 && fail "a write with a unit no spare unit took succeeded"
	assert_eq "remapped" 32 "$(status_field r remapped)"
	assert_eq "spare_used" 37 "$(status_field r spare_used)"
	assert_eq "no entry for the lost unit" "256 260" "$(dmsetup message r 0 list 256 2 | awk '{print $1}' | xargs)"
	[ "$(status_field r write_errors)" -ge 1 ] || fail "write_errors: $(status_field r write_errors)"
	# The lost sector reads an error (main still fails it), never old or invented data.
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=512 skip=258 count=1 2>/dev/null &&
		fail "sector 258 read although its write was lost"
	head -c 1024 "$WORK/c" >"$WORK/c1"
	tail -c +$((3 * 512 + 1)) "$WORK/c" >"$WORK/c2"
	same_bytes "before the lost unit" "$WORK/c1" /dev/mapper/r 256
	same_bytes "after the lost unit" "$WORK/c2" /dev/mapper/r 259
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust /dev/mapper/sdust" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" 32 "$(status_field r remapped)"
	same_bytes "data after recreate" "$WORK/b" /dev/mapper/r 64
	same_bytes "before the lost unit after recreate" "$WORK/c1" /dev/mapper/r 256
	same_bytes "after the lost unit after recreate" "$WORK/c2" /dev/mapper/r 259
	dmsetup remove r
	dmsetup remove sdust
	dmsetup remove dust
}

# Bios of one group whose relocations partly find no spare unit that takes them: only those bios fail, and
# every write that succeeded is on the spare (src/spare_writes.rs tracks the lost units by bio).
test_concurrent_writes_lose_only_the_units_no_spare_unit_took() {
	local main spare len first w b writers=6 bios=4 good
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare 2 retries 0" || { fail "create"; return; }
	# One relocation takes unit 0 of the pool and tells where the pool starts.
	pattern "$WORK/a" 4
	bad_blocks dust 255 4000
	write_at "$WORK/a" /dev/mapper/r 4000 || fail "first relocation"
	first=$(dmsetup message r 0 list | awk '{print $3}')
	dmsetup remove r
	# Units 1..9 take writes, every unit from 10 on fails them. The pool hands out its lowest free unit, so
	# the first 9 of the 24 relocations below succeed whichever bios they belong to; each of the others is
	# tried on 3 failing units and lost.
	error_range sbad "$spare" $((first + 10)) 1000 || { fail "create sbad"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust /dev/mapper/sbad 2 retries 0" ||
		{ fail "recreate over sbad"; return; }
	for ((b = 0; b < writers * bios; b++)); do
		bad_blocks dust 255 $((b * 8 + b % 8))
	done
	pattern "$WORK/c" $((writers * bios * 4))
	rm -f "$WORK"/ok.*
	for ((w = 0; w < writers; w++)); do
		for ((b = w * bios; b < (w + 1) * bios; b++)); do
			dd if="$WORK/c" of=/dev/mapper/r bs=4096 skip=$b seek=$b count=1 oflag=direct conv=notrunc \
				2>/dev/null && echo $b >>"$WORK/ok.$w"
		done &
	done
	wait
	good=$(cat "$WORK"/ok.* 2>/dev/null | sort -n | xargs)
	assert_eq "writes that found a spare unit" 9 "$(echo "$good" | wc -w)"
	assert_eq "remapped" 10 "$(status_field r remapped)"
	check_blocks() {
		for ((b = 0; b < writers * bios; b++)); do
			if [[ " $good " == *" $b "* ]]; then
				dd if="$WORK/c" of="$WORK/blk" bs=4096 skip=$b count=1 2>/dev/null
				same_bytes "$1: block $b, written" "$WORK/blk" /dev/mapper/r $((b * 8))
			elif dd if=/dev/mapper/r of=/dev/null iflag=direct bs=4096 skip=$b count=1 2>/dev/null; then
				fail "$1: block $b reads although its write failed"
			fi
		done
	}
	check_blocks "live"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust /dev/mapper/sbad" || { fail "reload"; return; }
	assert_eq "remapped after reload" 10 "$(status_field r remapped)"
	check_blocks "after reload"
	dmsetup remove r
	dmsetup remove sbad
	dmsetup remove dust
}

test_spare_exhaustion_fails_the_write_and_says_so() {
	local main spare len b
	main=$(make_loop main 32)
	# The smallest metadata region is 2 MiB; 4 KiB more is a pool of 8 units.
	truncate -s 2052K "$WORK/spare.img"
	spare=$(losetup --find --show "$WORK/spare.img")
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	assert_eq "spare_total" 8 "$(status_field r spare_total)"
	pattern "$WORK/a" 8
	bad_blocks dust 255 $(seq 1000 1009)
	write_at "$WORK/a" /dev/mapper/r 1000 && fail "write with 10 bad units and 8 spare units succeeded"
	assert_eq "remapped" 8 "$(status_field r remapped)"
	assert_eq "spare_used" 8 "$(status_field r spare_used)"
	assert_eq "state" spare_exhausted "$(status_field r state)"
	[ "$(status_field r write_errors)" -ge 1 ] || fail "write_errors: $(status_field r write_errors)"
	# What was relocated reads back; the two units that found no spare unit report errors, not old data.
	head -c 4096 "$WORK/a" >"$WORK/a8"
	same_bytes "relocated units" "$WORK/a8" /dev/mapper/r 1000
	for b in 1008 1009; do
		dd if=/dev/mapper/r of=/dev/null iflag=direct bs=512 skip=$b count=1 2>/dev/null &&
			fail "sector $b read although its write was lost"
	done
	dmsetup remove r
	dmsetup remove dust
}

test_clear_pending_forgets_a_failed_read() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	bad_blocks dust 0 200
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=512 skip=200 count=1 2>/dev/null && fail "bad read succeeded"
	assert_eq "pending" 1 "$(status_field r pending)"
	dmesg_mark
	dmsetup message r 0 clear_pending 201 2>/dev/null && fail "clear_pending of a unit without an entry accepted"
	assert_contains "refusal" "the unit is not pending" "$(dmesg_new)"
	# Live: nothing is copied. The sector recovered (the admin rewrote it below us, say).
	dmsetup message dust 0 removebadblock 200 >/dev/null
	dmsetup message r 0 clear_pending 200 || fail "clear_pending refused"
	assert_eq "pending after clear" 0 "$(status_field r pending)"
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=512 skip=200 count=1 2>/dev/null || fail "read after clear"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	assert_eq "pending after recreate" 0 "$(status_field r pending)"
	assert_eq "no entries" "" "$(dmsetup message r 0 list)"
	dmsetup remove r
	dmsetup remove dust
}

test_units_of_one_bio_share_one_metadata_commit() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare 2 retries 0" || { fail "create"; return; }
	# Every other sector of one 64 KiB write fails: 16 relocations, one flush, one journal commit.
	bad_blocks dust 255 $(seq 64 2 94)
	pattern "$WORK/a" 64
	write_at "$WORK/a" /dev/mapper/r 64 || fail "write"
	assert_eq "remapped" 16 "$(status_field r remapped)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 64
	dmsetup remove r
	blockdev --flushbufs "$spare"
	assert_eq "journal commits" "last_seq=1" \
		"$("$DMR_TOP/target/debug/md-fixture" info "$spare" | tr ' ' '\n' | grep '^last_seq=')"
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	same_bytes "data after recreate" "$WORK/a" /dev/mapper/r 64
	dmsetup remove r
	dmsetup remove dust
}

test_concurrent_failing_writes_share_metadata_commits() {
	local main spare len w b writers=6 bios=4
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	# Writer w owns 4 KiB blocks w*bios .. w*bios+bios-1; one sector of every block fails all writes, so each
	# of the writers' 4 KiB bios fails on main and moves a unit.
	for ((b = 0; b < writers * bios; b++)); do
		bad_blocks dust 255 $((b * 8 + b % 8))
	done
	pattern "$WORK/a" $((writers * bios * 4))
	dmsetup message r 0 clear_stats
	for ((w = 0; w < writers; w++)); do
		dd if="$WORK/a" of=/dev/mapper/r bs=4096 skip=$((w * bios)) seek=$((w * bios)) count=$bios \
			oflag=direct conv=notrunc 2>"$WORK/dd.$w" &
	done
	wait
	for ((w = 0; w < writers; w++)); do
		grep -q "$bios+0 records out" "$WORK/dd.$w" || fail "writer $w: $(cat "$WORK/dd.$w")"
	done
	local moved=$((writers * bios)) commits
	commits=$(dmsetup message r 0 stats | sed -n 's/^md_commits=//p')
	echo "    $moved bios moved a unit each, in $commits metadata commits"
	assert_eq "remapped" $moved "$(status_field r remapped)"
	assert_eq "write_errors returned" 0 "$(status_field r write_errors)"
	# One commit per bio would be $moved: the worker commits the bios that waited together.
	[ -n "$commits" ] && [ "$commits" -ge 1 ] && [ "$commits" -lt $moved ] ||
		fail "md_commits=$commits: not fewer commits than the $moved bios that moved units"
	same_bytes "data through dm" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" $moved "$(status_field r remapped)"
	same_bytes "data after recreate" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove dust
}
