# dmsetup table / status / message output, and the I/O counters behind the status line.

test_table_line() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	# Devices are echoed as major:minor, as device-mapper does for every target.
	assert_eq "dmsetup table" "0 $len $TARGET $(lsblk -dno MAJ:MIN "$main" | tr -d ' ') $(lsblk -dno MAJ:MIN "$spare" | tr -d ' ')" \
		"$(dmsetup table r)"
	dmsetup remove r
}

test_status_fields_and_counters() {
	local main spare len st r0 w0 f0
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	st=$(dmsetup status r)
	case "$st" in
	"0 $len $TARGET unit_bytes=512 remapped=0 pending=0 spare_used=0 spare_total="*" metadata=ok metadata_repaired=0 metadata_version=1 reads="*" writes="*" flushes="*" discards="*" read_errors=0 write_errors=0 device_errors=0 state=ok spares=1 health=100 scrub=stopped scrub_sector=0 remaps_auto=0 remaps_manual=0 remaps_proactive=0") ;;
	*) fail "status line has unexpected form: '$st'" ;;
	esac
	r0=$(status_field r reads) w0=$(status_field r writes) f0=$(status_field r flushes)
	dd if=/dev/zero of=/dev/mapper/r oflag=direct bs=4096 count=8 2>/dev/null
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=4096 count=5 2>/dev/null
	assert_eq "writes counted" $((w0 + 8)) "$(status_field r writes)"
	assert_eq "reads counted" $((r0 + 5)) "$(status_field r reads)"
	# fsync of the block device sends an empty REQ_PREFLUSH bio.
	dd if=/dev/zero of=/dev/mapper/r oflag=direct bs=4096 count=1 conv=fsync 2>/dev/null
	assert_eq "writes counted" $((w0 + 9)) "$(status_field r writes)"
	[ "$(status_field r flushes)" -gt "$f0" ] || fail "a flush was not counted"
	# `stats` prints the same counters one per line; `clear_stats` zeroes them.
	assert_eq "stats" "reads=$(status_field r reads) writes=$(status_field r writes)" \
		"$(dmsetup message r 0 stats | grep -E '^(reads|writes)=' | tr '\n' ' ' | sed 's/ $//')"
	# Every data bio sent to main lands in one latency bucket.
	local sum
	sum=$(dmsetup message r 0 stats | awk -F= '/^main_latency_us_ge_/ {s += $2} END {print s + 0}')
	assert_eq "latency histogram counts every data bio" \
		$(($(status_field r reads) + $(status_field r writes))) "${sum:-0}"
	remap_msg r 8 >/dev/null || fail "remap"
	assert_eq "remap counters" "remaps_auto=0 remaps_manual=1 remaps_proactive=0" \
		"$(dmsetup message r 0 stats | grep '^remaps_' | tr '\n' ' ' | sed 's/ $//')"
	dmsetup message r 0 clear_stats || fail "clear_stats refused"
	assert_eq "reads after clear_stats" 0 "$(status_field r reads)"
	assert_eq "writes after clear_stats" 0 "$(status_field r writes)"
	assert_eq "stats after clear_stats" "0" "$(dmsetup message r 0 stats | grep -v '^table_' | cut -d= -f2 | sort -u)"
	dmsetup remove r
}

test_read_errors_are_returned_and_counted() {
	local main spare len
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create dust --table "0 $len dust $main 0 4096" || { fail "create dust"; return; }
	dmsetup message dust 0 addbadblock 10
	dmsetup message dust 0 enable
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	if dd if=/dev/mapper/r of=/dev/null iflag=direct bs=4096 skip=10 count=1 2>/dev/null; then
		fail "a read of a bad block succeeded"
	fi
	dd if=/dev/mapper/r of=/dev/null iflag=direct bs=4096 skip=11 count=1 2>/dev/null || fail "good block unreadable"
	assert_eq "read_errors" 1 "$(status_field r read_errors)"
	assert_eq "write_errors" 0 "$(status_field r write_errors)"
	# The failed 4 KiB read left its eight 512-byte units pending: the whole pending part (30) is taken off,
	# and errors on a handful of I/O take the whole error part (40).
	assert_eq "pending" 8 "$(status_field r pending)"
	assert_eq "health" 30 "$(status_field r health)"
	dmsetup remove r
	dmsetup remove dust
}

test_messages() {
	local main spare len out
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	out=$(dmsetup message r 0 help) || fail "help refused"
	# One line per message, each starting with the message's name.
	assert_eq "messages in help" "help list remap unremap clear_pending stats clear_stats spares drain scrub scrub scrub" "$(echo "$out" | awk '{print $1}' | tr -d ':' | tr '\n' ' ' | sed 's/ $//')"
	dmesg_mark
	dmsetup message r 0 frobnicate 2>/dev/null && fail "unknown message accepted"
	assert_contains "unknown message logged" "message rejected: unknown message" "$(dmesg_new)"
	dmesg_mark
	dmsetup message r 0 help me 2>/dev/null && fail "help with an argument accepted"
	assert_contains "bad arity logged" "message rejected: wrong number of arguments" "$(dmesg_new)"
	dmsetup remove r
}
