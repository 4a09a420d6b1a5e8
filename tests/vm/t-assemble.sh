# dmremap scan / assemble: two setups on loop devices are found again from their metadata after the loop
# devices are detached and re-attached in another order, and recreated with the right main and spares.

DMREMAP=$DMR_TOP/target/debug/dmremap
UNIT=$DMR_TOP/tools/dmremap/systemd/dmremap-assemble.service

source "$DMR_TOP/tests/vm/dmremap-lib.sh"

numbers() { # DEV: its major:minor in decimal
	local t
	read -ra t <<<"$(stat -L -c '%t %T' "$1")"
	printf '%d:%d\n' "0x${t[0]}" "0x${t[1]}"
}

# json_get JSON PYTHON-EXPR...: evaluates each EXPR with `d` the parsed JSON; prints each result on a line.
json_get() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [print(eval(e)) for e in sys.argv[2:]]' "$@"
}

# attach NAME: re-attaches $WORK/NAME.img; prints /dev/loopN.
attach() { losetup --find --show "$WORK/$1.img"; }

test_scan_and_assemble_two_setups_after_reattachment() {
	local ma sa0 sa1 mb sb len out json ua ub rc
	# Equal-sized mains: only their identifiers (loop:<backing file>) tell the setups apart.
	ma=$(make_loop mainA 16) sa0=$(make_loop spareA0 4) sa1=$(make_loop spareA1 4)
	mb=$(make_loop mainB 16) sb=$(make_loop spareB 4)
	len=$(sectors "$ma")
	"$DMREMAP" create a --main "$ma" --spare "$sa0" --spare "$sa1" >/dev/null || { fail "create a"; return; }
	"$DMREMAP" create b --main "$mb" --spare "$sb" >/dev/null || { fail "create b"; return; }
	assert_contains "main_id passed to the kernel" "main_id loop:$WORK/mainA.img" "$(dmsetup table a)"
	# Old data everywhere, three units moved to the spares, then new data: the moved units' new bytes
	# exist only on the spares, so a wrong or missing spare after reassembly shows old bytes.
	pattern "$WORK/old" 256
	pattern "$WORK/newA" 256
	pattern "$WORK/newB" 256
	write_at "$WORK/old" /dev/mapper/a 0
	write_at "$WORK/old" /dev/mapper/b 0
	remap_msg a 100 >/dev/null || fail "remap a 100"
	remap_msg a 300 >/dev/null || fail "remap a 300"
	remap_msg b 200 >/dev/null || fail "remap b 200"
	write_at "$WORK/newA" /dev/mapper/a 0
	write_at "$WORK/newB" /dev/mapper/b 0
	assert_eq "remapped a" 2 "$(status_field a remapped)"
	assert_eq "remapped b" 1 "$(status_field b remapped)"

	# While active: reported as such, and assemble leaves them alone.
	out=$("$DMREMAP" scan) || fail "scan while active: exit $?"
	assert_contains "scan: active a" "active as a (not assembled again)" "$out"
	assert_contains "scan: active b" "active as b (not assembled again)" "$out"
	out=$("$DMREMAP" assemble --all) || fail "assemble --all while active: exit $?"
	assert_contains "assemble skips active" "not assembled again" "$out"

	"$DMREMAP" remove a >/dev/null && "$DMREMAP" remove b >/dev/null || { fail "remove"; return; }
	[ -e /dev/mapper/a ] && fail "/dev/mapper/a left behind by remove"
	losetup -D
	# Another order, so every device gets another loop number than before.
	sb=$(attach spareB) sa1=$(attach spareA1) mb=$(attach mainB) sa0=$(attach spareA0) ma=$(attach mainA)

	json=$("$DMREMAP" scan --json) || { fail "scan --json: exit $?"; return; }
	# One python for every value (each program costs about a second in the guest): A is the setup of two
	# spares, B the one of one spare.
	local -a v
	mapfile -t v < <(json_get "$json" 'len(d["setups"])' \
		'[s["uuid"] for s in d["setups"] if s["member_count"] == 2][0]' \
		'[s["uuid"] for s in d["setups"] if s["member_count"] == 1][0]')
	assert_eq "setups found" 2 "${v[0]}"
	ua=${v[1]} ub=${v[2]}
	local sel_a="[s for s in d['setups'] if s['uuid'] == '$ua'][0]"
	local sel_b="[s for s in d['setups'] if s['uuid'] == '$ub'][0]"
	mapfile -t v < <(json_get "$json" "$sel_a['main']['device'] + ' ' + $sel_a['main']['match']" \
		"' '.join(str(x['member_index']) + ' ' + x['device'] for x in $sel_a['spares'])" \
		"$sel_a['decision']" "$sel_b['main']['device']" \
		"' '.join(str(x['member_index']) + ' ' + x['device'] for x in $sel_b['spares'])" \
		"$sel_a['confidence']")
	assert_eq "A main" "$ma match" "${v[0]}"
	assert_eq "A spares" "0 $sa0 1 $sa1" "${v[1]}"
	assert_eq "A decision" "assemble" "${v[2]}"
	assert_eq "B main" "$mb" "${v[3]}"
	assert_eq "B spares" "0 $sb" "${v[4]}"
	# Removed cleanly (dmsetup remove: postsuspend writes the clean mark), WWN/serial matching: nothing missing.
	assert_eq "A confidence" 100 "${v[5]}"

	out=$("$DMREMAP" assemble --all) || fail "assemble --all: exit $?"
	assert_contains "assembled A" "assembled /dev/mapper/remap-$ua" "$out"
	assert_contains "assembled B" "assembled /dev/mapper/remap-$ub" "$out"
	assert_eq "A table devices" "0 $len $TARGET $(numbers "$ma") $(numbers "$sa0")" \
		"$(dmsetup table "remap-$ua" | cut -d' ' -f1-5)"
	assert_contains "A second spare" "spare $(numbers "$sa1")" "$(dmsetup table "remap-$ua")"
	assert_eq "B table devices" "0 $len $TARGET $(numbers "$mb") $(numbers "$sb")" \
		"$(dmsetup table "remap-$ub" | cut -d' ' -f1-5)"
	assert_eq "A dm uuid" "DMREMAP-$ua" "$(dmsetup info -c --noheadings -o uuid "remap-$ua")"
	for dev in "remap-$ua" "remap-$ub"; do
		assert_eq "$dev state" ok "$(status_field "$dev" state)"
		assert_eq "$dev metadata" ok "$(status_field "$dev" metadata)"
		assert_eq "$dev pending" 0 "$(status_field "$dev" pending)"
	done
	assert_eq "A remapped after assemble" 2 "$(status_field "remap-$ua" remapped)"
	assert_eq "B remapped after assemble" 1 "$(status_field "remap-$ub" remapped)"
	same_bytes "A data" "$WORK/newA" "/dev/mapper/remap-$ua" 0
	same_bytes "B data" "$WORK/newB" "/dev/mapper/remap-$ub" 0
	# A second assemble finds both active.
	out=$("$DMREMAP" assemble "$ua") || fail "assemble of an active setup: exit $?"
	assert_contains "assemble again" "already active as remap-$ua" "$out"

	# A missing spare: scan says which, assemble refuses.
	"$DMREMAP" remove "remap-$ua" >/dev/null || fail "remove remap-$ua"
	losetup -d "$sa1"
	out=$("$DMREMAP" scan) || fail "scan with a spare missing: exit $?"
	assert_contains "missing spare reported" "missing:     spare 1" "$out"
	out=$("$DMREMAP" assemble "$ua" 2>&1)
	rc=$?
	assert_eq "assemble without spare 1: exit" 1 "$rc"
	assert_contains "assemble without spare 1: reason" "member missing: spare 1 not found" "$out"
	dmsetup info "remap-$ua" >/dev/null 2>&1 && fail "a device was created without spare 1"

	# A spare of setup A offered with the main of setup B: refused by scan/assemble, and by the kernel.
	"$DMREMAP" remove "remap-$ub" >/dev/null || fail "remove remap-$ub"
	out=$("$DMREMAP" assemble --all --device "$mb" --device "$sa0" 2>&1)
	rc=$?
	assert_eq "A's spare with B's main: exit" 1 "$rc"
	assert_contains "A's spare with B's main: reason" \
		"main device WWN/serial differs from the recorded one: recorded loop:$WORK/mainA.img, $mb has loop:$WORK/mainB.img" "$out"
	out=$("$DMREMAP" create x --main "$ma" --spare "$sb" 2>&1)
	rc=$?
	assert_eq "kernel: B's spare under A's main: exit" 1 "$rc"
	assert_contains "kernel: reason" "main device identifier differs from the recorded one" "$out"
	dmsetup info x >/dev/null 2>&1 && fail "device x left behind after a refused table"
	# Nothing was written to the refused spares: B still assembles, with its data.
	"$DMREMAP" assemble "$ub" --name bb >/dev/null || fail "assemble B again"
	same_bytes "B data again" "$WORK/newB" /dev/mapper/bb 0
}

