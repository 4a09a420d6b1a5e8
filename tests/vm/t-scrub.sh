# The background scrub: finds unreadable units (pending), relocates slow ones while the device is live
# without losing a write, keeps its position across reloads and module reloads, and refuses bad input.

# scrub_field DEV KEY: KEY's value in the `scrub status` message.
scrub_field() {
	local line
	while IFS= read -r line; do
		case "$line" in "$2="*) echo "${line#"$2="}" ;; esac
	done < <(dmsetup message "$1" 0 scrub status)
}

# wait_pass DEV PASSES SECONDS: waits until the scrub of DEV has completed PASSES passes and stopped.
wait_pass() {
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		if [ "$(scrub_field "$1" passes)" = "$2" ] && [ "$(scrub_field "$1" state)" = stopped ]; then
			return 0
		fi
		sleep 0.25
	done
	fail "scrub of $1 did not complete pass $2 in $3 s: $(dmsetup message "$1" 0 scrub status | tr '\n' ' ')"
	return 1
}

# slow_over NAME DEV FIRST COUNT MS: a device over DEV whose sectors FIRST..FIRST+COUNT-1 take MS ms to read
# (dm-delay; writes are not delayed).
slow_over() {
	local len
	len=$(sectors "$2")
	dmsetup create "$1" --table "0 $3 linear $2 0
$3 $4 delay $2 $3 $5 $2 $3 0
$(($3 + $4)) $((len - $3 - $4)) linear $2 $(($3 + $4))"
}

