# The spare's metadata region: formatted when blank, loaded without writing, a damaged copy repaired, and
# corrupt, foreign or other-setup metadata refused with the spare left untouched.

MAGIC=DMR4
COPY1_OFFSET=32768 # superblock copy 1 is metadata block 8

# region_sum DEV: checksum of the first 8 MiB (superblocks, checkpoints and journal of the test spares).
region_sum() { head -c $((8 * 1024 * 1024)) "$1" | sha256sum | cut -d' ' -f1; }

# table_sum DEV: region_sum without the scrub-state blocks 1 and 9, which hold the shutdown mark: a table
# that goes live marks them dirty and its removal clean, even when its metadata does not change.
table_sum() {
	{
		dd if="$1" bs=4096 count=1
		dd if="$1" bs=4096 skip=2 count=7
		dd if="$1" bs=4096 skip=10 count=2038
	} 2>/dev/null | sha256sum | cut -d' ' -f1
}

# flip_byte DEV OFFSET: inverts one byte in place.
flip_byte() {
	local b
	b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# create_r MAIN SPARE: a dm-remap-v4 device named r over the whole of MAIN.
create_r() { dmsetup create r --table "0 $(sectors "$1") $TARGET $1 $2"; }

# expect_refused WHAT MAIN SPARE MESSAGE: creation fails with MESSAGE and the spare's region is unchanged.
expect_refused() {
	local before
	before=$(region_sum "$3")
	dmesg_mark
	if create_r "$2" "$3" 2>/dev/null; then
		fail "$1: accepted"
		dmsetup remove r
		return
	fi
	assert_contains "$1: kernel log" "$TARGET: $4" "$(dmesg_new)"
	assert_eq "$1: spare region unchanged" "$before" "$(region_sum "$3")"
}

test_metadata_blank_spare_is_formatted() {
	local main spare
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	dmesg_mark
	create_r "$main" "$spare" || { fail "create"; return; }
	assert_contains "kernel log" "formatted the metadata region" "$(dmesg_new)"
	assert_eq "magic of copy 0" "$MAGIC" "$(head -c 4 "$spare")"
	assert_eq "magic of copy 1" "$MAGIC" "$(tail -c +$((COPY1_OFFSET + 1)) "$spare" | head -c 4)"
	assert_eq "metadata state" ok "$(status_field r metadata)"
	assert_eq "metadata version" 1 "$(status_field r metadata_version)"
	dmsetup remove r
}

test_metadata_reload_does_not_write() {
	local main spare before
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	create_r "$main" "$spare" && dmsetup remove r || { fail "first create"; return; }
	before=$(table_sum "$spare")
	dmesg_mark
	create_r "$main" "$spare" || { fail "second create"; return; }
	dmsetup remove r
	case "$(dmesg_new)" in *"formatted the metadata region"*) fail "formatted again" ;; esac
	assert_eq "region after a clean load" "$before" "$(table_sum "$spare")"
}

test_metadata_damaged_copy_is_repaired() {
	local main spare offset
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	create_r "$main" "$spare" && dmsetup remove r || { fail "first create"; return; }
	for offset in 100 $((COPY1_OFFSET + 100)); do
		flip_byte "$spare" "$offset"
		dmesg_mark
		create_r "$main" "$spare" || { fail "copy at $offset damaged: refused"; return; }
		assert_eq "repaired copies (damage at $offset)" 1 "$(status_field r metadata_repaired)"
		assert_eq "metadata state" ok "$(status_field r metadata)"
		assert_contains "kernel log" "1 damaged metadata superblock copies, 1 rewritten" "$(dmesg_new)"
		dmsetup remove r
		create_r "$main" "$spare" || { fail "reload after repair"; return; }
		assert_eq "repairs needed after the repair" 0 "$(status_field r metadata_repaired)"
		dmsetup remove r
	done
}

test_metadata_all_copies_corrupt_is_refused() {
	local main spare
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	create_r "$main" "$spare" && dmsetup remove r || { fail "first create"; return; }
	flip_byte "$spare" 100
	flip_byte "$spare" $((COPY1_OFFSET + 100))
	expect_refused "both copies corrupt" "$main" "$spare" "all metadata superblock copies are corrupt"
}

test_metadata_foreign_data_is_refused() {
	local main spare
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	head -c 4096 /dev/urandom | dd of="$spare" conv=notrunc 2>/dev/null
	expect_refused "random data" "$main" "$spare" "metadata region holds foreign data"
}

test_format_foreign_formats_foreign_data_but_never_our_metadata() {
	local main spare other before len
	main=$(make_loop main 64) spare=$(make_loop spare 16) other=$(make_loop other 16)
	len=$(sectors "$main")
	head -c 65536 /dev/urandom | dd of="$spare" conv=notrunc 2>/dev/null
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $spare 1 format_foreign" || { fail "create"; return; }
	assert_contains "kernel log" "holds foreign data; format_foreign: formatting it" "$(dmesg_new)"
	assert_eq "table echoes the option" "1 format_foreign" "$(dmsetup table r | cut -d' ' -f6-)"
	assert_eq "magic written" "$MAGIC" "$(head -c 4 "$spare")"
	pattern "$WORK/a" 64
	write_at "$WORK/a" /dev/mapper/r 0 || fail "write"
	same_bytes "data" "$WORK/a" /dev/mapper/r 0
	dmsetup remove r
	# Now ours: it loads without the option, and the option does not format it again.
	before=$(table_sum "$spare")
	create_r "$main" "$spare" && dmsetup remove r || fail "load without the option"
	dmsetup create r --table "0 $len $TARGET $main $spare 1 format_foreign" && dmsetup remove r ||
		fail "load with the option"
	assert_eq "loads write nothing but the shutdown mark" "$before" "$(table_sum "$spare")"
	# A spare of another setup and a damaged one are refused with the option, and left alone.
	create_r "$main" "$other" && dmsetup remove r || { fail "second setup"; return; }
	before=$(region_sum "$other")
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $spare 3 format_foreign spare $other" 2>/dev/null &&
		{ fail "two setups accepted"; dmsetup remove r; }
	assert_contains "other setup: kernel log" "another dm-remap setup" "$(dmesg_new)"
	assert_eq "other setup unchanged" "$before" "$(region_sum "$other")"
	flip_byte "$other" 100
	flip_byte "$other" $((COPY1_OFFSET + 100))
	before=$(region_sum "$other")
	dmesg_mark
	dmsetup create r --table "0 $len $TARGET $main $other 1 format_foreign" 2>/dev/null &&
		{ fail "damaged metadata accepted"; dmsetup remove r; }
	assert_contains "damaged: kernel log" "all metadata superblock copies are corrupt" "$(dmesg_new)"
	assert_eq "damaged unchanged" "$before" "$(region_sum "$other")"
}

test_metadata_of_another_main_is_refused() {
	local main other spare
	main=$(make_loop main 64) other=$(make_loop other 32) spare=$(make_loop spare 16)
	create_r "$main" "$spare" && dmsetup remove r || { fail "first create"; return; }
	expect_refused "spare of another main" "$other" "$spare" "spare was set up for a different main device"
}
