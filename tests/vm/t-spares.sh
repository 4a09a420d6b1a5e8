# Several spare devices: allocation fills the first spare then moves to the next, every spare holds the whole
# table (the table may name them in any order), a spare joins by table reload, a missing or foreign spare is
# refused, and no spare unit is ever handed out twice.

# spare_line DEV INDEX: the `spares` message line of member INDEX, without the device name.
spare_line() {
	local i dev used total state rest
	while read -r i dev used total state rest; do
		[ "$i" != "$2" ] || echo "$used $total $state"
	done < <(dmsetup message "$1" 0 spares)
}

# spare_of DEV INDEX: the major:minor the `spares` message gives for member INDEX.
spare_of() { dmsetup message "$1" 0 spares | awk -v i="$2" '$1 == i {print $2}'; }

majmin() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }

# no_unit_twice DEV: every active entry of the `list` message names a different spare unit.
no_unit_twice() {
	local dups
	dups=$(dmsetup message "$1" 0 list | awk '$4 == "active" {print $2, $3}' | sort | uniq -d)
	[ -z "$dups" ] || fail "spare units handed out twice: $dups"
}

# 4 KiB units keep the unit counts small: each 3 MiB spare holds its metadata region (sized for the units of
# both spares, 2 MiB) and a pool of 256 units.
test_two_spares_fill_in_order_and_survive_reload_and_reorder() {
	local main s0 s1 len first=4096 n=3072 t0 t1 out
	main=$(make_loop main 16 4096) s0=$(make_loop s0 3 4096) s1=$(make_loop s1 3 4096)
	len=$(sectors "$main")
	error_range mainx "$main" $first $n || { fail "create the failing main"; return; }
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s0 2 spare $s1" || { fail "create"; return; }
	assert_contains "formatted as member 0" "as member 0 of 2" "$(dmesg_new)"
	assert_eq "spares" 2 "$(status_field r spares)"
	assert_eq "table line" "$(majmin /dev/mapper/mainx) $(majmin "$s0") 2 spare $(majmin "$s1")" \
		"$(dmsetup table r | cut -d' ' -f4-)"
	t0=$(spare_line r 0 | sed -n 's/.*total=\([0-9]*\).*/\1/p')
	t1=$(spare_line r 1 | sed -n 's/.*total=\([0-9]*\).*/\1/p')
	[ "${t0:-0}" -gt 100 ] && [ "$t0" -lt $((n / 8)) ] && [ $((t0 + ${t1:-0})) -ge $((n / 8)) ] ||
		fail "pools of $t0 and $t1 units: the test needs 100 < spare 0 < $((n / 8)) <= both"
	assert_eq "spare_total" $((t0 + t1)) "$(status_field r spare_total)"
	assert_eq "spare 0 device" "$(majmin "$s0")" "$(spare_of r 0)"
	# n/8 units fail on main: spare 0 fills up, the rest goes to spare 1.
	pattern "$WORK/a" $((n / 2))
	write_at "$WORK/a" /dev/mapper/r $first || fail "write over the failing range"
	assert_eq "remapped" $((n / 8)) "$(status_field r remapped)"
	assert_eq "state" ok "$(status_field r state)"
	assert_eq "spare 0 full" "used=$t0 total=$t0 state=active" "$(spare_line r 0)"
	assert_eq "spare 1 has the rest" "used=$((n / 8 - t0)) total=$t1 state=active" "$(spare_line r 1)"
	same_bytes "data through dm" "$WORK/a" /dev/mapper/r $first
	no_unit_twice r
	# Reload: same table, same state.
	dmsetup reload r --table "0 $len $TARGET /dev/mapper/mainx $s0 2 spare $s1" && dmsetup suspend r &&
		dmsetup resume r || fail "reload"
	assert_eq "spare 1 after reload" "used=$((n / 8 - t0)) total=$t1 state=active" "$(spare_line r 1)"
	same_bytes "data after reload" "$WORK/a" /dev/mapper/r $first
	# The spares in the other order: each knows its member index.
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s1 2 spare $s0" || { fail "create reordered"; return; }
	assert_eq "spare 0 is still s0" "$(majmin "$s0")" "$(spare_of r 0)"
	assert_eq "spare 0 still full" "used=$t0 total=$t0 state=active" "$(spare_line r 0)"
	assert_eq "remapped after reorder" $((n / 8)) "$(status_field r remapped)"
	same_bytes "data after reorder" "$WORK/a" /dev/mapper/r $first
	no_unit_twice r
	# Each spare holds the whole table: the list is the same whichever spare was loaded.
	out=$(dmsetup message r 0 list | md5sum)
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s0 2 spare $s1" || { fail "recreate"; return; }
	assert_eq "the same table" "$out" "$(dmsetup message r 0 list | md5sum)"
	dmsetup remove r
	dmsetup remove mainx
}

