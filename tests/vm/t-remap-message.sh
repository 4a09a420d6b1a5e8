# `dmsetup message <dev> 0 remap <sector>`: a unit moves to the spare, durably, and stays there.

test_remap_moves_a_unit_and_survives_recreate() {
	local main spare len out sector
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0
	out=$(remap_msg r 100) || fail "remap refused"
	case "$out" in "remapped 100 to spare 0 sector "*) ;; *) fail "remap output: '$out'" ;; esac
	sector=${out##* }
	assert_eq "remapped" 1 "$(status_field r remapped)"
	assert_eq "spare_used" 1 "$(status_field r spare_used)"
	same_bytes "data unchanged through dm after the remap" "$WORK/a" /dev/mapper/r 0
	dd if="$WORK/a" bs=512 skip=100 count=1 of="$WORK/a100" 2>/dev/null
	same_bytes "the spare unit holds the copy" "$WORK/a100" "$spare" "$sector"
	# New writes to the unit land on the spare; main keeps the old sector.
	pattern "$WORK/b" 4
	write_at "$WORK/b" /dev/mapper/r 98
	dd if="$WORK/b" bs=512 skip=2 count=1 of="$WORK/b2" 2>/dev/null
	same_bytes "write to sector 100 went to the spare" "$WORK/b2" "$spare" "$sector"
	same_bytes "main's sector 100 untouched" "$WORK/a100" "$main" 100
	# Remove and create again: the remap comes back from the metadata, with the data.
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" 1 "$(status_field r remapped)"
	assert_eq "spare_used after recreate" 1 "$(status_field r spare_used)"
	same_bytes "data after recreate" "$WORK/b" /dev/mapper/r 98
	assert_eq "list" "100 0 $sector active" "$(dmsetup message r 0 list)"
	# A second remap gets another spare unit.
	out=$(remap_msg r 5000) || fail "second remap"
	[ "${out##* }" != "$sector" ] || fail "the same spare unit was handed out twice"
	dmsetup remove r
}

test_remap_refusals() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	dmesg_mark
	dmsetup message r 0 remap 100 2>/dev/null && fail "remap accepted on a live device"
	assert_contains "live device" "suspend the device first" "$(dmesg_new)"
	dmesg_mark
	remap_msg r "$len" 2>/dev/null && fail "remap beyond the end accepted"
	assert_contains "beyond the end" "sector beyond the end of the device" "$(dmesg_new)"
	remap_msg r 7 >/dev/null || fail "first remap of sector 7"
	dmesg_mark
	remap_msg r 7 2>/dev/null && fail "second remap of sector 7 accepted"
	assert_contains "twice" "the unit is already remapped" "$(dmesg_new)"
	assert_eq "remapped" 1 "$(status_field r remapped)"
	dmsetup remove r
}

test_remap_of_an_unreadable_unit_marks_it_pending() {
	local main spare len out
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create dust --table "0 $len dust $main 0 512" || { fail "create dust"; return; }
	dmsetup message dust 0 addbadblock 300
	dmsetup message dust 0 enable
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	out=$(remap_msg r 300) || fail "remap of a bad sector refused"
	assert_eq "output" "pending 300: main cannot read it; the next write heals it" "$out"
	assert_eq "pending" 1 "$(status_field r pending)"
	assert_eq "remapped" 0 "$(status_field r remapped)"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	assert_eq "pending after recreate" 1 "$(status_field r pending)"
	dmsetup remove r
	dmsetup remove dust
}

test_remap_with_a_full_journal_writes_a_checkpoint() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" && dmsetup remove r || { fail "format"; return; }
	blockdev --flushbufs "$spare"
	"$DMR_TOP/target/debug/md-fixture" fill-journal "$spare" >/dev/null || { fail "md-fixture fill-journal"; return; }
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create with a full journal"; return; }
	assert_eq "remapped from the full journal" 126 "$(status_field r remapped)"
	assert_eq "metadata version before" 1 "$(status_field r metadata_version)"
	remap_msg r 7 >/dev/null || { fail "remap with a full journal"; return; }
	assert_eq "live metadata version after the checkpoint" 2 "$(status_field r metadata_version)"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate after the checkpoint"; return; }
	assert_eq "remapped after the checkpoint" 127 "$(status_field r remapped)"
	assert_eq "metadata version after the checkpoint" 2 "$(status_field r metadata_version)"
	assert_eq "unit 7 listed" "7 0" "$(dmsetup message r 0 list 7 1 | cut -d' ' -f1,2)"
	dmsetup remove r
}

