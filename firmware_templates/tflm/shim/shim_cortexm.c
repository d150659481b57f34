/* mcuq shim on a Cortex-M in qemu (mps2-an385 / an386 / an500): semihosting output, exit and
 * argument, and an instruction clock from SysTick under -icount shift=0 (the board: mps2.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcuq_shim.h"

#include "../../c/emulate/mps2.h" /* the board: semihosting, SysTick, start-up, vectors */

extern void __libc_init_array(void);
int main(void);

void* __dso_handle = 0;

/* Link mode (the semihosting command line ends with " link": mcuq/device/emulated.py): the text
 * and the validation link go through the CMSDK UART0, which qemu puts on a pseudo-terminal, and
 * the program runs until it is killed. Otherwise text goes out through semihosting. */
static int link_mode;

void mcuq_shim_write(const char* text) {
  if (!link_mode) {
    mps2_semihost(0x04, text);
    return;
  }
  while (*text) mps2_uart_put(*text++);
}

int mcuq_shim_link(void) { return link_mode; }
int mcuq_shim_read(void) { return link_mode ? mps2_uart_read() : -1; }

uint64_t mcuq_shim_nanos(void) { return mps2_ticks() * MPS2_NS_PER_TICK; }

void mcuq_shim_exit(int code) {
  uint32_t args[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit, exit code */
  mps2_semihost(0x20, args); /* SYS_EXIT_EXTENDED: qemu exits with `code` */
  for (;;) {
  }
}

void _exit(int code) { mcuq_shim_exit(code); }
void mcuq_shim_idle(uint32_t ms) { /* one boot is the whole check in qemu, unless the link is served */
  uint64_t end = mcuq_shim_nanos() + (uint64_t)ms * 1000000u;
  if (!link_mode) mcuq_shim_exit(0);
  while (mcuq_shim_nanos() < end) {
  }
}

/* The semihosting command line ("kernel ARGS"), or NULL. */
static const char* command_line(void) {
  static char line[128];
  struct { char* buf; int len; } block = {line, (int)sizeof(line) - 1};
  return mps2_semihost(0x15, &block) == 0 ? line : (const char*)0; /* SYS_GET_CMDLINE */
}

int mcuq_shim_arg(void) {
  const char* line = command_line();
  const char* space = line ? strchr(line, ' ') : (const char*)0;
  return space ? atoi(space + 1) : -1;
}

void _init(void) {}
void _fini(void) {}

void Reset_Handler(void) {
  const char* line;
  size_t n;
  mps2_start();
  line = command_line();
  n = line ? strlen(line) : 0u;
  link_mode = n >= 5u && strcmp(line + n - 5u, " link") == 0;
  if (link_mode) mps2_uart_start();
  __libc_init_array();
  mcuq_shim_exit(main());
}

static void Fault_Handler(void) {
  mcuq_shim_write("mcuq: FAULT (hard fault in the firmware)\n");
  mcuq_shim_exit(3);
}

MPS2_VECTORS(Reset_Handler, Fault_Handler);