test_exhausting_every_spare_fails_new_writes_and_keeps_old_data() {
	local main s0 s1 len first=4096 n=14336 total
	main=$(make_loop main 16 4096) s0=$(make_loop s0 3 4096) s1=$(make_loop s1 3 4096)
	len=$(sectors "$main")
	error_range mainx "$main" $first $n || { fail "create the failing main"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s0 2 spare $s1" || { fail "create"; return; }
	total=$(status_field r spare_total)
	[ $((total * 8)) -lt $n ] || fail "the failing range ($n sectors) must outgrow both pools ($total units)"
	pattern "$WORK/a" $((total * 4))
	write_at "$WORK/a" /dev/mapper/r $first || fail "write that fits both pools"
	assert_eq "state while it fits" ok "$(status_field r state)"
	pattern "$WORK/b" 4
	write_at "$WORK/b" /dev/mapper/r $((first + total * 8)) && fail "a write with no spare unit left succeeded"
	assert_eq "state" spare_exhausted "$(status_field r state)"
	assert_eq "remapped" "$total" "$(status_field r remapped)"
	assert_eq "spare_used" "$total" "$(status_field r spare_used)"
	same_bytes "data remapped before exhaustion" "$WORK/a" /dev/mapper/r $first
	no_unit_twice r
	dmsetup remove r
	dmsetup remove mainx
}

test_a_spare_joins_by_reload_under_io() {
	local main s0 s1 len fio_pid
	main=$(make_loop main 32) s0=$(make_loop s0 16) s1=$(make_loop s1 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $s0" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0
	remap_msg r 8 >/dev/null && remap_msg r 900 >/dev/null || { fail "remap"; return; }
	# Writes with verification run on the upper half while the table gains a spare.
	fio --name=hotadd --filename=/dev/mapper/r --direct=1 --rw=randwrite --bs=4k --offset=8m --size=1m \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --loops=1 --ioengine=psync >"$WORK/fio.log" 2>&1 &
	fio_pid=$!
	sleep 1
	dmesg_mark
	dmsetup reload r --table "0 $len $TARGET $main $s0 2 spare $s1" && dmsetup suspend r && dmsetup resume r ||
		fail "reload with a second spare"
	wait $fio_pid || fail "fio with verification across the reload: $(tail -5 "$WORK/fio.log")"
	assert_contains "the new spare was formatted" "as member 1 of 2" "$(dmesg_new)"
	assert_contains "the first spare learnt of it" "brought up to date" "$(dmesg_new)"
	assert_eq "spares" 2 "$(status_field r spares)"
	assert_eq "remaps kept" 2 "$(status_field r remapped)"
	assert_eq "spare 1 empty" "used=0" "$(spare_line r 1 | cut -d' ' -f1)"
	same_bytes "data below the fio range" "$WORK/a" /dev/mapper/r 0
	# The setup now needs both spares: a table without the new one is refused, and changes nothing.
	dmsetup remove r
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $s0" 2>/dev/null && fail "a table missing a spare was accepted"
	assert_contains "missing spare" "A spare of this setup is missing from the table" "$(dmesg_new)"
	dmsetup create r --table "0 $len $TARGET $main $s1 2 spare $s0" || { fail "create with both"; return; }
	assert_eq "remaps after recreate" 2 "$(status_field r remapped)"
	same_bytes "data after recreate" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
}

test_spares_of_two_setups_and_main_id_are_never_mixed() {
	local m1 m2 a b c before len
	m1=$(make_loop m1 16) m2=$(make_loop m2 16) a=$(make_loop a 8) b=$(make_loop b 8) c=$(make_loop c 8)
	len=$(sectors "$m1")
	dmsetup create r1 --table "0 $len $TARGET $m1 $a 2 main_id serial:ONE" || { fail "create r1"; return; }
	dmsetup create r2 --table "0 $len $TARGET $m2 $b 2 main_id serial:TWO" || { fail "create r2"; return; }
	assert_eq "main_id in the table line" "2 main_id serial:ONE" "$(dmsetup table r1 | cut -d' ' -f6-)"
	dmsetup remove r1
	dmsetup remove r2
	before=$(md5sum <"$a")$(md5sum <"$b")$(md5sum <"$c")
	dmesg_mark
	# A spare of setup 2 next to a spare of setup 1.
	dmsetup create x --table "0 $len $TARGET $m1 $a 2 spare $b" 2>/dev/null && fail "spares of two setups accepted"
	assert_contains "other setup" "spare belongs to another dm-remap setup" "$(dmesg_new)"
	# The main of setup 2 named with setup 1's identifier, and a spare named twice.
	dmsetup create x --table "0 $len $TARGET $m2 $b 2 main_id serial:ONE" 2>/dev/null && fail "wrong main_id accepted"
	assert_contains "main_id" "main device identifier differs from the recorded one" "$(dmesg_new)"
	dmsetup create x --table "0 $len $TARGET $m1 $a 2 spare $a" 2>/dev/null && fail "a spare named twice accepted"
	assert_contains "twice" "Spare device given twice" "$(dmesg_new)"
	# A blank spare offered with a foreign one is not formatted either.
	dmsetup create x --table "0 $len $TARGET $m1 $c 4 spare $b main_id serial:ONE" 2>/dev/null &&
		fail "blank + foreign accepted"
	assert_eq "nothing written by the refusals" "$before" "$(md5sum <"$a")$(md5sum <"$b")$(md5sum <"$c")"
	# Without main_id the identity is only the size, and the recorded identifier does not refuse it.
	dmsetup create x --table "0 $len $TARGET $m1 $a" || fail "a table without main_id"
	dmsetup remove x 2>/dev/null
}

# A table loaded (`dmsetup load`) while the live one still relocates units has a stale map: resuming it would
# hide those remaps and overwrite their journal records. The resume is refused; loading again works.
test_a_table_loaded_before_the_live_one_committed_is_not_resumed() {
	local main spare len table
	main=$(make_loop main 16) spare=$(make_loop spare 8)
	len=$(sectors "$main")
	error_range mainx "$main" 2048 8 || { fail "create the failing main"; return; }
	table="0 $len $TARGET /dev/mapper/mainx $spare"
	dmsetup create r --table "$table" || { fail "create"; return; }
	dmsetup load r --table "$table" || { fail "load the next table"; return; }
	pattern "$WORK/a" 4
	write_at "$WORK/a" /dev/mapper/r 2048 || fail "write relocated by the live table"
	assert_eq "remapped by the live table" 8 "$(status_field r remapped)"
	dmesg_mark
	dmsetup resume r 2>/dev/null && fail "a table loaded before the last commit was resumed"
	assert_contains "stale table refused" "metadata changed since the table was loaded; load the table again" \
		"$(dmesg_new)"
	dmsetup load r --table "$table" && dmsetup resume r || fail "load again and resume"
	assert_eq "remapped after the fresh load" 8 "$(status_field r remapped)"
	same_bytes "relocated data" "$WORK/a" /dev/mapper/r 2048
	dmsetup remove r
	dmsetup remove mainx
}

test_spare_sizes_are_checked_before_anything_is_formatted() {
	local main spare tiny len
	main=$(make_loop main 16) spare=$(make_loop spare 8) tiny=$(make_loop tiny 1)
	len=$(sectors "$main")
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $spare 2 min_spare_percent 105" 2>/dev/null &&
		fail "a spare below min_spare_percent was accepted"
	assert_contains "min_spare_percent" "Spare devices are smaller than min_spare_percent requires" "$(dmesg_new)"
	assert_contains "the size needed" "min_spare_percent 105 of the main device needs 34407" "$(dmesg_new)"
	dmsetup create r --table "0 $len $TARGET $main $tiny" 2>/dev/null && fail "a 1 MiB spare was accepted"
	assert_contains "too small" "sectors, needs at least" "$(dmesg_new)"
	[ "$(tr -d '\0' <"$spare" | head -c 1 | wc -c)" = 0 ] || fail "the refused spare was written"
	[ "$(tr -d '\0' <"$tiny" | head -c 1 | wc -c)" = 0 ] || fail "the tiny spare was written"
	dmsetup create r --table "0 $len $TARGET $main $spare 2 min_spare_percent 25" || fail "25% of the main"
	assert_eq "table line" "2 min_spare_percent 25" "$(dmsetup table r | cut -d' ' -f6-)"
	# The only spare, empty as it is, cannot be drained: nothing would be left to commit to.
	dmesg_mark
	dmsetup message r 0 drain 0 2>/dev/null && fail "the only spare was drained"
	assert_contains "only spare" "drain of spare 0 refused: no other active spare to take over from it" "$(dmesg_new)"
	assert_eq "still active" "used=0 state=active" "$(spare_line r 0 | cut -d' ' -f1,3)"
	dmsetup remove r
}

test_a_spare_on_the_main_disk_is_used_last() {
	local disk other len
	mkdir -p "$WORK"
	truncate -s 48M "$WORK/disk.img"
	disk=$(losetup --find --show --partscan "$WORK/disk.img") || { fail "losetup"; return; }
	other=$(make_loop other 16)
	# One disk, two partitions: main (32 MiB) and a spare (15 MiB) next to it.
	addpart "$disk" 1 2048 65536 && addpart "$disk" 2 67584 30720 || { fail "addpart"; return; }
	[ -b "${disk}p1" ] && [ -b "${disk}p2" ] || { fail "no partition nodes"; return; }
	len=$(sectors "${disk}p1")
	dmesg_mark
	# The partition is member 0, which fill-first would use first.
	dmsetup create r --table "0 $len $TARGET ${disk}p1 ${disk}p2 2 spare $other" || { fail "create"; return; }
	assert_contains "kernel log" "is on the main device's disk: used only when the others are full" "$(dmesg_new)"
	assert_eq "flags" "0 same_disk_as_main=1
1 same_disk_as_main=0" "$(dmsetup message r 0 spares | awk '{print $1, $6}')"
	pattern "$WORK/a" 64
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write"
	remap_msg r 8 >/dev/null || fail "remap"
	assert_eq "the other disk's spare took the unit" "used=1" "$(spare_line r 1 | cut -d' ' -f1)"
	assert_eq "the partition next to main did not" "used=0" "$(spare_line r 0 | cut -d' ' -f1)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
}

# `drain` moves a spare's units to the other spares while writes to them go on, then removes the spare from
# the setup: the next table may leave it out, and may not name it again. A unit whose copy on the spare cannot
# be read stays there (its reads fail, as before) until a write moves it.
test_a_drained_spare_is_removed_and_may_be_left_out() {
	local main s0 s1 s2 len first=2048 n=128 bad i k s before table
	main=$(make_loop main 16) s0=$(make_loop s0 8) s1=$(make_loop s1 8) s2=$(make_loop s2 8)
	len=$(sectors "$main")
	error_range mainx "$main" $first $n || { fail "create the failing main"; return; }
	dust_over "$s0" d0 || { fail "dm-dust over spare 0"; return; }
	table="0 $len $TARGET /dev/mapper/mainx /dev/mapper/d0 4 spare $s1 spare $s2"
	dmsetup create r --table "$table" || { fail "create"; return; }
	pattern "$WORK/a" 2048
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write over the failing range"
	assert_eq "remapped" $n "$(status_field r remapped)"
	assert_eq "all on spare 0" "used=$n state=active" "$(spare_line r 0 | cut -d' ' -f1,3)"
	dmesg_mark
	dmsetup message r 0 drain 16 2>/dev/null && fail "drain 16 accepted"
	assert_contains "bad member" "drain: expected a spare's member index, 0 to 15" "$(dmesg_new)"
	assert_eq "the refusal changes nothing" "used=$n state=active" "$(spare_line r 0 | cut -d' ' -f1,3)"
	# Unit first+7 cannot be read from spare 0.
	bad=$(dmsetup message r 0 list | awk -v s=$((first + 7)) '$1 == s {print $3}')
	dmsetup message d0 0 addbadblock "$bad" >/dev/null || fail "addbadblock $bad"
	# Numbered writes to 64 of the units while the drain runs (at most 96: under TCG each costs a process start).
	rm -f "$WORK/drain.rc"
	(
		dmsetup message r 0 drain 0 >/dev/null 2>&1
		echo $? >"$WORK/drain.rc"
	) &
	i=0
	while [ ! -f "$WORK/drain.rc" ] && [ $i -lt 96 ]; do
		s=$((first + 8 + i % 64))
		printf '%-512s' "write $i to $s" | dd of=/dev/mapper/r oflag=direct bs=512 seek=$s conv=notrunc 2>/dev/null ||
			fail "write $i"
		i=$((i + 1))
	done
	wait
	[ $i -ge 4 ] || fail "only $i writes overlapped the drain"
	assert_eq "the drain failed" 1 "$(cat "$WORK/drain.rc")"
	assert_contains "why" "1 could not be read from it and stay there" "$(dmesg_new)"
	assert_contains "what to do" "they stay on it until written, then drain again" "$(dmesg_new)"
	assert_eq "spare 0 keeps the unreadable unit" "used=1 state=draining" "$(spare_line r 0 | cut -d' ' -f1,3)"
	assert_eq "its entry" "$((first + 7)) 0" "$(dmsetup message r 0 list | awk '$2 == 0 {print $1, $2}')"
	dd if=/dev/mapper/r iflag=direct bs=512 skip=$((first + 7)) count=1 of=/dev/null 2>/dev/null &&
		fail "the unreadable unit was read"
	# What each unit holds: its last numbered write, else the pattern.
	cp "$WORK/a" "$WORK/exp"
	for ((k = 0; k < 64 && k < i; k++)); do
		s=$((first + 8 + k))
		printf '%-512s' "write $((i - 1 - (i - 1 - k) % 64)) to $s" |
			dd of="$WORK/exp" bs=512 seek=$s conv=notrunc 2>/dev/null
	done
	dd if="$WORK/exp" of="$WORK/head" bs=512 count=$((first + 7)) 2>/dev/null
	dd if="$WORK/exp" of="$WORK/tail" bs=512 skip=$((first + 8)) 2>/dev/null
	same_bytes "units before the unreadable one, after $i writes" "$WORK/head" /dev/mapper/r 0
	same_bytes "units after it" "$WORK/tail" /dev/mapper/r $((first + 8))
	# A write moves the unreadable unit; the drain then completes.
	printf '%-512s' "healed" >"$WORK/b"
	write_at "$WORK/b" /dev/mapper/r $((first + 7)) || fail "write to the unreadable unit"
	assert_eq "it moved to spare 1" "$((first + 7)) 1" \
		"$(dmsetup message r 0 list $((first + 7)) 1 | awk '{print $1, $2}')"
	dmsetup message r 0 drain 0 >"$WORK/out" || fail "drain again"
	assert_contains "output" "drained spare 0 ($(majmin /dev/mapper/d0)): 0 units moved; removed from the setup" \
		"$(cat "$WORK/out")"
	assert_eq "spare 0 removed" "used=0 state=removed" "$(spare_line r 0 | cut -d' ' -f1,3)"
	assert_eq "remapped" $n "$(status_field r remapped)"
	assert_eq "spare 1 holds them" "used=$n state=active" "$(spare_line r 1 | cut -d' ' -f1,3)"
	dd if="$WORK/b" of="$WORK/exp" bs=512 seek=$((first + 7)) conv=notrunc 2>/dev/null
	same_bytes "all the data after the drain" "$WORK/exp" /dev/mapper/r 0
	# The removed spare may not come back, and the refusal writes nothing.
	before=$(md5sum <"$s0")
	dmsetup reload r --table "$table" 2>/dev/null && fail "a table naming the removed spare was loaded"
	assert_contains "refused" "A spare was removed from this setup; wipe its metadata region to add it again" \
		"$(dmesg_new)"
	dmsetup remove r
	dmsetup remove d0
	assert_eq "the removed spare is untouched" "$before" "$(md5sum <"$s0")"
	# A table without it, the spares in another order.
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s2 2 spare $s1" || { fail "create without it"; return; }
	assert_eq "members" "1 2" "$(dmsetup message r 0 spares | awk '{printf "%s%s", s, $1; s=" "}')"
	assert_eq "remapped without it" $n "$(status_field r remapped)"
	same_bytes "data without it" "$WORK/exp" /dev/mapper/r 0
	no_unit_twice r
	# Spare 1 drains into spare 2; spare 2 then has nowhere to drain to.
	dmsetup message r 0 drain 1 >"$WORK/out" || fail "drain 1"
	assert_contains "output" "drained spare 1 ($(majmin "$s1")): $n units moved" "$(cat "$WORK/out")"
	dmsetup message r 0 drain 2 2>/dev/null && fail "a drain with nowhere to go was accepted"
	assert_contains "no room" "the other spares have too few free units for the spare's units" "$(dmesg_new)"
	assert_eq "spare 2 still active" "used=$n state=active" "$(spare_line r 2 | cut -d' ' -f1,3)"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s2" || { fail "create with spare 2 only"; return; }
	same_bytes "data on spare 2 alone" "$WORK/exp" /dev/mapper/r 0
	no_unit_twice r
	dmsetup remove r
	dmsetup remove mainx
}

# A spare whose metadata region fails a write while another spare takes the commit is failed: the write that
# caused the commit succeeds, the setup goes on degraded on the other spare, and the failed spare's units
# move there. `drain` then removes it, and a table without it has all the data.
test_a_spare_failing_its_metadata_is_failed_and_emptied() {
	local main s0 s1 len first=2048 ps len0
	main=$(make_loop main 16) s0=$(make_loop s0 8) s1=$(make_loop s1 8)
	len=$(sectors "$main") len0=$(sectors "$s0")
	error_range mainx "$main" $first 64 || { fail "create the failing main"; return; }
	dmsetup create s0l --table "0 $len0 linear $s0 0" || { fail "create s0l"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx /dev/mapper/s0l 2 spare $s1" || { fail "create"; return; }
	pattern "$WORK/a" 1040
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write: 32 units relocated"
	ps=$(dmsetup message r 0 list | awk '$2 == 0 {print $3}' | sort -n | head -1)
	assert_eq "on spare 0" "used=32 state=active" "$(spare_line r 0 | cut -d' ' -f1,3)"
	# Spare 0's metadata region (everything before its pool) now fails; its pool still works.
	dmsetup load s0l --table "0 $ps error
$ps $((len0 - ps)) linear $s0 $ps" && dmsetup resume s0l || { fail "swap in the failing region"; return; }
	dmesg_mark
	pattern "$WORK/b" 4
	write_at "$WORK/b" /dev/mapper/r $((first + 32)) || fail "the write whose commit fails on spare 0"
	assert_contains "logged" "(member 0) failed: metadata write failed" "$(dmesg_new)"
	assert_contains "moved" "failed spare 0 ($(majmin /dev/mapper/s0l)): 40 units moved to the other spares, 0 could not be read" \
		"$(dmesg_new)"
	assert_eq "state" degraded "$(status_field r state)"
	assert_eq "spare 0 failed and empty" "used=0 state=failed" "$(spare_line r 0 | cut -d' ' -f1,3)"
	assert_eq "spare 1 holds them" "used=40 state=active" "$(spare_line r 1 | cut -d' ' -f1,3)"
	assert_eq "remapped" 40 "$(status_field r remapped)"
	dd if="$WORK/b" of="$WORK/a" bs=512 seek=$((first + 32)) conv=notrunc 2>/dev/null
	same_bytes "data, degraded" "$WORK/a" /dev/mapper/r 0
	# New failures go to spare 1 and commit there alone.
	write_at "$WORK/b" /dev/mapper/r $((first + 40)) || fail "a write while degraded"
	dd if="$WORK/b" of="$WORK/a" bs=512 seek=$((first + 40)) conv=notrunc 2>/dev/null
	assert_eq "spare 1" "used=48 state=active" "$(spare_line r 1 | cut -d' ' -f1,3)"
	# Remove the failed spare: it cannot record its own removal, the other spare does.
	dmsetup message r 0 drain 0 >"$WORK/out" || fail "drain the failed spare"
	assert_contains "drained" "drained spare 0" "$(cat "$WORK/out")"
	assert_contains "its own record failed" "recording its own removal failed" "$(dmesg_new)"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $s1" || { fail "create without spare 0"; return; }
	assert_eq "state without it" ok "$(status_field r state)"
	assert_eq "remapped without it" 48 "$(status_field r remapped)"
	same_bytes "data without it" "$WORK/a" /dev/mapper/r 0
	no_unit_twice r
	dmsetup remove r
	dmsetup remove s0l
	dmsetup remove mainx
}
