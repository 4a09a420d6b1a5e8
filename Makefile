# SPDX-License-Identifier: GPL-2.0
# dm-remap-v4: build the kernel modules, run the demo and the tests.
#
#   make demo       install what is missing, build, boot the test kernel in a VM and show the target working
#   make test       install what is missing, then host tests, lint, modules, VM integration tests (CI runs it)
#   make setup      only install the toolchain (root, Debian bookworm; idempotent)
#   make            build the four modules against the test kernel (built and cached on first use)
#   make check      formatting and clippy, host crates and kernel modules
#   make package    Debian packages dm-remap-dkms and dm-remap-tools in build/package (docs/packaging.md)
#   make KDIR=/lib/modules/$(uname -r)/build   build against a real Rust-enabled kernel instead

SHELL := /bin/bash
FLAVOUR ?= debug
KDIR ?= $(shell scripts/build-kernel --print-dir $(FLAVOUR))
# The test kernels are built with clang 19; a kernel built otherwise says so in its .config.
KERNEL_CC_IS_CLANG := $(shell grep -qs '^CONFIG_CC_IS_CLANG=y' $(KDIR)/.config && echo y)
LLVM ?= $(if $(KERNEL_CC_IS_CLANG),-19,)
ENV := . scripts/env.sh &&
KMAKE = $(ENV) $(MAKE) -C $(KDIR) M=$(CURDIR) $(if $(LLVM),LLVM=$(LLVM))

.PHONY: all modules kernel clippy modules_install clean setup demo test check package

all: modules

modules: kernel
	$(KMAKE) modules

# Builds the test kernel unless KDIR points elsewhere (then it must already be built).
kernel:
	@if [ "$(KDIR)" = "$$(scripts/build-kernel --print-dir $(FLAVOUR))" ]; then \
		scripts/build-kernel $(FLAVOUR) >/dev/null; \
	else \
		test -f "$(KDIR)/Makefile" || { echo "error: KDIR=$(KDIR) is not a kernel build directory" >&2; exit 1; }; \
	fi

# The kernel-side Rust through clippy-driver, with the kernel's own lint set.
clippy: kernel
	$(KMAKE) CLIPPY=1 clean modules 2>&1 | tee build/clippy.log; \
	! grep -E '^(warning|error)' build/clippy.log

modules_install: modules
	$(KMAKE) modules_install

clean:
	-$(KMAKE) clean
	rm -rf build

setup:
	scripts/setup-toolchain

demo: setup
	$(MAKE) modules
	scripts/demo

test: setup
	scripts/test

check:
	scripts/check

package:
	scripts/package
