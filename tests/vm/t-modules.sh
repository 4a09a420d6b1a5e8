# Module packaging: the core imports the helpers' symbols, modprobe resolves them, the alias auto-loads.

test_core_depends_on_helpers() {
	local deps
	deps=$(modinfo -F depends "$KO_CORE")
	for m in dm-remap-v4-metadata dm-remap-v4-spare-pool dm-remap-v4-setup-reassembly; do
		case ",$deps," in *",$m,"*) ;; *) fail "modinfo depends '$deps' lacks $m" ;; esac
	done
	assert_eq "alias" "dm-dm-remap-v4" "$(modinfo -F alias "$KO_CORE")"
}

test_core_alone_fails_with_unknown_symbol() {
	unload_modules || { fail "unload"; return; }
	dmesg_mark
	insmod "$KO_CORE" 2>/dev/null && fail "core loaded without its helpers"
	assert_contains "kernel log" "Unknown symbol" "$(dmesg_new)"
	lsmod | grep -q '^dm_remap_v4 ' && rmmod dm_remap_v4
}

test_modprobe_pulls_in_helpers() {
	local root=${DMR_MODROOT:-}
	[ -n "$root" ] && [ -d "$root/lib/modules/$(uname -r)" ] || {
		fail "no modules_install tree (DMR_MODROOT) for $(uname -r)"
		return
	}
	unload_modules || { fail "unload"; return; }
	# Load by the alias the kernel asks for when a table names the target (request_module("dm-%s")).
	modprobe -d "$root" dm-dm-remap-v4 || { fail "modprobe dm-dm-remap-v4"; return; }
	for m in dm_remap_v4 dm_remap_v4_metadata dm_remap_v4_spare_pool dm_remap_v4_setup_reassembly; do
		lsmod | grep -q "^$m " || fail "$m not loaded by modprobe"
	done
	modprobe -d "$root" -r dm-remap-v4 || fail "modprobe -r"
	lsmod | grep -q '^dm_remap_v4' && fail "modules left after modprobe -r: $(lsmod | grep dm_remap)"
}

test_reassembly_kunit_suite_passes() {
	# The module's KUnit suite tests its exported C ABI inside the kernel each time it loads.
	unload_modules || { fail "unload"; return; }
	dmesg_mark
	load_modules || { fail "load"; return; }
	assert_contains "KUnit summary" "# dm_remap_v4_setup_reassembly: pass:3 fail:0 skip:0 total:3" "$(dmesg_new)"
}
