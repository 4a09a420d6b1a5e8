# Data passes through unchanged: written through the dm device, read back through it and from the main device.

test_data_pass_through() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	pattern "$WORK/b" 4
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write 1 MiB at 0"
	write_at "$WORK/b" /dev/mapper/r 12345 || fail "write 4 KiB at sector 12345"
	write_at "$WORK/b" /dev/mapper/r $((len - 8)) || fail "write the last 4 KiB"
	same_bytes "read back through dm" "$WORK/a" /dev/mapper/r 0
	same_bytes "read back from main" "$WORK/a" "$main" 0
	same_bytes "odd offset through dm" "$WORK/b" /dev/mapper/r 12345
	same_bytes "odd offset on main" "$WORK/b" "$main" 12345
	same_bytes "end of device on main" "$WORK/b" "$main" $((len - 8))
	# Pass-through writes nothing to the spare's pool (its last 8 MiB; the metadata region is at its start).
	cmp -s -n $((8 * 1024 * 1024)) <(tail -c $((8 * 1024 * 1024)) "$spare") /dev/zero ||
		fail "the spare's pool was written to"
	dmsetup remove r
}

test_data_nonzero_begin() {
	local main spare other len
	main=$(make_loop main 32) spare=$(make_loop spare 16) other=$(make_loop other 8)
	len=$(sectors "$main")
	# The first 8 MiB of the dm device are another device; dm-remap-v4 starts at sector 16384.
	printf '0 16384 linear %s 0\n16384 %s %s %s %s\n' "$other" "$len" "$TARGET" "$main" "$spare" |
		dmsetup create r || { fail "create a two-target table"; return; }
	pattern "$WORK/a" 512
	write_at "$WORK/a" /dev/mapper/r $((16384 + 2048)) || fail "write"
	same_bytes "read back through dm" "$WORK/a" /dev/mapper/r $((16384 + 2048))
	# ti->begin is subtracted: dm sector 16384 + x is main sector x.
	same_bytes "main holds it at the target offset" "$WORK/a" "$main" 2048
	dmsetup remove r
}

test_discard_passes_down() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0
	blkdiscard -o 0 -l $((1024 * 1024)) /dev/mapper/r || fail "blkdiscard"
	head -c $((1024 * 1024)) /dev/zero >"$WORK/zero"
	same_bytes "discarded range reads as zeros from main" "$WORK/zero" "$main" 0
	assert_eq "discards counted" 1 "$(status_field r discards)"
	dmsetup remove r
}

test_queue_limits_follow_main() {
	local main spare len
	main=$(make_loop main 32 4096) spare=$(make_loop spare 16 4096)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	assert_eq "logical block size of the dm device" 4096 "$(blockdev --getss /dev/mapper/r)"
	assert_eq "unit_bytes in status" 4096 "$(status_field r unit_bytes)"
	dmsetup remove r
}