# The shutdown mark: a device removed cleanly scores 100; a copy of its spare taken while it was live (what a
# power cut leaves: marked dirty when the table went live) scores less and says why. Cheap: one setup, no I/O.
test_a_clean_shutdown_scores_100_and_a_power_cut_does_not() {
	local main spare cut out
	main=$(make_loop main 16) spare=$(make_loop spare 4)
	"$DMREMAP" create r --main "$main" --spare "$spare" >/dev/null || { fail "create"; return; }
	cp "$WORK/spare.img" "$WORK/cut.img"
	"$DMREMAP" remove r >/dev/null || { fail "remove"; return; }
	out=$("$DMREMAP" scan "$main" "$spare") || fail "scan after the clean shutdown: exit $?"
	assert_contains "clean: confidence" "confidence:  100 (threshold 70)" "$out"
	assert_contains "clean: shutdown" "shutdown:    clean" "$out"
	losetup -d "$spare"
	cut=$(losetup --find --show "$WORK/cut.img")
	out=$("$DMREMAP" scan "$main" "$cut") || fail "scan after the power cut: exit $?"
	assert_contains "power cut: confidence" "confidence:  95 (threshold 70)" "$out"
	assert_contains "power cut: shutdown" "shutdown:    not clean" "$out"
	assert_contains "power cut: the spare is dirty" "superblock copies current, shutdown dirty)" "$out"
	assert_contains "power cut: still assembled" "verdict:     assemble" "$out"
	assert_contains "inspect: dirty" "shutdown:          dirty (not shut down cleanly)" "$("$DMREMAP" inspect "$cut")"
}

