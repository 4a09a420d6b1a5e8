# Remaps on the spare's metadata are loaded into the remap table and routed: reads and writes of remapped
# units go to their spare units, byte for byte, bios straddling them are split, and reloads keep them.
# The remaps are put on disk with tests/md-fixture, which uses the same format crate as the kernel.

FIXTURE=$DMR_TOP/target/debug/md-fixture

# fixture_add SPARE RECORD...: commits records while no table uses SPARE.
fixture_add() {
	local spare=$1
	shift
	blockdev --flushbufs "$spare"
	"$FIXTURE" add "$spare" "$@"
}

pool_start() { "$FIXTURE" info "$1" | tr ' ' '\n' | sed -n 's/^pool_start=//p'; }

# sector_of FILE N: the Nth 512-byte sector of FILE.
sector_of() { dd if="$1" bs=512 skip="$2" count=1 2>/dev/null; }

# 200 consecutive remapped units and one far away, loaded from the metadata: the run's directory puts the 200
# in one bucket (src/logic/sorted.rs), so lookups in it first narrow it with the lower fence level.
test_a_clustered_loaded_table_is_routed_byte_for_byte() {
	local main spare len pool i recs=()
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" && dmsetup remove r || { fail "format"; return; }
	pool=$(pool_start "$spare")
	[ -n "$pool" ] || { fail "no pool_start from md-fixture"; return; }
	for ((i = 0; i < 200; i++)); do
		recs+=("$((2000 + i)):$i")
	done
	fixture_add "$spare" "${recs[@]}" 131000:200 || { fail "md-fixture add"; return; }
	# Main: its own data over sectors 0..4095 and the last 128 sectors; the spare's units 0..255 their own.
	pattern "$WORK/a" 2048
	write_at "$WORK/a" "$main" 0
	pattern "$WORK/tail" 64
	write_at "$WORK/tail" "$main" $((len - 128))
	pattern "$WORK/s" 128
	write_at "$WORK/s" "$spare" "$pool"
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create with remaps"; return; }
	assert_eq "remapped" 201 "$(status_field r remapped)"
	# Expected: sectors 2000..2199 from spare units 0..199, sector 131000 from unit 200, the rest from main.
	cp "$WORK/a" "$WORK/view"
	dd if="$WORK/s" of="$WORK/view" bs=512 count=200 seek=2000 conv=notrunc 2>/dev/null
	same_bytes "the cluster and around it, read through dm" "$WORK/view" /dev/mapper/r 0
	cp "$WORK/tail" "$WORK/tview"
	dd if="$WORK/s" of="$WORK/tview" bs=512 skip=200 count=1 seek=$((131000 - (len - 128))) conv=notrunc 2>/dev/null
	same_bytes "the far unit, read through dm" "$WORK/tview" /dev/mapper/r $((len - 128))
	# A write across the cluster's end: sectors 2136..2199 land on spare units 136..199, the rest on main.
	pattern "$WORK/w" 64
	write_at "$WORK/w" /dev/mapper/r 2136 || fail "write across the cluster's end"
	same_bytes "written data read back through dm" "$WORK/w" /dev/mapper/r 2136
	dd if="$WORK/w" of="$WORK/w-spare" bs=512 count=64 2>/dev/null
	dd if="$WORK/w" of="$WORK/w-main" bs=512 skip=64 2>/dev/null
	same_bytes "the cluster's part went to the spare" "$WORK/w-spare" "$spare" $((pool + 136))
	same_bytes "the rest went to main" "$WORK/w-main" "$main" 2200
	dmsetup remove r
}

