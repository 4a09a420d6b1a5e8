# dmremap, the administration tool (tools/dmremap), against the real target.

DMREMAP=$DMR_TOP/target/debug/dmremap

test_dmremap_drives_a_device_through_its_life() {
	local main spare len out mm sm sector
	main=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	mm=$(stat -L -c '%t %T' "$main" | xargs -n1 printf '%d\n' | paste -sd:)
	sm=$(stat -L -c '%t %T' "$spare" | xargs -n1 printf '%d\n' | paste -sd:)
	"$DMREMAP" create r --main "$main" --spare "$spare" || { fail "dmremap create"; return; }
	# dmremap passes the main's identifier (its backing file, for a loop device); the kernel echoes it.
	assert_eq "table" "0 $len $TARGET $mm $sm 2 main_id loop:$WORK/main.img" "$(dmsetup table r)"
	out=$("$DMREMAP" status r --json | tr -d ' \n')
	assert_contains "json" '"remapped":0' "$out"
	assert_contains "json health of a fresh device" '"health":100' "$out"
	pattern "$WORK/a" 64
	write_at "$WORK/a" /dev/mapper/r 0
	out=$("$DMREMAP" remap r 100) || fail "dmremap remap"
	assert_contains "remap output" "remapped 100 to spare 0 sector " "$out"
	sector=${out##* }
	dmsetup info r | grep -q '^State: *ACTIVE' || fail "dmremap remap left the device suspended"
	assert_contains "list" "100" "$("$DMREMAP" list r)"
	assert_contains "prometheus" 'dmremap_remapped_units{device="r"} 1' "$("$DMREMAP" status r --prometheus)"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	"$DMREMAP" remap r 100 >/dev/null 2>&1 && fail "second remap of the same unit accepted"
	"$DMREMAP" remove r || fail "dmremap remove"
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