# What the device-mapper devices are: names, uuids, tables, open counts, event numbers, attributes
# (suspended or not), and each dm-remap-v4 device's status line but its read counter: assemble's scan reads
# the superblock area of every block device, the assembled devices included (one could be a spare).
dm_state() {
	dmsetup info -c --noheadings --sort name -o name,uuid,open,segments,events,attr
	dmsetup table | sort
	dmsetup status --target "$TARGET" | sed 's/ reads=[0-9]*//' | sort
}

# The boot service (tools/dmremap/systemd/dmremap-assemble.service) runs its ExecStart line; the guest has no
# systemd, so the test runs that exact line, with the package's /usr/sbin/dmremap replaced by the build's.
test_boot_service_command_assembles_once_and_is_idempotent() {
	local exec cmd main spare out before after rc uuid
	exec=$(sed -n 's/^ExecStart=//p' "$UNIT")
	assert_eq "ExecStart" "/usr/sbin/dmremap assemble --all" "$exec"
	cmd=${exec/#\/usr\/sbin\/dmremap/$DMREMAP}
	[ "$cmd" != "$exec" ] || { fail "ExecStart does not run /usr/sbin/dmremap"; return; }
	main=$(make_loop main 16) spare=$(make_loop spare 4)
	# Nothing to assemble: success, and it says so.
	out=$(without_dmsetup $cmd) || fail "ExecStart with no setup: exit $?"
	assert_eq "ExecStart with no setup" "no dm-remap-v4 setups found" "$out"
	"$DMREMAP" create r --main "$main" --spare "$spare" >/dev/null || { fail "create"; return; }
	pattern "$WORK/a" 256
	write_at "$WORK/a" /dev/mapper/r 0
	"$DMREMAP" remap r 64 >/dev/null || fail "remap r 64"
	uuid=$("$DMREMAP" inspect "$spare" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["superblock"]["uuid"])')
	"$DMREMAP" remove r >/dev/null || { fail "remove"; return; }

	# First run (the boot): assembles the setup.
	out=$(without_dmsetup $cmd)
	rc=$?
	assert_eq "first run: exit" 0 "$rc"
	assert_contains "first run" "assembled /dev/mapper/remap-$uuid" "$out"
	assert_eq "first run: remapped" 1 "$(status_field "remap-$uuid" remapped)"
	same_bytes "first run: data" "$WORK/a" "/dev/mapper/remap-$uuid" 0
	before=$(dm_state)
	blockdev --flushbufs "$spare"
	local meta_before meta_after
	meta_before=$("$DMREMAP" inspect "$spare" --json)

	# Second run (the next device event): succeeds and changes nothing.
	out=$(without_dmsetup $cmd)
	rc=$?
	assert_eq "second run: exit" 0 "$rc"
	assert_eq "second run" "setup $uuid is already active as remap-$uuid; not assembled again" "$out"
	after=$(dm_state)
	assert_eq "second run: device-mapper state" "$before" "$after"
	blockdev --flushbufs "$spare"
	meta_after=$("$DMREMAP" inspect "$spare" --json)
	assert_eq "second run: spare metadata" "$meta_before" "$meta_after"
	same_bytes "second run: data" "$WORK/a" "/dev/mapper/remap-$uuid" 0
}
