# Stress: writers with verification over failing sectors, remap/unremap messages and table reloads, all at
# once for a bounded time, then module unload/load cycles before the map is loaded again. The data must verify, no write may fail, and the kernel log must
# stay free of lockdep, KASAN, kmemleak and atomic-sleep reports (scripts/vm-run checks it).
# CI runs it for DMR_STRESS_SECONDS (default 40); `scripts/stress [seconds]` runs it longer.

# stress_churn DEV UNTIL: until the time UNTIL (seconds since the epoch), over and over: a remap and an
# unremap of a unit in the stable first 8 MiB, a reload of the same table, and status and stats reads.
# Counts what it did in $WORK/churn; failures go to $WORK/churn.err.
stress_churn() {
	local dev=$1 until=$2 table i=0 sector remap=0 reload=0
	table=$(dmsetup table "$dev")
	while [ "$(date +%s)" -lt "$until" ]; do
		i=$((i + 1))
		sector=$(((i * 8) % 16384))
		if remap_msg "$dev" "$sector" >/dev/null; then
			remap=$((remap + 1))
			unremap_msg "$dev" "$sector" >/dev/null || echo "unremap $sector failed" >>"$WORK/churn.err"
		else
			echo "remap $sector failed" >>"$WORK/churn.err"
		fi
		# Suspended first: a table loaded while the live one still commits is refused at resume (ESTALE).
		if dmsetup suspend "$dev" && dmsetup reload "$dev" --table "$table" && dmsetup resume "$dev"; then
			reload=$((reload + 1))
		else
			echo "reload $i failed" >>"$WORK/churn.err"
			# Back to the live table, or the writers would wait forever.
			dmsetup clear "$dev" 2>/dev/null
			dmsetup resume "$dev" 2>/dev/null
		fi
		dmsetup status "$dev" >/dev/null && dmsetup message "$dev" 0 stats >/dev/null ||
			echo "status $i failed" >>"$WORK/churn.err"
	done
	echo "rounds=$i remaps=$remap reloads=$reload" >"$WORK/churn"
}

test_stress_writers_write_errors_messages_and_reloads() {
	local loop spare len secs=${DMR_STRESS_SECONDS:-40} until fio_pid remapped b t0=$SECONDS t1
	loop=$(make_loop main 32) spare=$(make_loop spare 16)
	len=$(sectors "$loop")
	# Main: 24 sectors in the writers' range fail every write (and every read until written, which a
	# relocated unit never is on main). Each 4 KiB write over one fails, and its unit moves to the spare.
	dust_over "$loop" bad || { fail "create main"; return; }
	for ((b = 0; b < 24; b++)); do
		dmsetup message bad 0 addbadblock $((16384 + b * 661)) 255 >/dev/null || fail "addbadblock"
	done
	dmsetup create r --table "0 $len $TARGET /dev/mapper/bad $spare" || { fail "create"; return; }
	pattern "$WORK/ref" 8192
	write_at "$WORK/ref" /dev/mapper/r 0 || fail "reference write"
	# Four writers with verification, 2 MiB each from 8 MiB on; each reads back every 32 blocks it wrote.
	fio --name=stress --filename=/dev/mapper/r --direct=1 --rw=randwrite --bs=4k --offset=8m --size=2m \
		--offset_increment=2m --numjobs=4 --thread --ioengine=psync --verify=crc32c --verify_fatal=1 \
		--verify_backlog=32 --do_verify=1 --loops=1000000 --time_based --runtime="$secs" >"$WORK/fio.log" 2>&1 &
	fio_pid=$!
	t1=$SECONDS
	until=$(($(date +%s) + secs))
	stress_churn r "$until"
	wait $fio_pid || fail "fio with verification: $(grep -iE 'err|verify' "$WORK/fio.log" | head -5)"
	echo "    churn: $(cat "$WORK/churn"); remapped=$(status_field r remapped)" \
		"md_commits=$(dmsetup message r 0 stats | sed -n 's/^md_commits=//p');" \
		"set-up $((t1 - t0)) s, stress $((SECONDS - t1)) s"
	[ -s "$WORK/churn.err" ] && fail "churn: $(head -3 "$WORK/churn.err")"
	assert_eq "write_errors" 0 "$(status_field r write_errors)"
	assert_eq "read_errors" 0 "$(status_field r read_errors)"
	assert_eq "state" ok "$(status_field r state)"
	[ "$(status_field r remapped)" -ge 1 ] || fail "no unit was relocated: the stress missed the error path"
	same_bytes "reference" "$WORK/ref" /dev/mapper/r 0
	# Everything was committed: after two module unload/load cycles a fresh table loads the same map and data.
	remapped=$(status_field r remapped)
	dmsetup remove r
	for b in 1 2; do
		unload_modules && load_modules || { fail "module cycle $b"; return; }
	done
	dmsetup create r --table "0 $len $TARGET /dev/mapper/bad $spare" || { fail "recreate"; return; }
	assert_eq "remapped after recreate" "$remapped" "$(status_field r remapped)"
	same_bytes "reference after recreate" "$WORK/ref" /dev/mapper/r 0
	dmsetup remove r
	dmsetup remove bad
}