test_loaded_remaps_are_routed_byte_for_byte() {
	local main spare len pool
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" && dmsetup remove r || { fail "format"; return; }
	pool=$(pool_start "$spare")
	[ -n "$pool" ] || { fail "no pool_start from md-fixture"; return; }
	fixture_add "$spare" 100:0 101:5 5000:1 || { fail "md-fixture add"; return; }
	# Known data: main gets pattern A; spare units 0, 5 and 1 get their own sectors.
	pattern "$WORK/a" 4096
	write_at "$WORK/a" "$main" 0
	pattern "$WORK/s0" 1
	head -c 512 "$WORK/s0" >"$WORK/u0"
	tail -c 512 "$WORK/s0" >"$WORK/u5"
	pattern "$WORK/u1k" 1
	head -c 512 "$WORK/u1k" >"$WORK/u1"
	write_at "$WORK/u0" "$spare" "$pool"
	write_at "$WORK/u5" "$spare" $((pool + 5))
	write_at "$WORK/u1" "$spare" $((pool + 1))
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create with remaps"; return; }
	assert_eq "remapped" 3 "$(status_field r remapped)"
	assert_eq "pending" 0 "$(status_field r pending)"
	# Expected view of the first 4 MiB: A with sectors 100 and 101 replaced, and sector 5000.
	cp "$WORK/a" "$WORK/view"
	dd if="$WORK/u0" of="$WORK/view" bs=512 seek=100 conv=notrunc 2>/dev/null
	dd if="$WORK/u5" of="$WORK/view" bs=512 seek=101 conv=notrunc 2>/dev/null
	dd if="$WORK/u1" of="$WORK/view" bs=512 seek=5000 conv=notrunc 2>/dev/null
	same_bytes "4 MiB read through dm" "$WORK/view" /dev/mapper/r 0
	# A 4 KiB bio straddling both remapped units (sectors 96..103), and odd-sized ones around them.
	dd if="$WORK/view" bs=512 skip=96 count=8 of="$WORK/straddle" 2>/dev/null
	same_bytes "straddling read" "$WORK/straddle" /dev/mapper/r 96
	dd if="$WORK/view" bs=512 skip=99 count=3 of="$WORK/odd" 2>/dev/null
	same_bytes "3-sector read across both units" "$WORK/odd" /dev/mapper/r 99

	# A straddling write: remapped sectors land on the spare, the others on main; main's old sectors stay.
	pattern "$WORK/b" 4
	write_at "$WORK/b" /dev/mapper/r 96 || fail "straddling write"
	same_bytes "written data read back through dm" "$WORK/b" /dev/mapper/r 96
	sector_of "$WORK/b" 4 >"$WORK/b4"
	sector_of "$WORK/b" 5 >"$WORK/b5"
	same_bytes "sector 100 went to spare unit 0" "$WORK/b4" "$spare" "$pool"
	same_bytes "sector 101 went to spare unit 5" "$WORK/b5" "$spare" $((pool + 5))
	sector_of "$WORK/a" 100 >"$WORK/a100"
	same_bytes "main's sector 100 untouched" "$WORK/a100" "$main" 100
	sector_of "$WORK/b" 0 >"$WORK/b0"
	same_bytes "sector 96 went to main" "$WORK/b0" "$main" 96

	assert_eq "list" "100 0 $pool active
101 0 $((pool + 5)) active
5000 0 $((pool + 1)) active" "$(dmsetup message r 0 list)"
	assert_eq "list from 101, one entry" "101 0 $((pool + 5)) active" "$(dmsetup message r 0 list 101 1)"

	# A table reload (suspend, load, resume) keeps every remap.
	dmsetup table r | dmsetup reload r && dmsetup resume r || fail "reload"
	assert_eq "remapped after reload" 3 "$(status_field r remapped)"
	same_bytes "straddling write after reload" "$WORK/b" /dev/mapper/r 96
	dmsetup remove r
}

test_pending_units_are_counted_and_read_from_main() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" && dmsetup remove r || { fail "format"; return; }
	fixture_add "$spare" 200:0:pending || { fail "md-fixture add"; return; }
	pattern "$WORK/a" 256
	write_at "$WORK/a" "$main" 0
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "create"; return; }
	assert_eq "pending" 1 "$(status_field r pending)"
	assert_eq "remapped" 0 "$(status_field r remapped)"
	assert_eq "list" "200 - - pending" "$(dmsetup message r 0 list)"
	same_bytes "reads of a pending unit come from main" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
}

test_remap_outside_the_pool_is_refused() {
	local main spare len units
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" && dmsetup remove r || { fail "format"; return; }
	units=$("$FIXTURE" info "$spare" | tr ' ' '\n' | sed -n 's/^pool_units=//p')
	fixture_add "$spare" "7:$units" || { fail "md-fixture add"; return; }
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $spare" 2>/dev/null && { fail "accepted"; dmsetup remove r; }
	assert_contains "kernel log" "Metadata holds a remap entry outside the spare pool" "$(dmesg_new)"
}
