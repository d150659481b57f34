"""Cross toolchains and emulators: build generated C for AVR / Cortex-M and run it in simavr / qemu."""