# entry_times SPARE: "<metadata version> <time of unit 7> <of unit 9> <entries of other units not made at
# time 1>", as the metadata on SPARE records them (md-fixture: `dmremap inspect` takes 14 s in the VM).
entry_times() {
	blockdev --flushbufs "$1"
	"$DMR_TOP/target/debug/md-fixture" times "$1" | awk '
		$1 == "version" { v = $2; next }
		{ if ($1 == 7) a = $2; else if ($1 == 9) b = $2; else if ($2 != 1) bad++ }
		END { print v, a, b, bad + 0 }'
}

# The metadata records when each entry was made; a checkpoint rewrites every entry from the table in memory,
# which must keep that time, not stamp the checkpoint's: the entry made by a remap (loaded from the journal,
# unit 7) and the fixture's entries made at time 1 (loaded as changes and merged into the run).
test_checkpoints_keep_the_time_each_entry_was_made() {
	local main spare len t0 v t7 a t9 bad
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	t0=$(date +%s)
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	remap_msg r 7 >/dev/null || { fail "remap 7"; return; }
	dmsetup remove r
	read -r v t7 _ <<<"$(entry_times "$spare")"
	[ "${t7:-0}" -ge "$t0" ] && [ "$t7" -le $((t0 + 600)) ] || fail "time of the new entry: '$t7' (started at $t0)"
	"$DMR_TOP/target/debug/md-fixture" fill-journal "$spare" >/dev/null || { fail "md-fixture fill-journal"; return; }
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create with a full journal"; return; }
	remap_msg r 9 >/dev/null || { fail "remap 9 with a full journal"; return; }
	dmsetup remove r
	read -r v a t9 bad <<<"$(entry_times "$spare")"
	assert_eq "metadata version after the checkpoint" 2 "$v"
	assert_eq "time of unit 7 after the checkpoint" "$t7" "$a"
	[ "${t9:-0}" -gt "$t7" ] || fail "time of the entry made by the checkpoint's commit: '$t9' (unit 7: '$t7')"
	assert_eq "entries of the fixture that lost their time 1" 0 "$bad"
}

test_unremap_copies_back_and_frees_the_spare_unit() {
	local main spare len out sector
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0
	out=$(remap_msg r 100) || { fail "remap"; return; }
	sector=${out##* }
	# New data for the unit goes to the spare; unremap must bring exactly that back to main.
	pattern "$WORK/c" 4
	write_at "$WORK/c" /dev/mapper/r 96
	dd if="$WORK/c" of="$WORK/a" bs=512 seek=96 conv=notrunc 2>/dev/null
	dmesg_mark
	dmsetup message r 0 unremap 100 2>/dev/null && fail "unremap accepted on a live device"
	assert_contains "live device" "suspend the device first" "$(dmesg_new)"
	out=$(unremap_msg r 100) || fail "unremap refused"
	assert_eq "output" "unremapped 100 from spare 0 sector $sector" "$out"
	assert_eq "remapped" 0 "$(status_field r remapped)"
	assert_eq "spare_used" 0 "$(status_field r spare_used)"
	same_bytes "data through dm" "$WORK/a" /dev/mapper/r 0
	same_bytes "main holds the unit again" "$WORK/a" "$main" 0
	dmesg_mark
	unremap_msg r 100 2>/dev/null && fail "unremap of a unit without an entry accepted"
	assert_contains "not remapped" "the unit is not remapped" "$(dmesg_new)"
	# The freed spare unit is handed out again, and the drop survives a recreate.
	out=$(remap_msg r 5000) || fail "remap after unremap"
	assert_eq "spare unit reused" "$sector" "${out##* }"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate"; return; }
	assert_eq "entries after recreate" "5000 0 $sector active" "$(dmsetup message r 0 list)"
	dmsetup remove r
}

test_unremap_refuses_while_main_still_fails() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create dust --table "0 $len dust $main 0 512" && dmsetup message dust 0 enable ||
		{ fail "create dust"; return; }
	dmsetup message dust 0 addbadblock 300 255
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	pattern "$WORK/a" 4
	write_at "$WORK/a" /dev/mapper/r 296 || fail "write"
	assert_eq "relocated" 1 "$(status_field r remapped)"
	dmesg_mark
	unremap_msg r 300 2>/dev/null && fail "unremap onto a failing sector accepted"
	assert_contains "refusal" "main still fails the unit; it stays remapped" "$(dmesg_new)"
	assert_eq "still remapped" 1 "$(status_field r remapped)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 296
	dmsetup remove r
	dmsetup remove dust
}
