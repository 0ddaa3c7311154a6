# Shared flags for the freestanding aarch64 images (included by test-spmc/ and probe/).
# -mstrict-align: with the MMU off all data accesses are Device type, where unaligned ones fault.
# -mgeneral-regs-only: FP/SIMD may be trapped at the EL we run in; we never need it.
# -fno-tree-loop-distribute-patterns: stops gcc turning lib.c's memset loop into a memset call.
CROSS_COMPILE ?= aarch64-linux-gnu-
CC := $(CROSS_COMPILE)gcc
OBJCOPY := $(CROSS_COMPILE)objcopy
COMMON := $(dir $(lastword $(MAKEFILE_LIST)))
CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-builtin \
	-fno-stack-protector -fno-tree-loop-distribute-patterns -fno-pic -mcmodel=small -mstrict-align -mgeneral-regs-only \
	-ffunction-sections -fdata-sections -I$(COMMON)
ASFLAGS := -I$(COMMON)
LDFLAGS := -nostdlib -static -Wl,--gc-sections -Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
O ?= build
# The platform's addresses (firmware/platform/<PLATFORM>/platform.h), for C and linker scripts.
PLATFORM ?= qemu
PLATFORM_DIR := $(COMMON)../platform/$(PLATFORM)
CFLAGS += -I$(PLATFORM_DIR)
COMMON_SRCS := $(COMMON)lib.c $(COMMON)pl011.c $(COMMON)ffa_smc.S
