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
	assert_eq "list of a missing device" "dmremap: there is no device-mapper device named 'nope'; see 'dmsetup ls'" "$out"
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
