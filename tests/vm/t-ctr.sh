# Constructor and destructor: valid tables, each invalid form with its own message, create/remove cycles.

# expect_ctr_error WHAT TABLE MESSAGE: `dmsetup create` fails, the kernel log names MESSAGE, no device is left.
expect_ctr_error() {
	dmesg_mark
	if dmsetup create bad --table "$2" 2>/dev/null; then
		fail "$1: table '$2' was accepted"
		dmsetup remove bad
		return
	fi
	assert_contains "$1: kernel log" "$TARGET: $3" "$(dmesg_new)"
	dmsetup info bad >/dev/null 2>&1 && { fail "$1: device 'bad' left behind"; dmsetup remove bad; }
}

test_ctr_valid_table() {
	local main spare len
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dmsetup create r --table "0 $len $TARGET $main $spare" || { fail "valid table refused"; return; }
	assert_eq "size of the dm device" "$len" "$(sectors /dev/mapper/r)"
	dmsetup remove r || fail "remove"
	# An empty optional-argument block is valid, and a shorter target too.
	dmsetup create r --table "0 $((len / 2)) $TARGET $main $spare 0" || fail "'<#opt_args>' 0 refused"
	dmsetup remove r
}

test_ctr_errors() {
	local main spare len big4k small4k
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	expect_ctr_error "no arguments" "0 $len $TARGET" "Missing arguments"
	expect_ctr_error "one argument" "0 $len $TARGET $main" "Missing spare device argument"
	expect_ctr_error "three bare arguments" "0 $len $TARGET $main $spare extra" \
		"Invalid optional argument count"
	expect_ctr_error "missing main device" "0 $len $TARGET /dev/does-not-exist $spare" \
		"Cannot open main device"
	expect_ctr_error "missing spare device" "0 $len $TARGET $main /dev/does-not-exist" \
		"Cannot open spare device"
	expect_ctr_error "length larger than main" "0 $((len + 8)) $TARGET $main $spare" \
		"Target length exceeds the main device"
	expect_ctr_error "optional count too large" "0 $len $TARGET $main $spare 2 retries" \
		"Optional argument count exceeds the arguments given"
	expect_ctr_error "arguments after the options" "0 $len $TARGET $main $spare 0 retries" \
		"Unexpected arguments after the optional arguments"
	expect_ctr_error "unknown option" "0 $len $TARGET $main $spare 1 frobnicate" \
		"Unknown optional argument"
	expect_ctr_error "spare is main" "0 $len $TARGET $main $main" "Spare device is the main device"
	big4k=$(make_loop main4k 64 4096) small4k=$(make_loop spare4k 16 4096)
	expect_ctr_error "logical block size mismatch" "0 $len $TARGET $main $small4k" \
		"Main and spare devices have different logical block sizes"
	expect_ctr_error "length not a multiple of the unit" "0 7 $TARGET $big4k $small4k" \
		"Target length is not a multiple of the logical block size"
	[ -z "$(dmsetup ls --target $TARGET 2>/dev/null | grep -v 'No devices')" ] || fail "devices left: $(dmsetup ls)"
}

test_ctr_create_remove_cycles() {
	local main spare len i
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	# One cycle would show a leaked reference; a dozen shows one that depends on what came before.
	for i in $(seq 12); do
		dmsetup create "c$i" --table "0 $len $TARGET $main $spare" || { fail "create cycle $i"; return; }
		dmsetup remove "c$i" || { fail "remove cycle $i"; return; }
	done
	# A failing constructor must release what it took too.
	for i in $(seq 4); do
		dmsetup create bad --table "0 $((len + 8)) $TARGET $main $spare" 2>/dev/null && dmsetup remove bad
	done
	# Devices still usable and not held: losetup -d would fail on a leaked reference (busy).
	losetup -d "$main" "$spare" || fail "loop devices still held after the cycles"
}

test_module_load_unload_cycles() {
	local i
	for i in $(seq 2); do
		unload_modules || { fail "unload cycle $i"; return; }
		load_modules || { fail "load cycle $i"; return; }
	done
	dmsetup targets | grep -q "^$TARGET " || fail "target not registered after the cycles"
}
