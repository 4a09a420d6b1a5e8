# dmremap, the administration tool (tools/dmremap), against the real target.

DMREMAP=$DMR_TOP/target/debug/dmremap

source "$DMR_TOP/tests/vm/dmremap-lib.sh"

test_dmremap_drives_a_device_through_its_life() {
	local main spare len out mm sm sector
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	mm=$(stat -L -c '%t %T' "$main" | xargs -n1 printf '%d\n' | paste -sd:)
	sm=$(stat -L -c '%t %T' "$spare" | xargs -n1 printf '%d\n' | paste -sd:)
	without_dmsetup true || { fail "cannot hide dmsetup (unshare/mount in the guest)"; return; }
	without_dmsetup "$DMREMAP" create r --main "$main" --spare "$spare" || { fail "dmremap create"; return; }
	# dmremap passes the main's identifier (its backing file, for a loop device); the kernel echoes it.
	assert_eq "table" "0 $len $TARGET $mm $sm 2 main_id loop:$WORK/main.img" "$(dmsetup table r)"
	out=$("$DMREMAP" status r --json | tr -d ' \n')
	assert_contains "json" '"remapped":0' "$out"
	assert_contains "json health of a fresh device" '"health":100' "$out"
	pattern "$WORK/a" 64
	write_at "$WORK/a" /dev/mapper/r 0
	# list, remap and unremap through the ioctls (DM_DEV_SUSPEND, DM_TARGET_MSG), with no dmsetup to run.
	out=$(without_dmsetup "$DMREMAP" remap r 100) || fail "dmremap remap: $out"
	assert_contains "remap output" "remapped 100 to spare 0 sector " "$out"
	sector=${out##* }
	dmsetup info r | grep -q '^State: *ACTIVE' || fail "dmremap remap left the device suspended"
	assert_eq "list" "100 active 0 $sector" "$(without_dmsetup "$DMREMAP" list r | tail -n 1 | tr -s ' ')"
	out=$(without_dmsetup "$DMREMAP" list r --json | tr -d ' \n')
	assert_eq "list --json" "[{\"sector\":100,\"state\":\"active\",\"spare\":0,\"spare_sector\":$sector}]" "$out"
	assert_contains "prometheus" 'dmremap_remapped_units{device="r"} 1' "$("$DMREMAP" status r --prometheus)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	out=$(without_dmsetup "$DMREMAP" unremap r 100) || fail "dmremap unremap: $out"
	assert_eq "unremap output" "unremapped 100 from spare 0 sector $sector" "$out"
	dmsetup info r | grep -q '^State: *ACTIVE' || fail "dmremap unremap left the device suspended"
	assert_eq "list after unremap" "no remapped or pending units" "$(without_dmsetup "$DMREMAP" list r)"
	same_bytes "data after unremap" "$WORK/a" /dev/mapper/r 0
	out=$(without_dmsetup "$DMREMAP" remap r 100) || fail "dmremap remap again: $out"
	sector=${out##* }
	# A refused message: exit 1, the target's error and where the reason is; the device is resumed.
	out=$(without_dmsetup "$DMREMAP" remap r 100 2>&1)
	assert_eq "second remap of the same unit: exit" 1 "$?"
	assert_contains "second remap: message" "dmremap: r: the target refused 'remap 100' (" "$out"
	assert_contains "second remap: kernel log" "dmesg | grep dm_remap_v4" "$out"
	dmsetup info r | grep -q '^State: *ACTIVE' || fail "a refused remap left the device suspended"
	# A device dmremap found suspended stays suspended.
	dmsetup suspend r
	out=$(without_dmsetup "$DMREMAP" unremap r 100) || fail "unremap of a suspended device: $out"
	dmsetup info r | grep -q '^State: *SUSPENDED' || fail "dmremap resumed a device it found suspended"
	dmsetup resume r
	out=$(without_dmsetup "$DMREMAP" remap r 100) || fail "dmremap remap a third time: $out"
	sector=${out##* }
	# No such device, and a device of another type.
	out=$(without_dmsetup "$DMREMAP" list nope 2>&1)
	assert_eq "list of a missing device: exit" 1 "$?"
	assert_eq "list of a missing device" "dmremap: there is no device-mapper device named 'nope'; 'dmremap status' lists the dm-remap-v4 devices" "$out"
	dmsetup create lin --table "0 8 zero"
	out=$(without_dmsetup "$DMREMAP" remap lin 0 2>&1)
	assert_eq "remap of a zero device: exit" 1 "$?"
	assert_eq "remap of a zero device" "dmremap: lin is not a dm-remap-v4 device (see 'dmsetup table lin')" "$out"
	dmsetup info lin | grep -q '^State: *ACTIVE' || fail "dmremap suspended a device of another type"
	dmsetup remove lin
	without_dmsetup "$DMREMAP" remove r || fail "dmremap remove"
	dmsetup info r >/dev/null 2>&1 && fail "device still there after dmremap remove"
	# Offline: the spare's metadata as the tool sees it.
	blockdev --flushbufs "$spare"
	"$DMREMAP" check "$spare" >/dev/null || fail "dmremap check of a clean spare: exit $?"
	assert_contains "inspect" "\"spare_sector\":$sector" "$("$DMREMAP" inspect "$spare" --json | tr -d ' \n')"
	"$DMREMAP" create r --main "$main" --spare "$spare" --retries 0 || { fail "create with retries"; return; }
	assert_eq "table with retries" "4 retries 0 main_id loop:$WORK/main.img" "$(dmsetup table r | cut -d' ' -f6-)"
	assert_eq "remap kept" 1 "$(status_field r remapped)"
	"$DMREMAP" remove r
}

# The background scrub through dmremap (DM_TARGET_MSG only, no dmsetup): the table's scrub_rate from create,
# 'scrub rate', 'scrub start --wait' until a pass completes over a main whose dm-dust device fails two sectors
# (each its own 512-byte unit), then 'scrub status --json' and the scrub fields of 'status'.
test_dmremap_scrub_start_wait_and_status() {
	local main spare len out json passes sector rc
	main=$(make_loop main 8) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	without_dmsetup true || { fail "cannot hide dmsetup (unshare/mount in the guest)"; return; }
	without_dmsetup "$DMREMAP" create r --main /dev/mapper/dust --spare "$spare" --scrub-rate 4096 \
		--slow-threshold-ms 1000 || { fail "dmremap create with the scrub options"; return; }
	json=$(without_dmsetup "$DMREMAP" scrub r status --json | tr -d ' \n')
	assert_contains "scrub_rate from the table" '"rate_kib":4096' "$json"
	assert_contains "slow_threshold_ms from the table" '"slow_threshold_ms":1000' "$json"
	assert_contains "total" "\"total\":$len," "$json"
	# Reads of these sectors fail until they are written.
	dmsetup message dust 0 addbadblock 100 >/dev/null || fail "addbadblock 100"
	dmsetup message dust 0 addbadblock 5000 >/dev/null || fail "addbadblock 5000"
	out=$(without_dmsetup "$DMREMAP" scrub r rate 65536) || fail "dmremap scrub rate: $out"
	assert_contains "scrub rate output" "rate 65536 KiB/s" "$out"
	# 8 MiB at 64 MiB/s: an eighth of a second; the timeout only keeps a hung scrub from hanging the run.
	out=$(without_dmsetup timeout 120 "$DMREMAP" scrub r start --wait 2>"$WORK/progress")
	rc=$?
	assert_eq "scrub start --wait: exit (stderr: $(cat "$WORK/progress"))" 0 "$rc"
	assert_contains "scrub start --wait: output" "r: scrub pass " "$out"
	assert_contains "scrub start --wait: findings" " complete: 2 unreadable units found" "$out"
	# stderr is a file, not a terminal: plain progress lines, the last one the end of the pass.
	assert_contains "progress lines" "scrub r: 100% of the device read (8.0 of 8.0 MiB)" "$(cat "$WORK/progress")"
	out=$(without_dmsetup "$DMREMAP" scrub r stop) || fail "dmremap scrub stop: $out"
	assert_contains "scrub stop output" "r: scrub stopped at sector " "$out"
	json=$(without_dmsetup "$DMREMAP" scrub r status --json | tr -d ' \n')
	passes=$(sed -n 's/.*"passes":\([0-9]*\).*/\1/p' <<<"$json")
	[ "${passes:-0}" -ge 1 ] || fail "scrub status --json: passes should be >= 1: $json"
	assert_contains "scrub status --json: found_pending" '"found_pending":2,' "$json"
	assert_contains "scrub status --json: state" '"state":"stopped"' "$json"
	assert_contains "scrub status --json: rate" '"rate_kib":65536' "$json"
	assert_contains "scrub status --json: device" '"device":"r"' "$json"
	# What the scrub found is pending in the target, as a failed read would have left it.
	assert_eq "pending units" 2 "$(status_field r pending)"
	assert_eq "pending entries" "100 pending - -
5000 pending - -" "$(without_dmsetup "$DMREMAP" list r | tail -n +2 | tr -s ' ' | sed 's/ $//')"
	# The status line's scrub keys, through 'dmremap status'.
	sector=$(status_field r scrub_sector)
	json=$(without_dmsetup "$DMREMAP" status r --json | tr -d ' \n')
	assert_contains "status --json: scrub" '"scrub":"stopped"' "$json"
	assert_contains "status --json: scrub_sector" "\"scrub_sector\":$sector," "$json"
	assert_contains "status --json: scrub_percent" "\"scrub_percent\":$((sector * 100 / len))," "$json"
	assert_contains "status --json: health" '"health":' "$json"
	out=$(without_dmsetup "$DMREMAP" status r --prometheus)
	assert_contains "prometheus: scrub_running" 'dmremap_scrub_running{device="r"} 0' "$out"
	assert_contains "prometheus: scrub position" "dmremap_scrub_position_sectors{device=\"r\"} $sector" "$out"
	assert_contains "human status: SCRUB column" "stopped $((sector * 100 / len))%" "$(without_dmsetup "$DMREMAP" status r)"
	# A missing device: exit 1, one sentence.
	out=$(without_dmsetup "$DMREMAP" scrub nope status 2>&1)
	assert_eq "scrub of a missing device: exit" 1 "$?"
	assert_eq "scrub of a missing device" "dmremap: there is no device-mapper device named 'nope'; 'dmremap status' lists the dm-remap-v4 devices" "$out"
	without_dmsetup "$DMREMAP" remove r || fail "dmremap remove"
	dmsetup remove dust
}

# stats, spares and drain through dmremap (DM_TARGET_MSG only, no dmsetup): writes over a failing range of main
# relocate its 16 sectors (512-byte units) to spare 0; a drain moves them to spare 1 and removes spare 0 from
# the setup; a second drain of it and a drain of no member are refused, with the errno in words.
test_dmremap_stats_spares_and_drain() {
	local main s0 s1 m0 out json commits rc
	main=$(make_loop main 16) s0=$(make_loop s0 8) s1=$(make_loop s1 8)
	m0=$(printf '%d:%d' "0x$(stat -L -c %t "$s0")" "0x$(stat -L -c %T "$s0")")
	error_range mainx "$main" 1024 16 || { fail "create the failing main"; return; }
	without_dmsetup true || { fail "cannot hide dmsetup (unshare/mount in the guest)"; return; }
	without_dmsetup "$DMREMAP" create r --main /dev/mapper/mainx --spare "$s0" --spare "$s1" ||
		{ fail "dmremap create with two spares"; return; }
	pattern "$WORK/a" 1024
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write over the failing range"
	# stats: the counters as JSON numbers, the latency histogram of main's completed writes.
	json=$(without_dmsetup "$DMREMAP" stats r --json | tr -d ' \n')
	assert_contains "stats --json: remaps_auto" '"remaps_auto":16,' "$json"
	assert_contains "stats --json: remaps_manual" '"remaps_manual":0,' "$json"
	assert_contains "stats --json: device" '"device":"r",' "$json"
	commits=$(sed -n 's/.*"md_commits":\([0-9]*\).*/\1/p' <<<"$json")
	[ "${commits:-0}" -ge 1 ] || fail "stats --json: md_commits should be >= 1: $json"
	assert_contains "stats --json: histogram" '"main_latency_us":[{"ge":' "$json"
	out=$(without_dmsetup "$DMREMAP" stats r | tr -s ' ')
	assert_contains "stats: counters" "remaps_auto: 16" "$out"
	assert_contains "stats: histogram section" "main device latency (completed I/Os per bucket):" "$out"
	# spares: all 16 on spare 0.
	out=$(without_dmsetup "$DMREMAP" spares r)
	assert_eq "spares: header" "INDEX DEVICE USED TOTAL STATE SAME_DISK" "$(head -n 1 <<<"$out" | tr -s ' ')"
	assert_eq "spares: spare 0" "$m0 16 active no" "$(awk '$1 == 0 {print $2, $3, $5, $6}' <<<"$out")"
	assert_eq "spares: spare 1" "0 active" "$(awk '$1 == 1 {print $3, $5}' <<<"$out")"
	# drain 0: the device stays live, the units move to spare 1, spare 0 is removed from the setup.
	out=$(without_dmsetup "$DMREMAP" drain r 0) || fail "dmremap drain r 0: $out"
	assert_eq "drain output" \
		"drained spare 0 ($m0): 16 units moved; removed from the setup, load a table without it" "$out"
	dmsetup info r | grep -q '^State: *ACTIVE' || fail "dmremap drain left the device suspended"
	out=$(without_dmsetup "$DMREMAP" spares r --json | tr -d ' \n')
	assert_contains "spares --json: spare 0 removed" \
		"{\"index\":0,\"device\":\"$m0\",\"used\":0," "$out"
	assert_contains "spares --json: spare 0 state" '"state":"removed"' "$out"
	assert_contains "spares --json: spare 1 holds them" '{"index":1,' "$out"
	assert_contains "spares --json: spare 1 used" '"used":16,' "$out"
	assert_eq "remapped after the drain" 16 "$(status_field r remapped)"
	same_bytes "data after the drain" "$WORK/a" /dev/mapper/r 0
	# Refusals: exit 1, one sentence with the errno in words and where the reason is.
	dmesg_mark
	out=$(without_dmsetup "$DMREMAP" drain r 0 2>&1)
	rc=$?
	assert_eq "second drain of spare 0: exit" 1 "$rc"
	assert_eq "second drain of spare 0" "dmremap: r: the target refused 'drain 0' (Invalid argument (os error 22)): \
spare 0 was drained and removed already, or 0 is not a member index; the reason is in the kernel log (dmesg | grep \
dm_remap_v4)" "$out"
	assert_contains "second drain: kernel log" "drain of spare 0 refused: the spare was drained and removed already" \
		"$(dmesg_new)"
	dmesg_mark
	out=$(without_dmsetup "$DMREMAP" drain r 7 2>&1)
	rc=$?
	assert_eq "drain of no member: exit" 1 "$rc"
	assert_contains "drain of no member" "dmremap: r: the target refused 'drain 7' (No such device (os error 19)): \
no spare has member index 7 (see 'dmremap spares r')" "$out"
	assert_contains "drain of no member: kernel log" "drain of spare 7 refused: no spare has that member index" \
		"$(dmesg_new)"
	without_dmsetup "$DMREMAP" remove r || fail "dmremap remove"
	dmsetup remove mainx
}
