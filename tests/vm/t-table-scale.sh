# The remap table at scale: thousands of runtime relocations (the change layer merged into the sorted run),
# and removals of loaded entries (tombstones over the run), all persistent.

# table_stat DEV KEY: a value from the `stats` message.
table_stat() { dmsetup message "$1" 0 stats | sed -n "s/^$2=//p"; }

test_thousands_of_relocations_merge_into_the_run_and_persist() {
	local main spare len n=4400 first=8192
	main=$(make_loop main 16) spare=$(make_loop spare 8)
	len=$(sectors "$main")
	error_range mainx "$main" $first $n || { fail "create the failing main"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $spare 2 retries 0" || { fail "create"; return; }
	pattern "$WORK/a" $((n / 2))
	# 4400 one-sector units fail on main: each is relocated; the table merges its changes at 4096.
	write_at "$WORK/a" /dev/mapper/r $first || fail "write over the failing range"
	assert_eq "remapped" $n "$(status_field r remapped)"
	assert_eq "spare_used" $n "$(status_field r spare_used)"
	local run changes
	run=$(table_stat r table_run_entries) changes=$(table_stat r table_changes)
	[ "${run:-0}" -ge 4096 ] || fail "the changes were not merged into the run (run=$run changes=$changes)"
	assert_eq "every entry is in the run or the changes" $n "$((run + changes))"
	same_bytes "data through dm" "$WORK/a" /dev/mapper/r $first
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/mainx $spare 2 retries 0" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" $n "$(status_field r remapped)"
	assert_eq "run after recreate" $n "$(table_stat r table_run_entries)"
	assert_eq "changes after recreate" 0 "$(table_stat r table_changes)"
	same_bytes "data after recreate" "$WORK/a" /dev/mapper/r $first
	# Units around the failing range never moved: their data is on main.
	pattern "$WORK/b" 4
	write_at "$WORK/b" /dev/mapper/r $((first - 8))
	same_bytes "main below the range" "$WORK/b" "$main" $((first - 8))
	dmsetup remove r
}

test_removing_loaded_entries_hides_them_and_persists() {
	local main spare len out
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0
	remap_msg r 100 >/dev/null && remap_msg r 101 >/dev/null && remap_msg r 900 >/dev/null ||
		{ fail "remap"; return; }
	# Reloaded, the three entries are in the sorted run; unremap must hide one without touching the others.
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate"; return; }
	assert_eq "loaded into the run" 3 "$(table_stat r table_run_entries)"
	out=$(unremap_msg r 101) || fail "unremap of a loaded entry"
	assert_eq "remapped" 2 "$(status_field r remapped)"
	assert_eq "a tombstone" 1 "$(table_stat r table_changes)"
	assert_eq "list" "100 0 active
900 0 active" "$(dmsetup message r 0 list | cut -d' ' -f1,2,4)"
	same_bytes "data through dm" "$WORK/a" /dev/mapper/r 0
	# Unit 101 is on main again: a write to it (and 102) through dm lands there, not on the old spare unit.
	# Units 100 and 900 were not written since the remap copied them, so main still holds their data too.
	pattern "$WORK/c" 1
	write_at "$WORK/c" /dev/mapper/r 101
	dd if="$WORK/c" of="$WORK/a" bs=512 seek=101 conv=notrunc 2>/dev/null
	same_bytes "main holds unit 101" "$WORK/a" "$main" 0
	same_bytes "data through dm after the write" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate 2"; return; }
	assert_eq "remapped after the second recreate" 2 "$(status_field r remapped)"
	assert_eq "the journal's clear is merged at load" 0 "$(table_stat r table_changes)"
	same_bytes "data after the second recreate" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
}
