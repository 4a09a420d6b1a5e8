# The error path under real load: a filesystem and concurrent verified I/O over a main device whose sectors
# fail writes (dm-dust), with manual remaps going on at the same time.

# dust_over: tests/vm/lib.sh; bad_blocks: t-error-path.sh (the runner sources every file).

# bad_sectors_of FILE COUNT DEV: about COUNT sectors inside the data of FILE on the filesystem on DEV.
bad_sectors_of() {
	local blocks n step i
	blocks=($(debugfs -R "blocks $1" "$3" 2>/dev/null))
	n=${#blocks[@]}
	[ "$n" -gt 0 ] || return 1
	step=$(((n + $2 - 1) / $2))
	for ((i = 0; i < n; i += step)); do
		# One sector of the 4 KiB block, a different one each time.
		echo $((blocks[i] * 8 + i % 8))
	done
}

test_ext4_over_failing_writes_keeps_every_file() {
	local main spare len f sums s bad=()
	main=$(make_loop main 64) spare=$(make_loop spare 16)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	mkfs.ext4 -q -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/r || { fail "mkfs"; return; }
	mkdir -p "$WORK/mnt"
	mount /dev/mapper/r "$WORK/mnt" || { fail "mount"; return; }
	for f in 1 2 3 4; do
		head -c 2M /dev/urandom >"$WORK/mnt/f$f"
	done
	sync
	# Sectors under the files fail every write from now on; rewrite the files in place, and add new ones.
	for f in 1 2 3 4; do
		s=$(bad_sectors_of "/f$f" 6 /dev/mapper/r) || { fail "no blocks for f$f"; return; }
		bad+=($s)
	done
	bad_blocks dust 255 "${bad[@]}"
	for f in 1 2 3 4; do
		head -c 2M /dev/urandom | dd of="$WORK/mnt/f$f" bs=1M conv=notrunc,fsync 2>/dev/null ||
			fail "rewrite of f$f"
		head -c 1M /dev/urandom >"$WORK/mnt/g$f"
	done
	sync
	(cd "$WORK/mnt" && sha256sum f* g*) >"$WORK/sums"
	umount "$WORK/mnt"
	assert_eq "every bad sector relocated" "${#bad[@]}" "$(status_field r remapped)"
	assert_eq "write_errors" 0 "$(status_field r write_errors)"
	assert_eq "read_errors" 0 "$(status_field r read_errors)"
	e2fsck -fn /dev/mapper/r >"$WORK/fsck" 2>&1 || { fail "fsck: $(tail -3 "$WORK/fsck")"; }
	# A fresh mapping from the metadata alone, then every checksum.
	dmsetup remove r
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "recreate"; return; }
	mount /dev/mapper/r "$WORK/mnt" || { fail "remount"; return; }
	(cd "$WORK/mnt" && sha256sum -c --quiet "$WORK/sums") || fail "checksums after remount"
	umount "$WORK/mnt"
	dmsetup remove r
	dmsetup remove dust
}

test_fio_verify_with_failing_writes_and_live_remaps() {
	local main spare len fio_pid i s out
	main=$(make_loop main 64) spare=$(make_loop spare 32)
	len=$(sectors "$main")
	dust_over "$main" dust || { fail "create dust"; return; }
	dmsetup create r --table "0 $len $TARGET /dev/mapper/dust $spare" || { fail "create"; return; }
	# 40 sectors spread over the 8 MiB that fio writes (two jobs of 4 MiB; a random write of a job covers each of
	# its blocks once) fail every write.
	bad_blocks dust 255 $(seq 300 400 16000)
	fio --name=v --filename=/dev/mapper/r --direct=1 --ioengine=psync --rw=randwrite --bs=4k \
		--size=4M --numjobs=2 --offset_increment=4M --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --verify_state_save=0 --group_reporting --output="$WORK/fio.out" &
	fio_pid=$!
	# Meanwhile, move units above the fio range (sector 32768 on) to the spare by hand.
	for ((i = 0; i < 8; i++)); do
		s=$((32768 + i * 1000))
		dmsetup suspend r && out=$(dmsetup message r 0 remap $s)
		dmsetup resume r
		case "$out" in "remapped $s to spare 0 sector "*) ;; *) fail "remap $s during fio: '$out'" ;; esac
	done
	wait $fio_pid || fail "fio verify failed: $(grep -i -m3 'verify\|err' "$WORK/fio.out")"
	assert_eq "remapped" $((40 + 8)) "$(status_field r remapped)"
	assert_eq "write_errors" 0 "$(status_field r write_errors)"
	assert_eq "read_errors" 0 "$(status_field r read_errors)"
	dmsetup remove r
	dmsetup remove dust
}