test_scrub_finds_exactly_the_bad_blocks_as_pending() {
	local main spare len
	main=$(make_loop main 8) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare 2 scrub_rate 1048576" ||
		{ fail "create"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	for b in 100 101 5000 16000; do dmsetup message dust 0 addbadblock "$b" >/dev/null; done
	assert_eq "status before" "scrub=stopped scrub_sector=0" \
		"$(dmsetup status r | tr ' ' '\n' | grep '^scrub' | tr '\n' ' ' | sed 's/ $//')"
	dmesg_mark
	dmsetup message r 0 scrub start || fail "scrub start"
	wait_pass r 1 180 || return
	assert_eq "pending" 4 "$(status_field r pending)"
	assert_eq "remapped" 0 "$(status_field r remapped)"
	assert_eq "found_pending" 4 "$(scrub_field r found_pending)"
	assert_eq "scanned the whole device" $((len * 512)) "$(scrub_field r scanned_bytes)"
	assert_eq "position rewound" 0 "$(scrub_field r position)"
	assert_eq "total" "$len" "$(scrub_field r total)"
	assert_eq "list" "100 - - pending
101 - - pending
5000 - - pending
16000 - - pending" "$(dmsetup message r 0 list)"
	assert_contains "logged" "scrub: sector 5000 unreadable on main" "$(dmesg_new)"
	assert_contains "pass logged" "pass 1 complete" "$(dmesg_new)"
	assert_eq "status after" "stopped" "$(status_field r scrub)"
	# The readable data is untouched, and a write heals a pending unit as usual.
	dd if="$WORK/a" of="$WORK/head" bs=512 count=100 2>/dev/null
	same_bytes "data before the bad blocks" "$WORK/head" /dev/mapper/r 0
	pattern "$WORK/b" 1
	write_at "$WORK/b" /dev/mapper/r 100 || fail "healing write"
	same_bytes "healed" "$WORK/b" /dev/mapper/r 100
	assert_eq "pending after the heal" 2 "$(status_field r pending)"
	# A second pass finds nothing new: known units are skipped.
	dmsetup message r 0 scrub start || fail "scrub start 2"
	wait_pass r 2 180 || return
	assert_eq "found_pending after pass 2" 4 "$(scrub_field r found_pending)"
	assert_eq "found by pass 2, by pass 1" "0 4" "$(scrub_field r last_pass_found) $(scrub_field r prev_pass_found)"
	# Health (docs/status.md): errors per I/O are far above 1 per thousand here (40 points off), 2 pending
	# units cost 20, two spare units in use nothing, and pass 2 found fewer units than pass 1 (no trend).
	assert_eq "health after pass 2" 40 "$(status_field r health)"
	# Two new bad blocks: pass 3 finds 2 units where pass 2 found none, a disk getting worse. Pending (4
	# units) now costs 30 and the trend 10.
	for b in 200 201; do dmsetup message dust 0 addbadblock "$b" >/dev/null; done
	dmsetup message r 0 scrub start || fail "scrub start 3"
	wait_pass r 3 180 || return
	assert_eq "found by pass 3, by pass 2" "2 0" "$(scrub_field r last_pass_found) $(scrub_field r prev_pass_found)"
	assert_eq "pending after pass 3" 4 "$(status_field r pending)"
	assert_eq "health after pass 3" 20 "$(status_field r health)"
	dmsetup remove r
	dmsetup remove dust
}

test_scrub_relocates_slow_units_without_losing_concurrent_writes() {
	local main spare len i s expect
	main=$(make_loop main 16) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	# Sectors 2048..2079 take 150 ms to read; with 512-byte units, 32 slow units.
	slow_over slow "$main" 2048 32 150 || { fail "create slow"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/slow $spare 4 scrub_rate 1048576 slow_threshold_ms 60" ||
		{ fail "create"; return; }
	assert_eq "table echo" "4 scrub_rate 1048576 slow_threshold_ms 60" "$(dmsetup table r | cut -d' ' -f6-)"
	pattern "$WORK/a" 2048
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	dmesg_mark
	dmsetup message r 0 scrub start || fail "scrub start"
	# While the scrub relocates them, keep writing the slow sectors: each write is numbered, and the last
	# number written to each sector must be what it reads back afterwards.
	i=0
	# The state is checked every 8 writes: a message costs as much as several writes.
	while { [ $((i % 8)) != 0 ] || [ "$(scrub_field r state)" = running ]; } && [ $i -lt 4000 ]; do
		s=$((2048 + i % 32))
		printf '%-512s' "write $i to $s" | dd of=/dev/mapper/r oflag=direct bs=512 seek=$s conv=notrunc 2>/dev/null ||
			fail "write $i"
		i=$((i + 1))
	done
	wait_pass r 1 240 || return
	[ $i -ge 32 ] || fail "only $i writes overlapped the scrub"
	for ((s = 2048; s < 2080; s++)); do
		expect=$(for ((k = i - 1; k >= 0; k--)); do
			[ $((2048 + k % 32)) = $s ] && { echo "write $k to $s"; break; }
		done)
		[ -n "$expect" ] && printf '%-512s' "$expect" >"$WORK/e" || dd if="$WORK/a" of="$WORK/e" bs=512 skip=$s count=1 2>/dev/null
		same_bytes "sector $s after $i writes" "$WORK/e" /dev/mapper/r "$s"
	done
	assert_eq "relocated" 32 "$(scrub_field r relocated)"
	assert_eq "remapped" 32 "$(status_field r remapped)"
	assert_eq "pending" 0 "$(status_field r pending)"
	assert_eq "counted as proactive" 32 "$(dmsetup message r 0 stats | sed -n 's/^remaps_proactive=//p')"
	assert_eq "status line: proactive, automatic" "32 0" "$(status_field r remaps_proactive) $(status_field r remaps_auto)"
	assert_eq "exactly the slow units, fast ones untouched" \
		"$(seq 2048 2079 | tr '\n' ' ')" "$(dmsetup message r 0 list | awk '$4 == "active" {printf "%s ", $1}')"
	assert_contains "logged" "scrub: sector 2050 slow" "$(dmesg_new)"
	# The rest of the data, and all of it after a reload.
	dd if="$WORK/a" of="$WORK/head" bs=512 count=2048 2>/dev/null
	same_bytes "data before the slow region" "$WORK/head" /dev/mapper/r 0
	dmsetup reload r --table "$(dmsetup table r | cut -d' ' -f1-3) /dev/mapper/slow $spare 4 scrub_rate 1048576 slow_threshold_ms 60" &&
		dmsetup suspend r && dmsetup resume r || fail "reload"
	assert_eq "remapped after reload" 32 "$(status_field r remapped)"
	same_bytes "data before the slow region after reload" "$WORK/head" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove slow
}

test_scrub_position_survives_suspend_reload_and_module_reload() {
	local main spare len p q
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare 2 scrub_rate 2048" || { fail "create"; return; }
	dmsetup message r 0 scrub start || fail "scrub start"
	sleep 3
	dmsetup suspend r || fail "suspend"
	p=$(scrub_field r position)
	[ "$p" -gt 0 ] || fail "no progress after 3 s: position $p"
	sleep 1
	assert_eq "suspended: no progress" "$p" "$(scrub_field r position)"
	dmsetup resume r || fail "resume"
	sleep 1
	q=$(scrub_field r position)
	[ "$q" -gt "$p" ] || fail "no progress after resume: $q <= $p"
	# Remove the device and the modules, as a reboot would; the new table continues where the old one was.
	dmsetup remove r || fail "remove"
	unload_modules || fail "unload"
	load_modules || fail "load"
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $spare 2 scrub_rate 2048" || { fail "recreate"; return; }
	assert_eq "running after recreate" running "$(status_field r scrub)"
	p=$(status_field r scrub_sector)
	[ "$p" -ge "$q" ] || fail "position went back: $p < $q"
	assert_contains "logged" "continues at sector" "$(dmesg_new)"
	# A stopped scrub stays stopped, at its position.
	dmsetup message r 0 scrub stop || fail "scrub stop"
	p=$(scrub_field r position)
	assert_eq "stopped" stopped "$(scrub_field r state)"
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "recreate 2"; return; }
	assert_eq "still stopped" stopped "$(status_field r scrub)"
	assert_eq "same position" "$p" "$(scrub_field r position)"
	assert_eq "default rate" 8192 "$(scrub_field r rate_kib)"
	dmsetup message r 0 scrub rate 65536 || fail "scrub rate"
	assert_eq "rate set" 65536 "$(scrub_field r rate_kib)"
	dmsetup remove r
}

test_bad_scrub_options_and_messages_are_refused() {
	local main spare len opt
	main=$(make_loop main 16) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	for opt in "2 scrub_rate 0" "2 scrub_rate 1048577" "1 scrub_rate" "2 slow_threshold_ms 0" \
		"2 slow_threshold_ms 60001" "4 scrub_rate 1 scrub_rate 2"; do
		dmesg_mark
		dmsetup create r --table "0 $len $TARGET $main $spare $opt" 2>/dev/null && fail "accepted: $opt"
		dmesg_new | grep -q 'Invalid scrub_rate\|Invalid slow_threshold_ms\|given twice' ||
			fail "no specific error for: $opt"
	done
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	for msg in "scrub" "scrub rate 0" "scrub rate x" "scrub go" "scrub start now"; do
		dmsetup message r 0 $msg 2>/dev/null && fail "accepted: $msg"
	done
	assert_eq "never started" stopped "$(scrub_field r state)"
	assert_eq "rate unchanged" 8192 "$(scrub_field r rate_kib)"
	dmsetup remove r
}

test_scrub_relocation_skips_failing_spare_units() {
	local main spare len first list
	main=$(make_loop main 8) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	slow_over slow "$main" 2048 4 150 || { fail "create slow"; return; }
	dust_over "$spare" sdust || { fail "create spare dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/slow /dev/mapper/sdust 4 scrub_rate 1048576 slow_threshold_ms 60" ||
		{ fail "create"; return; }
	pattern "$WORK/a" 2048
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	# The first spare unit is the start of the pool: find it with a remap, then make the next two fail.
	first=$(remap_msg r 0 | awk '{print $NF}')
	[ -n "$first" ] || { fail "remap 0"; return; }
	dmsetup message sdust 0 addbadblock $((first + 1)) 255 >/dev/null &&
		dmsetup message sdust 0 addbadblock $((first + 2)) 255 >/dev/null || fail "addbadblock"
	dmesg_mark
	dmsetup message r 0 scrub start || fail "scrub start"
	wait_pass r 1 120 || return
	assert_eq "relocated" 4 "$(scrub_field r relocated)"
	assert_eq "remapped" 5 "$(status_field r remapped)"
	assert_eq "spare_used counts the 2 retired units" 7 "$(status_field r spare_used)"
	list=$(dmsetup message r 0 list 2048 4 | awk '{print $3}' | tr '\n' ' ')
	assert_eq "slow units on the units after the failing ones" \
		"$((first + 3)) $((first + 4)) $((first + 5)) $((first + 6)) " "$list"
	assert_contains "retired logged" "failed a write; retired" "$(dmesg_new)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove sdust
	dmsetup remove slow
}

test_scrub_leaves_the_last_tenth_of_the_spare_for_failing_units() {
	local main spare len
	main=$(make_loop main 8)
	# The smallest metadata region is 2 MiB; 4 KiB more is a pool of 8 units, of which 1 is the reserve.
	truncate -s 2052K "$WORK/spare.img"
	spare=$(losetup --find --show "$WORK/spare.img")
	len=$(sectors "$main")
	slow_over slow "$main" 1000 10 150 || { fail "create slow"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/slow $spare 4 scrub_rate 1048576 slow_threshold_ms 60" ||
		{ fail "create"; return; }
	assert_eq "spare_total" 8 "$(status_field r spare_total)"
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0 || fail "initial write"
	dmesg_mark
	dmsetup message r 0 scrub start || fail "scrub start"
	wait_pass r 1 120 || return
	assert_eq "relocated up to the reserve" 7 "$(scrub_field r relocated)"
	assert_eq "spare_used" 7 "$(status_field r spare_used)"
	assert_eq "state: not exhausted" ok "$(status_field r state)"
	assert_contains "logged" "nearly full" "$(dmesg_new)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove slow
}
